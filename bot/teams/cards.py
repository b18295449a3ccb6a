"""Turns a Reply into a Teams message: an Adaptive Card 1.5 from templates/teams, with a text fallback."""

from __future__ import annotations

import json
import logging
from typing import Any

from botbuilder.schema import Activity, ActivityTypes, Attachment
from jinja2 import TemplateNotFound

from bot.render import render_json, understood_parts
from handlers.reply import Reply

logger = logging.getLogger(__name__)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
# Teams rejects messages above ~100 KB (413 MessageSizeTooBig); stay well under it.
MAX_CARD_BYTES = 80_000
# A plain-text fallback is cut long before the message limit; the card is what people read.
MAX_TEXT_CHARS = 20_000


def card_size(card: dict[str, Any]) -> int:
    """Bytes of the card as it goes on the wire (ASCII-escaped JSON, the larger encoding)."""
    return len(json.dumps(card, separators=(",", ":")).encode("utf-8"))


def render_card(reply: Reply, notice: str | None = None) -> dict[str, Any] | None:
    """The Adaptive Card of a Reply, or None when there is no Teams template or it would be too big.

    Args:
        reply: what a handler answered.
        notice: a line shown above the card (a refusal, an error) without touching the template.
    """
    try:
        card = render_json("teams", reply.template, reply.context)
    except TemplateNotFound:
        logger.info("no Teams template for %s; sending text", reply.template)
        return None
    # What was understood comes first: every answer says what it answers.
    opening = understood_parts("teams", reply.context)
    if opening:
        card["body"] = [*opening, *card.get("body", [])]
    # Mobile clients drop cards without a version; Action.Execute needs 1.5.
    card["version"] = CARD_VERSION
    card.setdefault("type", "AdaptiveCard")
    card.setdefault("$schema", "http://adaptivecards.io/schemas/adaptive-card.json")
    card.setdefault("fallbackText", truncate_text(reply.text, 2000))
    if notice:
        card.setdefault("body", []).insert(0, notice_block(notice))
    size = card_size(card)
    if size > MAX_CARD_BYTES:
        logger.warning(
            "card %s is %d bytes (> %d); sending text", reply.template, size, MAX_CARD_BYTES
        )
        return None
    return card


def notice_block(message: str) -> dict[str, Any]:
    return {
        "type": "TextBlock",
        "text": message,
        "wrap": True,
        "color": "attention",
        "weight": "bolder",
    }


def notice_card(message: str) -> dict[str, Any]:
    """A card that only says something (a refusal, an expired button)."""
    card = render_card(Reply(template="notice", context={"message": message}, text=message))
    if card is None:  # the notice template is ours and tiny; this guards a broken install only
        card = {"type": "AdaptiveCard", "version": CARD_VERSION, "body": [notice_block(message)]}
    return card


def truncate_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_attachment(card: dict[str, Any]) -> Attachment:
    return Attachment(content_type=ADAPTIVE_CARD, content=card)


def message_for(reply: Reply, notice: str | None = None) -> Activity:
    """The message activity for a Reply: the card when there is one, else its text."""
    card = render_card(reply, notice)
    if card is None:
        text = reply.text if not notice else f"{notice}\n\n{reply.text}"
        return Activity(type=ActivityTypes.message, text=truncate_text(text), text_format="plain")
    # summary is what Teams shows in notifications and the chat list for a card-only message.
    return Activity(
        type=ActivityTypes.message,
        attachments=[card_attachment(card)],
        summary=truncate_text(reply.text, 200),
    )
