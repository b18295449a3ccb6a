"""Slash commands: /health, /plan, /renewals, /risks, /escalate and /csm help|settings|<question>; ack first."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.slack.asks import Ask
from bot.slack.files import deliver, pending
from bot.slack.listeners.common import (
    ack_or_later,
    after_ack,
    ask_reply,
    chat_of,
    handled,
    open_modal,
    private_payload,
    public_payload,
    text_field,
)
from bot.slack.messages import PRIVATE_METADATA, encode, message, notice, surface
from bot.slack.services import SlackServices
from bot.slack.threads import already_open, confirmation, post_parent, target_channel
from handlers import access
from handlers.errors import HandlerError
from handlers.reply import Reply

logger = logging.getLogger(__name__)

# Command → the kind of question it asks (bot.slack.asks.KINDS).
ASK_COMMANDS = {
    "/health": "health",
    "/plan": "plan",
    "/renewals": "renewals",
    "/risks": "risks",
    "/qbr": "qbr",
}
# Every command besides /csm (manifest.yml must declare each); /escalate has its own listener.
COMMANDS = {**ASK_COMMANDS, "/escalate": "escalate"}


# In a channel the bot cannot see, "shared with another organisation" would mislead; say why.
NOT_A_MEMBER = (
    "I can't see this conversation (I'm not a member of it), so I don't show account data here. "
    "Invite me with `/invite @CSM Assistant`, or ask me in a direct message."
)


def answer(
    result: Reply | HandlerError, ask: Ask, *, visible: bool = True, share: bool = True
) -> dict[str, Any]:
    """Private by default; a Reply the handler marked for the channel (an escalation) is posted.

    share: whether the answer may be posted for everyone there (handlers.access.shareable_here):
    else even a Reply marked for the channel stays private, and there is no Share button.
    """
    if not visible and isinstance(result, Reply) and result.template == "not_here":
        return {"response_type": "ephemeral", **notice(NOT_A_MEMBER)}
    if isinstance(result, Reply) and result.visibility == "channel" and share:
        return {"response_type": "in_channel", **public_payload(result)}
    return {"response_type": "ephemeral", **private_payload(result, ask if share else None)}


def _visible(services: SlackServices, command: dict[str, Any], context: BoltContext) -> bool:
    channel = text_field(command, "channel_id")
    if not channel:
        return True
    # Looked up (and cached) with the chat context already.
    return services.channel(channel, client=context.client, team_id=context.team_id).visible


# Said under an answer whose charts or deck follow (a slash-command answer is private, and Slack
# has no private file in a channel: the files go to the asker's DM).
FILES_FOLLOW = "Charts and files follow in a direct message from me."


def with_files(
    services: SlackServices,
    payload: dict[str, Any],
    result: Reply | HandlerError,
    visible: bool,
    command: dict[str, Any],
    context: BoltContext,
) -> dict[str, Any]:
    """Have the reply's charts or deck made and sent after the answer, and say where they go."""
    if not visible or not isinstance(result, Reply) or not result.attachments:
        return payload
    attachments = pending(result.attachments)
    ctx, client = chat_of(context), context.client or services.client
    user_id = text_field(command, "user_id") or None
    # Drawing never delays the answer: it runs in the worker after this work is done.
    after_ack(
        services,
        lambda: deliver(
            services,
            client,
            attachments,
            ctx=ctx,
            user_id=user_id,
            channel=None,
            charts_to_dm=True,
        ),
    )
    blocks = list(payload.get("blocks") or [])
    if len(blocks) < 50:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": FILES_FOLLOW}]})
    return {**payload, "blocks": blocks}


def _ask_command(services: SlackServices, kind: str) -> Callable[..., None]:
    def command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        ask = Ask(kind=kind, text=text_field(command, "text").strip())

        def work() -> dict[str, Any]:
            ctx = chat_of(context)
            result = ask_reply(services, ctx, ask)
            visible = _visible(services, command, context)
            payload = answer(result, ask, visible=visible, share=access.shareable_here(ctx))
            return with_files(services, payload, result, visible, command, context)

        # Ready within the worker's budget: the answer rides in the ack (one round trip).
        ack_or_later(services, ack, work, response_url=text_field(command, "response_url"))

    command.__name__ = f"command_{kind}"
    return command


