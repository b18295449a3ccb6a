"""Escalation threads: the card is a thread's parent in the escalation channel; every update lands under it."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient

from bot.slack.listeners.common import send_to_response_url
from bot.slack.messages import message, notice
from bot.slack.services import WEB_API_ERRORS, SlackServices, api_error, web_api_failed
from handlers.errors import HandlerError, PermissionDenied
from handlers.escalations import attach_thread, update_reply
from handlers.reply import Reply

logger = logging.getLogger(__name__)

# Ids go into mrkdwn as <#C…> unescaped, so only well-formed ones are let through.
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
_SAFE_LINK = re.compile(r"^https://[^\s<>|]+$")

SHARED_TARGET = (
    "The escalation channel is shared with another organisation, so escalations can't be posted "
    "there. Ask an admin to point CSM_ESCALATION_CHANNEL at an internal channel. Nothing was opened."
)

GUESTS_TARGET = (
    "The escalation channel has guests or people from outside the company, so escalations can't "
    "be posted there. Ask an admin to point CSM_ESCALATION_CHANNEL at an internal channel. "
    "Nothing was opened."
)

GUESTS_HERE = (
    "This channel has guests or people from outside the company, so escalations can't be posted "
    "here. Open it from a direct message with me instead. Nothing was opened."
)

HIDDEN_TARGET = (
    "I can't see the escalation channel (CSM_ESCALATION_CHANNEL): invite me there with "
    "`/invite @CSM Assistant`. Nothing was opened."
)


@dataclass(frozen=True)
class Posted:
    """Where an escalation's parent message went: channel and ts, or the Slack error that stopped it."""

    channel: str | None
    ts: str | None = None
    link: str | None = None
    error: str | None = None


def target_channel(
    services: SlackServices, origin: str | None, *, client: WebClient, team_id: str | None
) -> str | HandlerError:
    """CSM_ESCALATION_CHANNEL, else the channel it was opened in; never one shared externally,
    nor one with a guest or a member of another organisation in it.

    The origin channel's own sharing is the handler's rule (ctx.external); this guards the
    configured channel, which a misconfiguration could point at a Slack Connect channel, and
    any channel's members (a customer invited as a guest), which the handler does not know.
    """
    target = services.container.settings.escalation_channel or origin
    if not target:
        return PermissionDenied("I don't know where to post this escalation. Nothing was opened.")
    info = services.channel(target, client=client, team_id=team_id)
    if target != origin:
        if not info.visible:
            return PermissionDenied(HIDDEN_TARGET)
        if info.external:
            return PermissionDenied(SHARED_TARGET)
    elif info.external:
        return target  # the handler refuses it, saying why (access.escalations_shown_here)
    if services.outsiders(target, client=client, team_id=team_id):
        return PermissionDenied(GUESTS_TARGET if target != origin else GUESTS_HERE)
    return target


