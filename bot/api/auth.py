"""Bearer-token check for the data API: off without CSM_API_TOKEN, constant-time comparison otherwise."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from bot.container import Container

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

# RFC 6750: a 401 names the scheme (and the realm) so clients know what to send.
_REALM = 'Bearer realm="csm-assistant"'


def configured_token(container: Container) -> str | None:
    """The API token, or None when the API is off (CSM_API_TOKEN unset, empty or blank)."""
    token = container.settings.api_token
    return (token.strip() or None) if token else None


def api_error(status: int, error: str, message: str, **extra: object) -> JSONResponse:
    """Every API error has the same shape: a stable code for programs, a sentence for people."""
    headers = {"WWW-Authenticate": _REALM} if status == 401 else None
    return JSONResponse({"error": error, "message": message, **extra}, status, headers=headers)


def check(request: Request, token: str | None) -> Response | None:
    """None when the request may go on, else the response that refuses it."""
    if token is None:
        return api_error(
            503,
            "api_disabled",
            "The data API is disabled: set CSM_API_TOKEN on the server to enable it.",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return api_error(
            401, "unauthorized", "Send the API token as 'Authorization: Bearer <token>'."
        )
    # Bytes, so a non-ASCII header cannot raise; compare_digest takes the same time whatever
    # prefix matches, so the token cannot be guessed one character at a time.
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        client = request.client.host if request.client else "?"
        logger.warning("data API: wrong token from %s for %s", client, request.url.path)
        return api_error(401, "unauthorized", "The API token is wrong.")
    return None


def require_token(container: Container, endpoint: Endpoint) -> Endpoint:
    """Wrap an endpoint so it runs only with the right bearer token (read per request)."""

    async def guarded(request: Request) -> Response:
        refused = check(request, configured_token(container))
        if refused is not None:
            return refused
        return await endpoint(request)

    return guarded
