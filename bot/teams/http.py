"""Starlette route for Teams: POST /api/messages on the same server as Slack."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.http_body import TEAMS_MAX_BODY, read_capped

if TYPE_CHECKING:
    from bot.container import Container
    from bot.teams.app import TeamsApp

logger = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "MICROSOFT_APP_ID is not set: POST /api/messages refuses every request (401). Set the Azure "
    "Bot's MICROSOFT_APP_ID, _PASSWORD and _TENANT_ID to serve Teams."
)
DEV_MODE = (
    "CSM_TEAMS_DEV_NO_AUTH is on: Teams requests to /api/messages are NOT authenticated. "
    "Local development only: the server listens on 127.0.0.1."
)


def routes(container: Container, *, teams_app: TeamsApp | None = None) -> list[Route]:
    """The Teams route; builds the adapter once and says at start-up how requests are checked."""
    from bot.teams.app import TeamsApp

    app = teams_app or TeamsApp(container)
    if app.dev_no_auth:
        logger.warning(DEV_MODE)
    elif not app.auth_enabled:
        logger.info(NOT_CONFIGURED)

    async def messages(request: Request) -> Response:
        if not app.open:
            # Nothing is read, parsed or stored for a bot that is not set up.
            return Response(status_code=401)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if app.auth_enabled and (scheme.lower() != "bearer" or not token.strip()):
            return Response(status_code=401)  # no token at all: refused before the body is read
        raw = await read_capped(request, TEAMS_MAX_BODY)
        if raw is None:
            return JSONResponse({"error": "request too large"}, status_code=413)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
            return JSONResponse({"error": "invalid JSON"}, status_code=400)
        status, payload = await app.process(body, request.headers.get("authorization"))
        if payload is None:
            return Response(status_code=status)
        return JSONResponse(payload, status_code=status)

    return [Route("/api/messages", messages, methods=["POST"])]
