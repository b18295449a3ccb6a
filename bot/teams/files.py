"""Charts and QBR decks to Teams: a chart as an Image in an Adaptive Card, a deck as a file.

Why a data URI: Teams clients fetch an Image URL anonymously (no Bot Connector token comes with the
request), so a URL served by `csm-bot serve` would have to be public and guessable-or-not, sit on a
public HTTPS host (which Socket-Mode style, firewalled installs do not have) and leave account data
in proxies and caches. Teams documents data URIs for card images (Adaptive Cards 1.2+) and keeps
base64 images out of its ~100 KB message limit; the whole request must still stay under the
Connector's 256 KB, and an image under 1024 x 1024 px. A chart PNG is ~30-80 KB, so one chart per
card fits with room to spare.

A deck goes by Teams' file consent flow (personal chat only): a FileConsentCard, the user
accepts, Teams hands us an upload URL, we PUT the bytes there and post a FileInfoCard.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx
from botbuilder.schema import Activity, ActivityTypes, Attachment

from bot.teams.cards import (
    ADAPTIVE_CARD,
    CARD_VERSION,
    MAX_MESSAGE_BYTES,
    card_size,
    plain_block,
    truncate_text,
)
from handlers.attachments import OutFile

logger = logging.getLogger(__name__)

FILE_CONSENT_CARD = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO_CARD = "application/vnd.microsoft.teams.card.file.info"
# The Bot Connector refuses requests above 262,144 bytes (MessageSizeTooBig); keep a margin.
MAX_REQUEST_BYTES = 240_000
# A data URI longer than this would not leave room for the rest of the activity.
MAX_DATA_URI_CHARS = 200_000
MAX_IMAGE_PIXELS = 1024


def data_uri(out: OutFile) -> str:
    return f"data:{out.mime};base64," + base64.b64encode(out.content).decode("ascii")


def chart_card(out: OutFile) -> dict[str, Any]:
    """An Adaptive Card 1.5 with the chart as an Image (a data URI) and its text summary."""
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "fallbackText": truncate_text(out.description, 2000),
        # Title and summary name the account: TextRuns, never parsed as markdown.
        "body": [
            plain_block(out.title, weight="bolder"),
            {
                "type": "Image",
                "url": data_uri(out),
                "altText": truncate_text(out.description, 1000),
                "size": "stretch",
            },
            plain_block(out.description, isSubtle=True),
        ],
    }


def card_size_without_images(card: dict[str, Any]) -> int:
    """What Teams counts against its ~100 KB message limit: the card less its base64 images."""
    stripped = json.loads(json.dumps(card))
    for element in stripped.get("body", []):
        if element.get("type") == "Image" and str(element.get("url", "")).startswith("data:"):
            element["url"] = "data:"
    return card_size(stripped)


def chart_message(out: OutFile) -> Activity:
    """The chart in a card, or its one-line summary when it would not fit in a Teams message."""
    card = chart_card(out)
    uri = card["body"][1]["url"]
    fits = (
        len(uri) <= MAX_DATA_URI_CHARS
        and card_size_without_images(card) <= MAX_MESSAGE_BYTES
        and card_size(card) <= MAX_REQUEST_BYTES
    )
    if not fits:
        logger.warning("chart %s is too large for a Teams card; sending its summary", out.filename)
        return Activity(
            type=ActivityTypes.message,
            text=f"{out.title}: {out.description}",
            text_format="plain",
        )
    return Activity(
        type=ActivityTypes.message,
        attachments=[Attachment(content_type=ADAPTIVE_CARD, content=card)],
        summary=truncate_text(out.title, 200),
    )


def consent_message(out: OutFile, context: dict[str, Any]) -> Activity:
    """Asks the user to accept the deck into their OneDrive (Teams' FileConsentCard)."""
    card = {
        "description": truncate_text(out.description, 1000),
        "sizeInBytes": len(out.content),
        "acceptContext": context,
        "declineContext": context,
    }
    return Activity(
        type=ActivityTypes.message,
        attachments=[Attachment(content_type=FILE_CONSENT_CARD, name=out.filename, content=card)],
        summary=truncate_text(out.title, 200),
    )


def file_info_message(name: str, content_url: str, unique_id: str, file_type: str) -> Activity:
    """The card Teams shows for a file the bot uploaded (opens it from OneDrive)."""
    return Activity(
        type=ActivityTypes.message,
        attachments=[
            Attachment(
                content_type=FILE_INFO_CARD,
                name=name,
                content_url=content_url,
                content={"uniqueId": unique_id, "fileType": file_type},
            )
        ],
    )


async def upload(url: str, content: bytes) -> None:
    """PUT the whole file to the upload session Teams gave us (one range: every byte)."""
    headers = {
        "Content-Length": str(len(content)),
        "Content-Range": f"bytes 0-{len(content) - 1}/{len(content)}",
    }
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.put(url, content=content, headers=headers)
    response.raise_for_status()
