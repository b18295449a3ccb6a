"""Request bodies read with a size cap and a deadline: refused as soon as they are too large or too slow, never buffered whole."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

# The caps of the three POST endpoints (docs/api.md and docs/access.md say why these numbers):
# Slack sends a few hundred KB at most (a modal's state with a hundred options is ~70 KB);
# a Teams activity is at most ~100 KB of text plus envelope; the data API takes batches of rows.
SLACK_MAX_BODY = 1024 * 1024
TEAMS_MAX_BODY = 1024 * 1024
API_MAX_BODY = 10 * 1024 * 1024

# Seconds a whole body may take to arrive. Slack and Microsoft send a request in well under a
# second; a client that trickles its body (slow-loris) would otherwise hold its connection, and
# the coroutine reading it, for as long as it likes. The data API's 10 MiB gets longer.
BODY_SECONDS = 10.0
API_BODY_SECONDS = 120.0


class BodyNotReceived(HTTPException):
    """The body did not arrive: too slow (408), or the client hung up while sending it.

    An HTTPException, so every Starlette app answers it without a traceback in the log.
    """


async def read_capped(
    request: Request, limit: int, *, seconds: float | None = None
) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` (never buffering more).

    A Content-Length over the limit is refused before reading anything; a chunked body (no
    Content-Length to trust) is counted while it streams. A body that has not arrived within
    ``seconds`` (default BODY_SECONDS) raises BodyNotReceived(408).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_SECONDS if seconds is None else seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return None
                parts.append(chunk)
    except TimeoutError as exc:
        raise BodyNotReceived(408, "request body too slow") from exc
    except ClientDisconnect as exc:
        # Nobody is left to answer; the status only keeps the log free of a traceback.
        raise BodyNotReceived(400, "client disconnected") from exc
    return b"".join(parts)
