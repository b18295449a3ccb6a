"""Buttons and menus: Share, "which account?", milestone status/Edit, sentiment, alerts, escalation threads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from sqlmodel import Session

from bot.slack.asks import Ask
from bot.slack.files import deliver, pending
from bot.slack.listeners.common import (
    Responder,
    after_ack,
    as_id,
    ask_reply,
    chat_of,
    handled,
    open_modal,
    private_payload,
    public_payload,
    refreshed_payload,
    text_field,
)
from bot.slack.messages import PRIVATE_METADATA, decode, encode, notice, surface
from bot.slack.middleware import home_of
from bot.slack.services import SlackServices
from bot.slack.threads import Clicked, confirmation, post_parent, publish_update
from handlers import access
from handlers.access import NOT_SHAREABLE, OUTSIDERS_HERE
from handlers.context import ChatContext
from handlers.errors import HandlerError
from handlers.reply import Reply

logger = logging.getLogger(__name__)

SENTIMENT_ACTIONS = ("sentiment_green", "sentiment_amber", "sentiment_red")
# Escalation card buttons that open a modal (handlers.escalations.FORMS, prefixed).
ESCALATION_FORMS = ("escalation_assign", "escalation_resolve", "escalation_note")


def _part(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _is_ephemeral(body: dict[str, Any]) -> bool:
    return bool(_part(body, "container").get("is_ephemeral"))


def _channel(body: dict[str, Any]) -> str | None:
    return text_field(_part(body, "channel"), "id") or (
        text_field(_part(body, "container"), "channel_id") or None
    )


def _refuse(respond: Responder, error: HandlerError) -> None:
    # A separate ephemeral note: the message the user clicked stays as it was.
    respond(response_type="ephemeral", replace_original=False, **notice(error.message))


def _done(
    services: SlackServices, respond: Responder, work: Callable[[Session], Reply]
) -> Reply | None:
    """Run the handler behind a click; a refusal is said next to the message and gives None."""
    result = handled(services, work)
    if isinstance(result, HandlerError):
        _refuse(respond, result)
        return None
    return result


def _answered_from(body: dict[str, Any]) -> dict[str, Any]:
    """Where a modal's answer goes: the clicked message's response URL and channel, and whether
    it was ephemeral (the ``r``, ``c``, ``e`` of the modal's private metadata)."""
    return {"r": text_field(body, "response_url"), "c": _channel(body), "e": _is_ephemeral(body)}


def _post_in_channel(respond: Responder, result: Reply) -> None:
    """The answer posted for everyone in the channel; the private message clicked on goes."""
    respond(response_type="in_channel", replace_original=False, **public_payload(result))
    respond(delete_original=True)


def _open_or_say(
    respond: Responder, client: WebClient, body: dict[str, Any], view: dict[str, Any]
) -> None:
    """Open a modal for the click; if Slack does not take it, say so next to the message."""
    failed = open_modal(client, text_field(body, "trigger_id"), view)
    if failed is not None:
        respond(replace_original=False, **failed)


def register(app: App, services: SlackServices) -> None:
    @app.action("share")
    def share(ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        ack()
        respond = Responder.of(body)
        ask = Ask.decoded(decode(text_field(action, "value")))
        if ask is None:
            return

        def work() -> None:
            # Re-asked as the clicker, in this channel: an external channel's limits apply again.
            ctx = chat_of(context)
            if not access.shareable_here(ctx):
                respond(response_type="ephemeral", replace_original=False, **notice(NOT_SHAREABLE))
                return
            # A guest or an outsider reads along: the channel is a shared channel for this.
            ctx, outsiders = services.for_everyone(
                ctx,
                context.channel_id,
                client=context.client,
                team_id=context.team_id,
                home=home_of(context),
            )
            result = ask_reply(services, ctx, ask)
            if outsiders and isinstance(result, Reply) and result.template == "not_here":
                # Said plainly: the not_here text speaks of Slack Connect, which this may not be.
                respond(response_type="ephemeral", replace_original=False, **notice(OUTSIDERS_HERE))
                return
            if isinstance(result, HandlerError) or result.template in (
                "not_here",
                "error",
                "notice",
            ):
                respond(response_type="ephemeral", replace_original=False, **public_payload(result))
                return
            _post_in_channel(respond, result)

        after_ack(services, work)

    @app.action("choose_account")
    def choose_account(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        respond = Responder.of(body)
        ask = Ask.decoded(decode(text_field(action, "value")))
        if ask is None:
            return

        def work() -> None:
            result = ask_reply(services, chat_of(context), ask)
            respond(replace_original=True, **private_payload(result, ask))

        after_ack(services, work)

    @app.action("milestone_menu")
    def milestone_menu(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        client: WebClient,
    ) -> None:
        ack()
        respond = Responder.of(body)
        selected = action.get("selected_option")
        choice = text_field(selected, "value") if isinstance(selected, dict) else ""
        verb, _, rest = (choice or text_field(action, "value")).partition(":")
        raw_id, _, status = rest.partition(":")
        milestone_id = as_id(raw_id)
        if milestone_id is None or verb not in ("edit", "status"):
            return
        after_ack(
            services,
            lambda: _milestone_menu(verb, milestone_id, status, body, context, respond, client),
        )

    def _milestone_menu(
        verb: str,
        milestone_id: int,
        status: str,
        body: dict[str, Any],
        context: BoltContext,
        respond: Responder,
        client: WebClient,
    ) -> None:
        ctx = chat_of(context)
        if verb == "edit":
            from handlers.plan import milestone_edit_form

            form = _done(
                services,
                respond,
                lambda s: milestone_edit_form(s, ctx=ctx, milestone_id=milestone_id),
            )
            if form is None:
                return
            metadata = encode({"m": milestone_id, **_answered_from(body)}, PRIVATE_METADATA)
            view = surface("milestone_edit", {**form.context, "private_metadata": metadata})
            _open_or_say(respond, client, body, view)
            return
        from handlers.plan import set_milestone_status

        result = _done(
            services,
            respond,
            lambda s: set_milestone_status(s, ctx=ctx, milestone_id=milestone_id, status=status),
        )
        if result is None:
            return
        respond(replace_original=True, **refreshed_payload(result, ephemeral=_is_ephemeral(body)))

    def open_sentiment(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], client: WebClient
    ) -> None:
        ack()
        respond = Responder.of(body)
        choice = decode(text_field(action, "value"))
        if not isinstance(choice.get("a"), int):
            return
        metadata = encode({"a": choice["a"], **_answered_from(body)}, PRIVATE_METADATA)
        context = {
            "account": {"id": choice["a"], "name": str(choice.get("n") or "")[:200]},
            "value": str(choice.get("v") or "")[:20],
            "private_metadata": metadata,
        }
        view = surface("sentiment_modal", context)
        after_ack(services, lambda: _open_or_say(respond, client, body, view))

    for action_id in SENTIMENT_ACTIONS:
        app.action(action_id)(open_sentiment)

    def status_button(
        change: Callable[[Session, ChatContext, int], Reply],
    ) -> Callable[..., None]:
        """An alert button: its value is the id; the card is updated for everyone."""

        def clicked(
            ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
        ) -> None:
            ack()
            respond = Responder.of(body)
            value = as_id(text_field(action, "value"))
            if value is None:
                return

            def work() -> None:
                ctx = chat_of(context)
                result = _done(services, respond, lambda s: change(s, ctx, value))
                if result is not None:
                    respond(replace_original=True, **public_payload(result))

            after_ack(services, work)

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

    @app.action("alert_menu")
    def alert_menu(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        """The menu of an alert listed in a digest or an urgent batch: the list stays as it was,
        the answer (done, refused, or the account's health card) comes privately."""
        ack()
        respond = Responder.of(body)
        selected = action.get("selected_option")
        choice = text_field(selected, "value") if isinstance(selected, dict) else ""

        def work() -> None:
            ctx = chat_of(context)
            verb, _, rest = choice.partition(":")
            account_id = as_id(rest)
            if verb == "health" and account_id is not None:
                ask = Ask(kind="health", account_id=account_id)
                opened = ask_reply(services, ctx, ask)
                respond(
                    response_type="ephemeral",
                    replace_original=False,
                    **private_payload(opened, ask),
                )
                return
            from handlers.alerts import alert_line_action

            result = _done(services, respond, lambda s: alert_line_action(s, ctx=ctx, value=choice))
            if result is not None:
                respond(response_type="ephemeral", replace_original=False, **notice(result.text))

        after_ack(services, work)

    @app.action("digest_open")
    def digest_open(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        client: WebClient,
    ) -> None:
        """A digest line's button (Renewal, Prep, Plan, Health): the answer comes privately below
        the digest, which stays as it was; a QBR's draft deck follows in the DM. Run after the
        ack: a prep and its deck take longer than Slack's three seconds."""
        ack()
        respond = Responder.of(body)
        ask = Ask.decoded(decode(text_field(action, "value")))
        if ask is None:
            return
        user = body.get("user") if isinstance(body.get("user"), dict) else {}

        def work() -> None:
            ctx = chat_of(context)
            result = ask_reply(services, ctx, ask)
            respond(
                response_type="ephemeral", replace_original=False, **private_payload(result, ask)
            )
            if isinstance(result, Reply) and result.attachments:
                deliver(
                    services,
                    client,
                    pending(result.attachments),
                    ctx=ctx,
                    user_id=text_field(user, "id") or None,
                    channel=None,
                    charts_to_dm=True,
                )

        after_ack(services, work)

    @app.action("escalation_acknowledge")
    def acknowledge_escalation(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        client: WebClient,
    ) -> None:
        ack()
        respond = Responder.of(body)
        value = as_id(text_field(action, "value"))
        if value is None:
            return
        from handlers.escalations import acknowledge

        def work() -> None:
            ctx = chat_of(context)
            result = _done(
                services, respond, lambda s: acknowledge(s, ctx=ctx, escalation_id=value)
            )
            if result is not None:
                publish_update(services, client, result, Clicked.of(body))

        after_ack(services, work)

    def open_escalation_form(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        client: WebClient,
    ) -> None:
        """Assign, Resolve and Add note open a modal; who may not change it is told before it opens."""
        ack()
        respond = Responder.of(body)
        value = as_id(text_field(action, "value"))
        if value is None:
            return
        from handlers.escalations import escalation_form

        form_name = text_field(action, "action_id").removeprefix("escalation_")

        def work() -> None:
            ctx = chat_of(context)
            form = _done(
                services,
                respond,
                lambda s: escalation_form(s, ctx=ctx, escalation_id=value, form=form_name),
            )
            if form is None:
                return
            metadata = encode({"x": value, **Clicked.of(body).encoded()}, PRIVATE_METADATA)
            view = surface(form.template, {**form.context, "private_metadata": metadata})
            _open_or_say(respond, client, body, view)

        after_ack(services, work)

    for action_id in ESCALATION_FORMS:
        app.action(action_id)(open_escalation_form)

    def _answer_change(
        result: Reply | HandlerError,
        body: dict[str, Any],
        context: BoltContext,
        respond: Responder,
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
            _post_in_channel(respond, result)
            return
        respond(replace_original=True, **refreshed_payload(result, ephemeral=_is_ephemeral(body)))

    @app.action("action_confirm")
    def confirm_change(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        client: WebClient,
    ) -> None:
        """A change asked for in words, confirmed: the existing handler does it (once)."""
        ack()
        respond = Responder.of(body)
        key = text_field(action, "value")
        if not key:
            return
        from handlers.actions import confirm

        ctx = chat_of(context)

        def work() -> None:
            result = handled(services, lambda s: confirm(s, ctx=ctx, key=key))
            _answer_change(result, body, context, respond, client)

        after_ack(services, work)

    @app.action("action_cancel")
    def cancel_change(
        ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        respond = Responder.of(body)
        key = text_field(action, "value")
        if not key:
            return
        from handlers.actions import cancel

        ctx = chat_of(context)

        def work() -> None:
            result = _done(services, respond, lambda s: cancel(s, ctx=ctx, key=key))
            if result is not None:
                respond(replace_original=True, **public_payload(result))

        after_ack(services, work)

    @app.action("escalation_draft_severity")
    def draft_severity(
        ack: Ack,
        action: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        client: WebClient,
    ) -> None:
        """A severity picked on an escalation draft: the next step (confirm, or what happened)."""
        ack()
        respond = Responder.of(body)
        choice = decode(text_field(action, "value"))
        key, severity = str(choice.get("k") or ""), str(choice.get("s") or "")
        if not key or not severity:
            return
        from handlers.actions import set_draft_severity

        ctx = chat_of(context)

        def work() -> None:
            result = handled(
                services, lambda s: set_draft_severity(s, ctx=ctx, key=key, severity=severity)
            )
            _answer_change(result, body, context, respond, client)

        after_ack(services, work)

    @app.action("noop")
    def noop(ack: Ack) -> None:
        # Link buttons and the like still send a block_actions payload; it needs only an ack.
        ack()
