"""Buttons and menus: Share, "which account?", milestone status/Edit, sentiment, alerts, escalation threads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from sqlmodel import Session

from bot.slack.asks import Ask
from bot.slack.listeners.common import (
    ask_reply,
    chat_of,
    handled,
    private_payload,
    public_payload,
    refreshed_payload,
)
from bot.slack.messages import PRIVATE_METADATA, decode, encode, notice, surface
from bot.slack.services import SlackServices
from bot.slack.threads import Clicked, confirmation, post_parent, publish_update
from handlers.context import ChatContext
from handlers.errors import HandlerError
from handlers.reply import Reply

logger = logging.getLogger(__name__)

SENTIMENT_ACTIONS = ("sentiment_green", "sentiment_amber", "sentiment_red")
# Escalation card buttons that open a modal (handlers.escalations.FORMS, prefixed).
ESCALATION_FORMS = ("escalation_assign", "escalation_resolve", "escalation_note")


def _is_ephemeral(body: dict[str, Any]) -> bool:
    return bool((body.get("container") or {}).get("is_ephemeral"))


def _channel(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


def _refuse(respond: Respond, error: HandlerError) -> None:
    # A separate ephemeral note: the message the user clicked stays as it was.
    respond(response_type="ephemeral", replace_original=False, **notice(error.message))


def register(app: App, services: SlackServices) -> None:
    @app.action("share")
    def share(ack: Ack, action: dict[str, Any], context: BoltContext, respond: Respond) -> None:
        ack()
        ask = Ask.decoded(decode(action.get("value")))
        if ask is None:
            return
        # Re-asked as the clicker, in this channel: an external channel's limits apply again.
        result = ask_reply(services, chat_of(context), ask)
        if isinstance(result, HandlerError) or result.template in ("not_here", "error"):
            respond(response_type="ephemeral", replace_original=False, **public_payload(result))
            return
        respond(response_type="in_channel", replace_original=False, **public_payload(result))
        respond(delete_original=True)

    @app.action("choose_account")
    def choose_account(
        ack: Ack, action: dict[str, Any], context: BoltContext, respond: Respond
    ) -> None:
        ack()
        ask = Ask.decoded(decode(action.get("value")))
        if ask is None:
            return
        result = ask_reply(services, chat_of(context), ask)
        respond(replace_original=True, **private_payload(result, ask))

    @app.action("milestone_menu")
    def milestone_menu(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        respond: Respond,
        client: WebClient,
    ) -> None:
        ack()
        choice = (action.get("selected_option") or {}).get("value") or action.get("value") or ""
        verb, _, rest = choice.partition(":")
        milestone_id, _, status = rest.partition(":")
        if not milestone_id.isdigit():
            return
        ctx = chat_of(context)
        if verb == "edit":
            from handlers.plan import milestone_edit_form

            form = handled(
                services,
                lambda s: milestone_edit_form(s, ctx=ctx, milestone_id=int(milestone_id)),
            )
            if isinstance(form, HandlerError):
                _refuse(respond, form)
                return
            metadata = encode(
                {
                    "m": int(milestone_id),
                    "r": body.get("response_url"),
                    "c": _channel(body),
                    "e": _is_ephemeral(body),
                },
                PRIVATE_METADATA,
            )
            view = surface("milestone_edit", {**form.context, "private_metadata": metadata})
            client.views_open(trigger_id=body["trigger_id"], view=view)
            return
        if verb != "status":
            return
        from handlers.plan import set_milestone_status

        result = handled(
            services,
            lambda s: set_milestone_status(
                s, ctx=ctx, milestone_id=int(milestone_id), status=status
            ),
        )
        if isinstance(result, HandlerError):
            _refuse(respond, result)
            return
        respond(replace_original=True, **refreshed_payload(result, ephemeral=_is_ephemeral(body)))

    def open_sentiment(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], client: WebClient
    ) -> None:
        ack()
        choice = decode(action.get("value"))
        if not isinstance(choice.get("a"), int):
            return
        metadata = encode(
            {
                "a": choice["a"],
                "r": body.get("response_url"),
                "c": _channel(body),
                "e": _is_ephemeral(body),
            },
            PRIVATE_METADATA,
        )
        context = {
            "account": {"id": choice["a"], "name": str(choice.get("n") or "")},
            "value": str(choice.get("v") or ""),
            "private_metadata": metadata,
        }
        client.views_open(trigger_id=body["trigger_id"], view=surface("sentiment_modal", context))

    for action_id in SENTIMENT_ACTIONS:
        app.action(action_id)(open_sentiment)

    def status_button(
        change: Callable[[Session, ChatContext, int], Reply],
    ) -> Callable[..., None]:
        """An alert button: its value is the id; the card is updated for everyone."""

        def clicked(
            ack: Ack, action: dict[str, Any], context: BoltContext, respond: Respond
        ) -> None:
            ack()
            value = str(action.get("value") or "")
            if not value.isdigit():
                return
            ctx = chat_of(context)
            result = handled(services, lambda s: change(s, ctx, int(value)))
            if isinstance(result, HandlerError):
                _refuse(respond, result)
                return
            respond(replace_original=True, **public_payload(result))

        return clicked

    def acknowledge_alert(s: Session, ctx: ChatContext, alert_id: int) -> Reply:
        from handlers.alerts import acknowledge_alert

        return acknowledge_alert(s, ctx=ctx, alert_id=alert_id)

    def snooze_alert(s: Session, ctx: ChatContext, alert_id: int) -> Reply:
        from handlers.alerts import snooze_alert

        return snooze_alert(s, ctx=ctx, alert_id=alert_id)

    # Action ids as handlers.alerts.ACK_ACTION_ID / SNOOZE_ACTION_ID put them on the alert card.
    app.action("alert_acknowledge")(status_button(acknowledge_alert))
    app.action("alert_snooze")(status_button(snooze_alert))

    @app.action("escalation_acknowledge")
    def acknowledge_escalation(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        respond: Respond,
        client: WebClient,
    ) -> None:
        ack()
        value = str(action.get("value") or "")
        if not value.isdigit():
            return
        from handlers.escalations import acknowledge

        ctx = chat_of(context)
        result = handled(services, lambda s: acknowledge(s, ctx=ctx, escalation_id=int(value)))
        if isinstance(result, HandlerError):
            _refuse(respond, result)
            return
        publish_update(services, client, result, Clicked.of(body))

    def open_escalation_form(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        respond: Respond,
        client: WebClient,
    ) -> None:
        """Assign, Resolve and Add note open a modal; who may not change it is told before it opens."""
        ack()
        value = str(action.get("value") or "")
        if not value.isdigit():
            return
        from handlers.escalations import escalation_form

        form_name = str(action.get("action_id", "")).removeprefix("escalation_")
        ctx = chat_of(context)
        form = handled(
            services,
            lambda s: escalation_form(s, ctx=ctx, escalation_id=int(value), form=form_name),
        )
        if isinstance(form, HandlerError):
            _refuse(respond, form)
            return
        metadata = encode({"x": int(value), **Clicked.of(body).encoded()}, PRIVATE_METADATA)
        view = surface(form.template, {**form.context, "private_metadata": metadata})
        client.views_open(trigger_id=body["trigger_id"], view=view)

    for action_id in ESCALATION_FORMS:
        app.action(action_id)(open_escalation_form)

    def _answer_change(
        result: Reply | HandlerError,
        body: dict[str, Any],
        context: BoltContext,
        respond: Respond,
        client: WebClient,
    ) -> None:
        """The reply to a confirm / draft button: replaces the card it was clicked on."""
        if isinstance(result, HandlerError):
            _refuse(respond, result)
            return
        if result.template == "escalation":
            # Opened: posted like /escalate (a thread in the escalation channel, or right here).
            if services.container.settings.escalation_channel:
                posted = post_parent(
                    services, client, result, origin=_channel(body), team_id=context.team_id
                )
                respond(replace_original=True, **confirmation(result, posted))
                return
            respond(response_type="in_channel", replace_original=False, **public_payload(result))
            respond(delete_original=True)
            return
        respond(replace_original=True, **refreshed_payload(result, ephemeral=_is_ephemeral(body)))

    @app.action("action_confirm")
    def confirm_change(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        respond: Respond,
        client: WebClient,
    ) -> None:
        """A change asked for in words, confirmed: the existing handler does it (once)."""
        ack()
        key = str(action.get("value") or "")
        from handlers.actions import confirm

        ctx = chat_of(context)
        result = handled(services, lambda s: confirm(s, ctx=ctx, key=key))
        _answer_change(result, body, context, respond, client)

    @app.action("action_cancel")
    def cancel_change(
        ack: Ack, action: dict[str, Any], context: BoltContext, respond: Respond
    ) -> None:
        ack()
        key = str(action.get("value") or "")
        from handlers.actions import cancel

        ctx = chat_of(context)
        result = handled(services, lambda s: cancel(s, ctx=ctx, key=key))
        if isinstance(result, HandlerError):
            _refuse(respond, result)
            return
        respond(replace_original=True, **public_payload(result))

    @app.action("escalation_draft_severity")
    def draft_severity(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        respond: Respond,
        client: WebClient,
    ) -> None:
        """A severity picked on an escalation draft: the next step (confirm, or what happened)."""
        ack()
        choice = decode(action.get("value"))
        key, severity = str(choice.get("k") or ""), str(choice.get("s") or "")
        if not key or not severity:
            return
        from handlers.actions import set_draft_severity

        ctx = chat_of(context)
        result = handled(
            services, lambda s: set_draft_severity(s, ctx=ctx, key=key, severity=severity)
        )
        _answer_change(result, body, context, respond, client)

    @app.action("noop")
    def noop(ack: Ack) -> None:
        # Link buttons and the like still send a block_actions payload; it needs only an ack.
        ack()
