"""Request bodies read with a size cap: refused as soon as they are known to be too large, never buffered whole."""

from __future__ import annotations

from starlette.requests import Request

# The caps of the three POST endpoints (docs/api.md and docs/access.md say why these numbers):
# Slack sends a few hundred KB at most (a modal's state with a hundred options is ~70 KB);
# a Teams activity is at most ~100 KB of text plus envelope; the data API takes batches of rows.
SLACK_MAX_BODY = 1024 * 1024
TEAMS_MAX_BODY = 1024 * 1024
API_MAX_BODY = 10 * 1024 * 1024


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` (never buffering more).

    A Content-Length over the limit is refused before reading anything; a chunked body (no
    Content-Length to trust) is counted while it streams.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)
