"""Slash commands: /health, /plan, /renewals, /risks and /csm help|settings|<question>; answered in the ack."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.slack.asks import Ask
from bot.slack.listeners.common import (
    ask_reply,
    chat_of,
    handled,
    private_payload,
    public_payload,
)
from bot.slack.messages import PRIVATE_METADATA, encode, message, notice, surface
from bot.slack.services import SlackServices
from handlers.errors import HandlerError
from handlers.reply import Reply

logger = logging.getLogger(__name__)

# Command → the kind of question it asks (bot.slack.asks.KINDS).
COMMANDS = {"/health": "health", "/plan": "plan", "/renewals": "renewals", "/risks": "risks"}


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


def _ask_command(services: SlackServices, kind: str) -> Callable[..., None]:
    def command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        ask = Ask(kind=kind, text=(command.get("text") or "").strip())
        # The answer rides in the ack itself: one HTTP round trip, no Web API call.
        result = ask_reply(services, chat_of(context), ask)
        ack(**answer(result, ask, visible=_visible(services, command, context)))

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
        ack(**answer(result, ask, visible=_visible(services, command, context)))

    return csm


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
    for name, kind in COMMANDS.items():
        app.command(name)(_ask_command(services, kind))
    app.command("/csm")(_csm_command(services))
