"""Starlette route for Teams: POST /api/messages on the same server as Slack."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from bot.container import Container
    from bot.teams.app import TeamsApp

logger = logging.getLogger(__name__)

# Activities are a few KB; anything far larger is not from Teams.
MAX_BODY_BYTES = 1_000_000


def routes(container: Container, *, teams_app: TeamsApp | None = None) -> list[Route]:
    """The Teams routes; builds the adapter once and says loudly when requests are not authenticated."""
    from bot.teams.app import TeamsApp

    app = teams_app or TeamsApp(container)
    if not app.auth_enabled:
        logger.warning(
            "MICROSOFT_APP_ID is not set: Teams requests to /api/messages are NOT authenticated. "
            "Use this only for local testing."
        )

    async def messages(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return JSONResponse({"error": "request too large"}, status_code=413)
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse({"error": "invalid JSON"}, status_code=400)
        status, payload = await app.process(body, request.headers.get("authorization"))
        if payload is None:
            return Response(status_code=status)
        return JSONResponse(payload, status_code=status)

    return [Route("/api/messages", messages, methods=["POST"])]