def _csm_command(services: SlackServices) -> Callable[..., None]:
    def csm(ack: Ack, command: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        text = text_field(command, "text").strip()
        word, _, rest = text.partition(" ")
        if word.lower() in ("", "help"):
            from handlers.help import help_reply

            ack(response_type="ephemeral", **message(help_reply(rest.strip())))
            return
        if word.lower() == "settings":
            ack_or_later(
                services,
                ack,
                lambda: _open_settings(services, command, context, client),
                response_url=text_field(command, "response_url"),
            )
            return
        ask = Ask(kind="ask", text=text)

        def work() -> dict[str, Any]:
            ctx = chat_of(context)
            result = ask_reply(services, ctx, ask)
            if _is_escalation(result) and services.container.settings.escalation_channel:
                # With an escalation channel set, "/csm escalate …" opens a thread there like /escalate.
                return {"response_type": "ephemeral", **_posted(services, client, result, command)}
            visible = _visible(services, command, context)
            payload = answer(result, ask, visible=visible, share=access.shareable_here(ctx))
            return with_files(services, payload, result, visible, command, context)

        ack_or_later(services, ack, work, response_url=text_field(command, "response_url"))

    return csm


def _is_escalation(result: Reply | HandlerError) -> bool:
    return isinstance(result, Reply) and result.template == "escalation"


def _posted(
    services: SlackServices, client: WebClient, result: Reply, command: dict[str, Any]
) -> dict[str, Any]:
    """Post a just-opened escalation as its thread's parent (once) and say where it went."""
    origin = text_field(command, "channel_id") or None
    team_id = text_field(command, "team_id") or None
    if result.context.get("existing"):
        # The same request again: its thread was posted (or is being posted) by the first one.
        return already_open(result)
    posted = post_parent(services, client, result, origin=origin, team_id=team_id)
    return confirmation(result, posted)


def _escalate_command(services: SlackServices) -> Callable[..., None]:
    def escalate(
        ack: Ack, command: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        ack_or_later(
            services,
            ack,
            lambda: _escalate(services, command, context, client),
            response_url=text_field(command, "response_url"),
        )

    return escalate


def _escalate(
    services: SlackServices, command: dict[str, Any], context: BoltContext, client: WebClient
) -> dict[str, Any] | None:
    from handlers.escalations import new_escalation_form, open_from_text

    if not _visible(services, command, context):
        return {"response_type": "ephemeral", **notice(NOT_A_MEMBER)}
    ctx = chat_of(context)
    text = text_field(command, "text").strip()
    origin = text_field(command, "channel_id") or None
    target = target_channel(services, origin, client=client, team_id=context.team_id)
    if isinstance(target, HandlerError):
        return {"response_type": "ephemeral", **notice(target.message)}
    if not text:
        form = handled(services, lambda session: new_escalation_form(session, ctx=ctx))
        if isinstance(form, HandlerError):
            return {"response_type": "ephemeral", **notice(form.message)}
        # The submit confirms through the command's response_url, which works anywhere.
        metadata = encode({"r": text_field(command, "response_url"), "c": origin}, PRIVATE_METADATA)
        view = surface(form.template, {**form.context, "private_metadata": metadata})
        return open_modal(client, text_field(command, "trigger_id"), view)
    result = handled(services, lambda session: open_from_text(session, ctx=ctx, text=text))
    # Refusals, "which account?" and "did you mean": private, and nothing was opened.
    if isinstance(result, HandlerError):
        return {"response_type": "ephemeral", **notice(result.message)}
    if result.template == "escalation_open_modal":
        # "/escalate acme": the form asks what happened and how bad, prefilled; its submit is
        # the confirmation.
        metadata = encode({"r": text_field(command, "response_url"), "c": origin}, PRIVATE_METADATA)
        view = surface(result.template, {**result.context, "private_metadata": metadata})
        return open_modal(client, text_field(command, "trigger_id"), view)
    if not _is_escalation(result):
        return {"response_type": "ephemeral", **notice(result.text)}
    return {"response_type": "ephemeral", **_posted(services, client, result, command)}


def _open_settings(
    services: SlackServices,
    command: dict[str, Any],
    context: BoltContext,
    client: WebClient,
) -> dict[str, Any] | None:
    from handlers.settings import user_settings

    ctx = chat_of(context)
    result = handled(services, lambda session: user_settings(session, ctx=ctx))
    if isinstance(result, HandlerError):
        return {"response_type": "ephemeral", **notice(result.message)}
    # The submit answers through the command's response_url, which works in any conversation.
    metadata = encode(
        {"r": text_field(command, "response_url"), "c": text_field(command, "channel_id")},
        PRIVATE_METADATA,
    )
    view = surface("settings_modal", {**result.context, "private_metadata": metadata})
    return open_modal(client, text_field(command, "trigger_id"), view)


def register(app: App, services: SlackServices) -> None:
    for name, kind in ASK_COMMANDS.items():
        app.command(name)(_ask_command(services, kind))
    app.command("/csm")(_csm_command(services))
    app.command("/escalate")(_escalate_command(services))
