"""Turns a Reply into Slack payloads (message, modal, Home tab) from templates/slack, within Block Kit limits."""

from __future__ import annotations

import json
from typing import Any

from bot.render import mrkdwn_escape, render_json, truncate, understood_parts
from handlers.reply import Reply

MESSAGE_BLOCKS = 50
# Slack rejects a message near 13.2k chars of blocks (msg_blocks_too_long) even within block limits.
MESSAGE_CHARS = 12_000
SURFACE_BLOCKS = 100  # modals and the Home tab
FALLBACK_TEXT = 3000
BUTTON_VALUE = 2000
PRIVATE_METADATA = 3000


def _size(blocks: list[dict[str, Any]]) -> int:
    return len(json.dumps(blocks, ensure_ascii=False))


def fit_blocks(
    blocks: list[dict[str, Any]], limit: int, max_chars: int | None = None
) -> list[dict[str, Any]]:
    """Keep a surface within its block (and size) limit; templates cut their lists first, this is the backstop."""
    if len(blocks) <= limit and (max_chars is None or _size(blocks) <= max_chars):
        return blocks
    kept = blocks[: limit - 1]
    while max_chars is not None and len(kept) > 1 and _size(kept) > max_chars - 200:
        kept = kept[:-1]
    hidden = len(blocks) - len(kept)
    note = {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"…and {hidden} more not shown here"}],
    }
    return [*kept, note]


def fallback_text(reply: Reply) -> str:
    """The notification / screen-reader text; Slack parses it as mrkdwn too, so it is escaped."""
    return mrkdwn_escape(truncate(reply.text, FALLBACK_TEXT))


def encode(value: dict[str, Any], limit: int = BUTTON_VALUE) -> str:
    """A compact JSON button value or private_metadata; refuses to build one Slack would reject."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if len(text) > limit:
        raise ValueError(f"encoded value is {len(text)} chars, over Slack's {limit}")
    return text


def decode(value: str | None) -> dict[str, Any]:
    """The inverse of encode(); anything malformed reads as empty (it came over the wire)."""
    if not value:
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def message(reply: Reply, *, share: dict[str, Any] | None = None) -> dict[str, Any]:
    """A message payload ({text, blocks}); `share` adds the "Share in channel" button that re-asks it."""
    rendered = render_json("slack", reply.template, reply.context)
    blocks: list[dict[str, Any]] = list(rendered["blocks"])
    # What was understood comes first (after the header): every answer says what it answers.
    at = 1 if blocks and blocks[0].get("type") == "header" else 0
    blocks[at:at] = understood_parts("slack", reply.context)
    limit = MESSAGE_BLOCKS
    if share is not None:
        limit -= 1
    blocks = fit_blocks(blocks, limit, MESSAGE_CHARS - (300 if share is not None else 0))
    if share is not None:
        blocks.append(render_json("slack", "share_button", {"value": encode(share)}))
    return {"text": fallback_text(reply), "blocks": blocks}


def surface(template: str, context: dict[str, Any]) -> dict[str, Any]:
    """A modal or Home tab view from its template, cut to 100 blocks."""
    view = render_json("slack", template, context)
    view["blocks"] = fit_blocks(list(view.get("blocks", [])), SURFACE_BLOCKS)
    return view


def notice(text: str) -> dict[str, Any]:
    """A plain ephemeral message (refusals, errors the user caused), escaped like any other data."""
    return {
        "text": mrkdwn_escape(truncate(text, FALLBACK_TEXT)),
        "blocks": render_json("slack", "notice", {"text": text})["blocks"],
    }