def _permalink(client: WebClient, channel: str, ts: str) -> str | None:
    try:
        link = str(client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink") or "")
    except WEB_API_ERRORS as exc:
        web_api_failed("chat.getPermalink", exc)
        return None
    return link if _SAFE_LINK.match(link) else None


def _attach(services: SlackServices, escalation_id: int, channel: str, ts: str) -> None:
    try:
        with services.session() as session:
            attach_thread(
                session, escalation_id=escalation_id, slack_channel_id=channel, slack_thread_ts=ts
            )
    except Exception:
        # The message is out already; without the ts later updates fall back to the clicked card.
        logger.exception("could not store the thread of escalation %s", escalation_id)


def post_parent(
    services: SlackServices,
    client: WebClient,
    reply: Reply,
    *,
    origin: str | None,
    team_id: str | None = None,
) -> Posted:
    """Post a just-opened escalation's card as the thread parent and remember the thread."""
    target = target_channel(services, origin, client=client, team_id=team_id)
    if isinstance(target, HandlerError):
        return Posted(channel=None, error="escalation channel hidden, shared or with guests")
    # Posted as a thread parent, so the card offers what reports into a thread (Assign, Add note).
    escalation = {**reply.context["escalation"], "threaded": True}
    parent = Reply(
        template=reply.template,
        context={**reply.context, "escalation": escalation},
        text=reply.text,
    )
    try:
        response = client.chat_postMessage(channel=target, **message(parent))
    except WEB_API_ERRORS as exc:
        web_api_failed("chat.postMessage", exc)
        return Posted(channel=target, error=api_error(exc) or "connection_error")
    # Posting to a user id answers with the DM's channel id: keep the one updates must use.
    channel = str(response.get("channel") or target)
    ts = str(response.get("ts") or "")
    _attach(services, int(reply.context["escalation"]["id"]), channel, ts)
    return Posted(channel=channel, ts=ts, link=_permalink(client, channel, ts))


def confirmation(reply: Reply, posted: Posted) -> dict[str, Any]:
    """The opener's private note: a link to the thread, or why it could not be posted."""
    escalation = reply.context["escalation"]
    channel = posted.channel if posted.channel and _CHANNEL_ID.match(posted.channel) else None
    if posted.ts:
        text = f"Escalation #{escalation['id']} opened; updates land in its thread."
    else:
        text = f"Escalation #{escalation['id']} opened, but not posted: {posted.error}"
    return message(
        Reply(
            template="escalation_opened",
            context={
                **reply.context,
                "posted": bool(posted.ts),
                "channel": channel,
                "link": posted.link,
                "error": posted.error,
            },
            text=text,
        )
    )


def already_open(reply: Reply) -> dict[str, Any]:
    """The note for a request that arrived twice: the first one opened the escalation."""
    escalation = reply.context["escalation"]
    return notice(
        f"Escalation #{escalation['id']} is already open (this request reached me twice); "
        "nothing new was opened."
    )


@dataclass(frozen=True)
class Clicked:
    """The message a button was clicked in (and the thread it sits in), carried through modals."""

    channel: str | None = None
    ts: str | None = None
    thread_ts: str | None = None
    response_url: str | None = None
    ephemeral: bool = False

    @classmethod
    def of(cls, body: dict[str, Any]) -> Clicked:
        container = body.get("container") or {}
        msg = body.get("message") or {}
        return cls(
            channel=(body.get("channel") or {}).get("id") or container.get("channel_id"),
            ts=container.get("message_ts") or msg.get("ts"),
            thread_ts=msg.get("thread_ts") or container.get("thread_ts"),
            response_url=body.get("response_url"),
            ephemeral=bool(container.get("is_ephemeral")),
        )

    def encoded(self) -> dict[str, Any]:
        return {
            "c": self.channel,
            "m": self.ts,
            "t": self.thread_ts,
            "r": self.response_url,
            "e": self.ephemeral,
        }

    @classmethod
    def decoded(cls, meta: dict[str, Any]) -> Clicked:
        def text(key: str) -> str | None:
            value = meta.get(key)
            return str(value) if isinstance(value, str) and value else None

        return cls(
            channel=text("c"),
            ts=text("m"),
            thread_ts=text("t"),
            response_url=text("r"),
            ephemeral=bool(meta.get("e")),
        )


def publish_update(
    services: SlackServices, client: WebClient, reply: Reply, clicked: Clicked
) -> None:
    """After a change: the card is updated in place and a reply says what changed, in the thread."""
    escalation = reply.context["escalation"]
    channel = escalation.get("slack_channel_id")
    thread_ts = escalation.get("slack_thread_ts")
    card = message(reply)
    updated = False
    if channel and thread_ts:
        try:
            client.chat_update(channel=channel, ts=thread_ts, **card)
            updated = True
        except WEB_API_ERRORS as exc:
            web_api_failed("chat.update", exc)
    elif clicked.channel and clicked.ts and not clicked.ephemeral:
        # A card from before threads (or from /csm, answered in the command's response): the
        # message clicked becomes the thread from now on.
        channel, thread_ts = clicked.channel, clicked.thread_ts or clicked.ts
        _attach(services, int(escalation["id"]), channel, thread_ts)
    if not updated and clicked.response_url:
        # A card we did not post ourselves (a command's response) is replaced via response_url.
        send_to_response_url(clicked.response_url, card, replace_original=True)
    if channel and thread_ts:
        if reply.context.get("existing"):
            return  # the same note submitted again: its thread reply went out the first time
        try:
            client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, **message(update_reply(reply))
            )
        except WEB_API_ERRORS as exc:
            web_api_failed("chat.postMessage", exc)
