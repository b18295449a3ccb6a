"""Events API: @mentions and DMs go to the conversational handler (answered in thread); App Home is published."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.slack.files import deliver, pending
from bot.slack.listeners.common import handled, public_payload, text_field
from bot.slack.messages import surface
from bot.slack.metrics import DUPLICATE_EVENTS
from bot.slack.middleware import home_of
from bot.slack.services import WEB_API_ERRORS, SlackServices, web_api_failed
from bot.slack.threads import confirmation, post_parent
from handlers.errors import HandlerError

logger = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


# First block of an answer to an @mention in a channel with guests or outsiders: sent to the
# asker alone, and saying why.
PRIVATE_HERE = {
    "type": "context",
    "elements": [
        {
            "type": "mrkdwn",
            "text": "Only you can see this: the channel has guests or people from outside the "
            "company, so I don't post account data in it.",
        }
    ],
}


def ack_now(ack: Ack) -> None:
    # Slack retries an event that is not acknowledged within 3 s: ack first, answer lazily.
    ack()


def is_plain_im(event: dict[str, Any]) -> bool:
    """A person's new DM to the bot: no subtype (edits, joins, bot posts all have one), no bot_id."""
    return (
        event.get("channel_type") == "im" and not event.get("subtype") and not event.get("bot_id")
    )


def is_human_mention(event: dict[str, Any]) -> bool:
    return not event.get("bot_id") and not event.get("subtype")


def register(app: App, services: SlackServices) -> None:
    def answer_in_thread(
        body: dict[str, Any], event: dict[str, Any], client: WebClient, context: BoltContext
    ) -> None:
        event_id = text_field(body, "event_id") or None
        if not services.first_delivery(event_id):
            DUPLICATE_EVENTS.inc()
            logger.info("skipping retried event %s", event_id)
            return
        from handlers.ask import answer

        channel = text_field(event, "channel")
        thread_ts = text_field(event, "thread_ts") or text_field(event, "ts")
        if not channel or not thread_ts:
            logger.info("event %s names no channel or message: ignored", event_id)
            return
        team_id = text_field(body, "team_id") or None
        ctx = services.chat_context(
            text_field(event, "user") or None,
            channel,
            thread_key=f"slack:{channel}:{thread_ts}",
            client=client,
            team_id=team_id,
            request_key=f"slack:event:{event_id}" if event_id else None,
            home=home_of(context),
        )
        # The reply lands in the channel's thread for everyone: with a guest or an outsider among
        # the members it goes to the asker alone instead (a DM needs no roll call).
        _, outsiders = services.for_everyone(
            ctx, channel, client=client, team_id=team_id, home=home_of(context)
        )
        user = text_field(event, "user") or None
        text = _MENTION.sub(" ", text_field(event, "text")).strip()
        models = services.container.health_models
        result = handled(services, lambda session: answer(session, text, ctx, models=models))
        if isinstance(result, HandlerError):
            logger.info("refused in thread: %s", result.message)
            payload = public_payload(result)
        elif result.template == "escalation" and services.container.settings.escalation_channel:
            # The escalation gets its own thread in the escalation channel; this one links to it.
            posted = post_parent(services, client, result, origin=channel, team_id=team_id)
            payload = confirmation(result, posted)
        else:
            payload = public_payload(result)
        try:
            if outsiders:
                payload = {**payload, "blocks": [PRIVATE_HERE, *payload.get("blocks", [])]}
                client.chat_postEphemeral(
                    channel=channel, user=user or "", thread_ts=thread_ts, **payload
                )
                return  # charts and decks would be files everyone in the channel can open
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, **payload)
        except WEB_API_ERRORS as exc:
            web_api_failed("chat.postEphemeral" if outsiders else "chat.postMessage", exc)
            return
        if not isinstance(result, HandlerError) and result.attachments:
            # The answer is out; its charts follow into the same thread, a deck to the DM.
            deliver(
                services,
                client,
                pending(result.attachments),
                ctx=ctx,
                user_id=user,
                channel=channel,
                thread_ts=thread_ts,
            )

    def publish_home(
        body: dict[str, Any], event: dict[str, Any], client: WebClient, context: BoltContext
    ) -> None:
        if event.get("tab", "home") != "home":
            return
        from handlers.portfolio import home

        user = text_field(event, "user")
        if not user:
            return
        ctx = services.chat_context(
            user,
            client=client,
            team_id=text_field(body, "team_id") or None,
            home=home_of(context),
        )
        result = handled(services, lambda session: home(session, ctx=ctx))
        if isinstance(result, HandlerError):
            view = surface("home_error", {"message": result.message})
        else:
            view = surface("home", result.context)
        try:
            client.views_publish(user_id=user, view=view)
        except WEB_API_ERRORS as exc:
            web_api_failed("views.publish", exc)

    app.event("app_mention", matchers=[is_human_mention])(ack=ack_now, lazy=[answer_in_thread])
    app.event("message", matchers=[is_plain_im])(ack=ack_now, lazy=[answer_in_thread])
    app.event("app_home_opened")(ack=ack_now, lazy=[publish_home])

    @app.event("message")
    def ignore_other_messages(ack: Ack) -> None:
        # Edits, deletions, joins and other bots' posts: acknowledged so Slack does not retry them.
        ack()

    @app.event("app_mention")
    def ignore_bot_mentions(ack: Ack) -> None:
        ack()
