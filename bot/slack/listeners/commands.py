"""Slash commands: /health, /plan, /renewals, /risks, /escalate and /csm help|settings|<question>; answered in the ack."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.slack.asks import Ask
from bot.slack.files import FILES_KEY, deliver, pending
from bot.slack.listeners.common import (
    ask_reply,
    chat_of,
    handled,
    private_payload,
    public_payload,
)
from bot.slack.messages import PRIVATE_METADATA, encode, message, notice, surface
from bot.slack.services import SlackServices
from bot.slack.threads import confirmation, post_parent, target_channel
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


def answer(result: Reply | HandlerError, ask: Ask, *, visible: bool = True) -> dict[str, Any]:
    """Private by default; a Reply the handler marked for the channel (an escalation) is posted."""
    if not visible and isinstance(result, Reply) and result.template == "not_here":
        return {"response_type": "ephemeral", **notice(NOT_A_MEMBER)}
    if isinstance(result, Reply) and result.visibility == "channel":
        return {"response_type": "in_channel", **public_payload(result)}
    return {"response_type": "ephemeral", **private_payload(result, ask)}


def _visible(services: SlackServices, command: dict[str, Any], context: BoltContext) -> bool:
    channel = command.get("channel_id")
    if not channel:
        return True
    # Looked up (and cached) by the middleware already.
    return services.channel(channel, client=context.client, team_id=context.team_id).visible


# Said under an answer whose charts or deck follow (a slash-command answer is private, and Slack
# has no private file in a channel: the files go to the asker's DM).
FILES_FOLLOW = "Charts and files follow in a direct message from me."


def with_files(
    payload: dict[str, Any], result: Reply | HandlerError, context: BoltContext, visible: bool
) -> dict[str, Any]:
    """Leave the reply's attachments for the lazy sender and say where they will arrive."""
    if not visible or not isinstance(result, Reply) or not result.attachments:
        return payload
    context[FILES_KEY] = pending(result.attachments)
    blocks = list(payload.get("blocks") or [])
    if len(blocks) < 50:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": FILES_FOLLOW}]})
    return {**payload, "blocks": blocks}


def send_files(services: SlackServices) -> Callable[..., None]:
    def send_command_files(
        context: BoltContext, command: dict[str, Any], client: WebClient
    ) -> None:
        # Runs after the ack (a lazy listener): drawing never delays the answer.
        attachments = context.get(FILES_KEY)
        if attachments:
            deliver(
                services,
                client,
                attachments,
                ctx=chat_of(context),
                user_id=command.get("user_id"),
                channel=None,
                charts_to_dm=True,
            )

    return send_command_files


def _ask_command(services: SlackServices, kind: str) -> Callable[..., None]:
    def command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        ask = Ask(kind=kind, text=(command.get("text") or "").strip())
        # The answer rides in the ack itself: one HTTP round trip, no Web API call.
        result = ask_reply(services, chat_of(context), ask)
        visible = _visible(services, command, context)
        ack(**with_files(answer(result, ask, visible=visible), result, context, visible))

    command.__name__ = f"command_{kind}"
    return command


def _csm_command(services: SlackServices) -> Callable[..., None]:
    def csm(ack: Ack, command: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        text = (command.get("text") or "").strip()
        word, _, rest = text.partition(" ")
        if word.lower() in ("", "help"):
            from handlers.help import help_reply

            ack(response_type="ephemeral", **message(help_reply(rest.strip())))
            return
        if word.lower() == "settings":
            _open_settings(services, ack, command, context, client)
            return
        ask = Ask(kind="ask", text=text)
        result = ask_reply(services, chat_of(context), ask)
        if _is_escalation(result) and services.container.settings.escalation_channel:
            # With an escalation channel set, "/csm escalate …" opens a thread there like /escalate.
            posted = post_parent(
                services, client, result, origin=command.get("channel_id"), team_id=context.team_id
            )
            ack(response_type="ephemeral", **confirmation(result, posted))
            return
        visible = _visible(services, command, context)
        ack(**with_files(answer(result, ask, visible=visible), result, context, visible))

    return csm


def _is_escalation(result: Reply | HandlerError) -> bool:
    return isinstance(result, Reply) and result.template == "escalation"


def _escalate_command(services: SlackServices) -> Callable[..., None]:
    def escalate(
        ack: Ack, command: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        from handlers.escalations import new_escalation_form, open_from_text

        if not _visible(services, command, context):
            ack(response_type="ephemeral", **notice(NOT_A_MEMBER))
            return
        ctx = chat_of(context)
        text = (command.get("text") or "").strip()
        origin = command.get("channel_id")
        target = target_channel(services, origin, client=client, team_id=context.team_id)
        if isinstance(target, HandlerError):
            ack(response_type="ephemeral", **notice(target.message))
            return
        if not text:
            form = handled(services, lambda session: new_escalation_form(session, ctx=ctx))
            if isinstance(form, HandlerError):
                ack(response_type="ephemeral", **notice(form.message))
                return
            # The submit confirms through the command's response_url, which works anywhere.
            metadata = encode({"r": command.get("response_url"), "c": origin}, PRIVATE_METADATA)
            ack()
            view = surface(form.template, {**form.context, "private_metadata": metadata})
            client.views_open(trigger_id=command["trigger_id"], view=view)
            return
        result = handled(services, lambda session: open_from_text(session, ctx=ctx, text=text))
        # Refusals, "which account?" and "did you mean": private, and nothing was opened.
        if isinstance(result, HandlerError):
            ack(response_type="ephemeral", **notice(result.message))
            return
        if result.template == "escalation_open_modal":
            # "/escalate acme": the form asks what happened and how bad, prefilled.
            metadata = encode({"r": command.get("response_url"), "c": origin}, PRIVATE_METADATA)
            ack()
            view = surface(result.template, {**result.context, "private_metadata": metadata})
            client.views_open(trigger_id=command["trigger_id"], view=view)
            return
        if not _is_escalation(result):
            ack(response_type="ephemeral", **notice(result.text))
            return
        posted = post_parent(services, client, result, origin=origin, team_id=context.team_id)
        ack(response_type="ephemeral", **confirmation(result, posted))

    return escalate


def _open_settings(
    services: SlackServices,
    ack: Ack,
    command: dict[str, Any],
    context: BoltContext,
    client: WebClient,
) -> None:
    from handlers.settings import user_settings

    ctx = chat_of(context)
    result = handled(services, lambda session: user_settings(session, ctx=ctx))
    if isinstance(result, HandlerError):
        ack(response_type="ephemeral", **notice(result.message))
        return
    # The submit answers through the command's response_url, which works in any conversation.
    metadata = encode(
        {"r": command.get("response_url"), "c": command.get("channel_id")}, PRIVATE_METADATA
    )
    view = surface("settings_modal", {**result.context, "private_metadata": metadata})
    ack()
    client.views_open(trigger_id=command["trigger_id"], view=view)


def register(app: App, services: SlackServices) -> None:
    files = send_files(services)
    for name, kind in ASK_COMMANDS.items():
        app.command(name)(ack=_ask_command(services, kind), lazy=[files])
    app.command("/csm")(ack=_csm_command(services), lazy=[files])
    app.command("/escalate")(_escalate_command(services))
