"""Turns a Reply into a Teams message: an Adaptive Card 1.5 from templates/teams, with a text fallback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botbuilder.schema import Activity, ActivityTypes, Attachment
from jinja2 import TemplateNotFound

from bot.render import render_json, understood_parts
from handlers.reply import Reply

logger = logging.getLogger(__name__)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
# Teams refuses a message above ~100 KB measured in UTF-16 (413 MessageSizeTooBig); keep a margin.
MAX_MESSAGE_BYTES = 80_000
# What botbuilder adds to an activity when it sends it (conversation, from, recipient, serviceUrl,
# replyToId): a few hundred characters, counted generously so the measured size is the sent size.
ENVELOPE_BYTES = 2_000
# Lists in the templates (``cap(n)``) are cut to these shares of their usual length, in turn,
# until the message fits; a card that does not fit even then goes out as text.
SCALES = (1.0, 0.5, 0.25, 0.1, 0.0)
# A plain-text fallback is cut long before the message limit; the card is what people read.
MAX_TEXT_CHARS = 20_000
# Teams keeps per-person views for at most 60 people per card.
MAX_REFRESH_USERS = 60


def utf16_size(value: Any) -> int:
    """Bytes of a JSON value in UTF-16, the way Teams measures a message."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-16-le"))


def card_size(card: dict[str, Any]) -> int:
    """UTF-16 bytes of a card on its own (an invoke response carries nothing else)."""
    return utf16_size(card) + ENVELOPE_BYTES


def activity_size(activity: Activity) -> int:
    """UTF-16 bytes of the whole message: card, summary, text and the envelope botbuilder adds."""
    return utf16_size(activity.serialize()) + ENVELOPE_BYTES


def _card_message_size(card: dict[str, Any], summary: str) -> int:
    """activity_size of _card_message(card, …), without msrest's (slow) serializer."""
    body = {
        "type": ActivityTypes.message.value,
        "attachments": [{"contentType": ADAPTIVE_CARD, "content": card}],
        "summary": summary,
    }
    return utf16_size(body) + ENVELOPE_BYTES


@dataclass(frozen=True)
class Refresh:
    """Universal Actions ``refresh``: the listed people's clients fetch their own view of the card.

    Everyone else sees the card as posted (and can pick Refresh in the message menu).
    """

    verb: str
    data: dict[str, Any]
    user_ids: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {
            "action": {
                "type": "Action.Execute",
                "title": "Refresh",
                "verb": self.verb,
                "data": self.data,
            },
            "userIds": list(self.user_ids[:MAX_REFRESH_USERS]),
        }


# Teams reads TextBlock.text, Fact.title and Fact.value as markdown, where "[text](url)" is a
# link. Data (an account name from a CRM) must not forge one: a zero-width space between "]" and
# "(" keeps the text as written and leaves no link to click.
_LINK_JOIN = "]("
_LINK_BROKEN = "]\u200b("


def defuse_links(card: dict[str, Any]) -> dict[str, Any]:
    """The card with no markdown link syntax in the fields Teams renders as markdown (in place).

    Our templates write no links of their own, so every "](" there came from data.
    """

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock" and isinstance(node.get("text"), str):
                node["text"] = node["text"].replace(_LINK_JOIN, _LINK_BROKEN)
            for fact in node.get("facts") or []:
                for key in ("title", "value"):
                    if isinstance(fact, dict) and isinstance(fact.get(key), str):
                        fact[key] = fact[key].replace(_LINK_JOIN, _LINK_BROKEN)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return card


def _capper(scale: float) -> Callable[[int], int]:
    def cap(n: int) -> int:
        return n if scale >= 1.0 else max(1, int(n * scale))

    return cap


def _render(
    reply: Reply, notice: str | None, refresh: Refresh | None, scale: float
) -> dict[str, Any] | None:
    context = {
        **reply.context,
        "cap": _capper(scale),
        # Someone gets a per-person view: the shared card can leave the buttons to those views.
        "audience": bool(refresh and refresh.user_ids),
    }
    try:
        card = render_json("teams", reply.template, context)
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
    if refresh is not None:
        card["refresh"] = refresh.as_json()
    return defuse_links(card)


def render_card(
    reply: Reply,
    notice: str | None = None,
    *,
    refresh: Refresh | None = None,
    fits: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any] | None:
    """The Adaptive Card of a Reply, or None when there is no Teams template or it cannot fit.

    Long lists are cut (with "and N more") until the card fits the message limit in UTF-16.

    Args:
        reply: what a handler answered.
        notice: a line shown above the card (a refusal, an error) without touching the template.
        refresh: per-person views (Universal Actions) for the people it lists.
        fits: whether a rendered card is small enough; default: the card alone under the limit.
    """
    fits = fits or (lambda card: card_size(card) <= MAX_MESSAGE_BYTES)
    card: dict[str, Any] | None = None
    for scale in SCALES:
        card = _render(reply, notice, refresh, scale)
        if card is None or fits(card):
            return card
    assert card is not None
    logger.warning(
        "card %s is %d bytes in UTF-16 even with lists cut (> %d); sending text",
        reply.template,
        card_size(card),
        MAX_MESSAGE_BYTES,
    )
    return None


def plain_block(text: str, **style: Any) -> dict[str, Any]:
    """Text from users or data, shown as is: a TextRun, which Teams never parses as markdown (a
    TextBlock would turn "[click](https://…)" in an account name into a link)."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, **style}]}


def notice_block(message: str) -> dict[str, Any]:
    """A refusal or error above a card: it may name an account, so it is plain text."""
    return plain_block(message, color="attention", weight="bolder")


def notice_card(message: str) -> dict[str, Any]:
    """A card that only says something (a refusal, an expired button)."""
    card = render_card(Reply(template="notice", context={"message": message}, text=message))
    if card is None:  # the notice template is ours and tiny; this guards a broken install only
        card = {"type": "AdaptiveCard", "version": CARD_VERSION, "body": [notice_block(message)]}
    return card


def truncate_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_message(text: str) -> Activity:
    """A text message Teams shows as written: a text activity is otherwise markdown, and the text
    may carry data (an account name) that must not become a link."""
    return Activity(type=ActivityTypes.message, text=truncate_text(text), text_format="plain")


def card_attachment(card: dict[str, Any]) -> Attachment:
    return Attachment(content_type=ADAPTIVE_CARD, content=card)


def _card_message(card: dict[str, Any], reply: Reply) -> Activity:
    # summary is what Teams shows in notifications and the chat list for a card-only message.
    return Activity(
        type=ActivityTypes.message,
        attachments=[card_attachment(card)],
        summary=truncate_text(reply.text, 200),
    )


def message_for(
    reply: Reply, notice: str | None = None, *, refresh: Refresh | None = None
) -> Activity:
    """The message activity for a Reply: the card when the whole message fits, else its text."""
    summary = truncate_text(reply.text, 200)
    card = render_card(
        reply,
        notice,
        refresh=refresh,
        fits=lambda c: _card_message_size(c, summary) <= MAX_MESSAGE_BYTES,
    )
    if card is None:
        text = reply.text if not notice else f"{notice}\n\n{reply.text}"
        return Activity(type=ActivityTypes.message, text=truncate_text(text), text_format="plain")
    return _card_message(card, reply)
