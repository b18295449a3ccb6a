"""Charts and QBR packs to Slack: made after the answer went out, uploaded with files_upload_v2.

Charts follow the answer into its thread (or, for a private slash-command answer, the asker's DM:
Slack has no private file in a channel). A QBR pack is an internal draft: it always goes to the
asker's DM, never into a channel that may be shared with the customer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack.services import SlackServices
from handlers.attachments import OutFile, safe_files
from handlers.context import ChatContext
from handlers.reply import Attachment

logger = logging.getLogger(__name__)

# Context key a listener leaves for its lazy follow-up: the reply's attachments as plain dicts.
FILES_KEY = "csm_files"
ALT_TEXT_LIMIT = 1000


def pending(attachments: Sequence[Attachment]) -> list[dict[str, Any]]:
    return [a.to_dict() for a in attachments]


def upload(
    client: WebClient,
    files: Sequence[OutFile],
    *,
    channel: str,
    thread_ts: str | None = None,
    comment: str | None = None,
) -> list[str]:
    """One files_upload_v2 call (getUploadURLExternal, POST, completeUploadExternal) for all files."""
    if not files:
        return []
    uploads = []
    for out in files:
        item: dict[str, Any] = {
            "content": out.content,
            "filename": out.filename,
            "title": out.title,
        }
        if out.is_image:
            item["alt_txt"] = out.description[:ALT_TEXT_LIMIT]
        uploads.append(item)
    response = client.files_upload_v2(
        file_uploads=uploads, channel=channel, thread_ts=thread_ts, initial_comment=comment
    )
    return [str(f.get("id")) for f in response.get("files") or []]


def dm_channel(client: WebClient, user_id: str) -> str:
    """The app's DM with a person (conversations.open; the same id every time)."""
    return str(client.conversations_open(users=user_id)["channel"]["id"])


def deliver(
    services: SlackServices,
    client: WebClient,
    attachments: Sequence[dict[str, Any]],
    *,
    ctx: ChatContext,
    user_id: str | None,
    channel: str | None,
    thread_ts: str | None = None,
    charts_to_dm: bool = False,
) -> None:
    """Make and upload a reply's files. Charts go to ``channel``/``thread_ts`` (or the DM when
    charts_to_dm); packs to the asker's DM. A failure is logged and told in the conversation,
    never raised: the answer itself is already out."""
    items = [Attachment.from_dict(a) for a in attachments]
    if not items:
        return
    container = services.container
    files, problems = safe_files(
        container.session, tuple(items), ctx=ctx, models=container.health_models
    )
    charts = [f for f in files if f.is_image]
    packs = [f for f in files if not f.is_image]
    try:
        dm = dm_channel(client, user_id) if user_id and (packs or charts_to_dm) else None
        if charts:
            where = dm if charts_to_dm else channel
            if where:
                upload(client, charts, channel=where, thread_ts=None if charts_to_dm else thread_ts)
        for pack in packs:
            if dm is None:
                problems.append(f"{pack.title}: I can only send a deck to a person's DM")
                continue
            same_thread = thread_ts if dm == channel else None
            upload(client, [pack], channel=dm, thread_ts=same_thread, comment=pack.description)
    except (SlackApiError, SlackClientError, OSError) as exc:
        logger.error("file upload failed: %s", exc)
        problems.append("the upload to Slack failed; ask again in a moment")
    if problems and (channel or user_id):
        _tell(client, channel or user_id or "", thread_ts, problems)


def _tell(client: WebClient, channel: str, thread_ts: str | None, problems: list[str]) -> None:
    from bot.render import mrkdwn_escape

    text = "Not attached: " + "; ".join(mrkdwn_escape(p) for p in problems)
    try:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
    except (SlackApiError, SlackClientError, OSError) as exc:
        logger.error("could not say that files were not attached: %s", exc)
