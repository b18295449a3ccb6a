"""Modal submissions: milestone edit, sentiment, settings, escalations; invalid input comes back as field errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from sqlmodel import Session

from bot.slack.listeners.common import handled, refreshed_payload, send_to_response_url
from bot.slack.messages import decode, message
from bot.slack.services import SlackServices
from bot.slack.threads import Clicked, confirmation, post_parent, publish_update
from handlers.context import ChatContext
from handlers.errors import HandlerError, ValidationFailed
from handlers.reply import Reply

logger = logging.getLogger(__name__)


def values(view: dict[str, Any]) -> dict[str, Any]:
    """Each input block's value by block_id, whatever element it holds (text, date, time, select...)."""
    found: dict[str, Any] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for element in actions.values():
            kind = element.get("type")
            if kind == "datepicker":
                found[block_id] = element.get("selected_date")
            elif kind == "timepicker":
                found[block_id] = element.get("selected_time")
            elif kind in ("static_select", "radio_buttons", "external_select"):
                found[block_id] = (element.get("selected_option") or {}).get("value")
            elif kind == "checkboxes":
                found[block_id] = [o.get("value") for o in element.get("selected_options") or []]
            else:
                found[block_id] = element.get("value")
    return found


def field_errors(error: HandlerError, blocks: list[str], fallback: str) -> dict[str, str]:
    """Map a handler's per-field errors to the modal's block ids; anything else lands on `fallback`."""
    if isinstance(error, ValidationFailed):
        errors: dict[str, str] = {}
        for field, text in error.errors.items():
            block = field if field in blocks else fallback
            errors[block] = (errors[block] + "; " if block in errors else "") + text
        return errors
    return {fallback: error.message}


def _submit(
    services: SlackServices,
    ack: Ack,
    view: dict[str, Any],
    body: dict[str, Any],
    context: BoltContext,
    work: Callable[[Session, dict[str, Any], dict[str, Any]], Reply],
    *,
    fallback_block: str,
) -> tuple[Reply, dict[str, Any]] | None:
    """Run a modal's handler as the submitter, in the channel it came from; ack errors inline."""
    meta = decode(view.get("private_metadata"))
    ctx = services.chat_context(
        body["user"]["id"], meta.get("c"), client=context.client, team_id=context.team_id
    )
    state = values(view)
    result = handled(services, lambda session: work(session, state, {"ctx": ctx, **meta}))
    if isinstance(result, HandlerError):
        blocks = [b.get("block_id") for b in view.get("blocks") or [] if b.get("block_id")]
        ack(response_action="errors", errors=field_errors(result, blocks, fallback_block))
        return None
    ack()
    return result, meta


def _replace_original(done: tuple[Reply, dict[str, Any]] | None) -> None:
    """After a modal saved, redraw the message it was opened from (its response_url)."""
    if done is None:
        return
    reply, meta = done
    send_to_response_url(
        meta.get("r"),
        refreshed_payload(reply, ephemeral=bool(meta.get("e"))),
        replace_original=True,
    )


def register(app: App, services: SlackServices) -> None:
    @app.view("milestone_edit")
    def milestone_edit(
        ack: Ack, view: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        from handlers.plan import edit_milestone

        def work(session: Session, state: dict[str, Any], meta: dict[str, Any]) -> Reply:
            return edit_milestone(
                session,
                ctx=meta["ctx"],
                milestone_id=int(meta["m"]),
                due_date=state.get("due_date"),
                owner_email=state.get("owner"),
                note=state.get("note") or "",
            )

        done = _submit(services, ack, view, body, context, work, fallback_block="note")
        _replace_original(done)

    @app.view("sentiment")
    def sentiment(
        ack: Ack, view: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        from handlers.sentiment import set_sentiment

        def work(session: Session, state: dict[str, Any], meta: dict[str, Any]) -> Reply:
            return set_sentiment(
                session,
                ctx=meta["ctx"],
                models=services.container.health_models,
                account_id=int(meta["a"]),
                value=state.get("value") or "",
                reason=state.get("reason"),
            )

        done = _submit(services, ack, view, body, context, work, fallback_block="reason")
        _replace_original(done)

    @app.view("settings")
    def settings(
        ack: Ack, view: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        from handlers.settings import update_settings

        def work(session: Session, state: dict[str, Any], meta: dict[str, Any]) -> Reply:
            return update_settings(
                session,
                ctx=meta["ctx"],
                digest_time=state.get("digest_time"),
                timezone=state.get("timezone"),
                digest_weekends="weekends" in (state.get("digest_weekends") or []),
                work_start=state.get("work_start"),
                work_end=state.get("work_end"),
                # A modal opened before this field existed leaves the choice as it was.
                interrupts=(state.get("interrupts") or []) if "interrupts" in state else None,
            )

        done = _submit(services, ack, view, body, context, work, fallback_block="timezone")
        if done is not None:
            reply, meta = done
            send_to_response_url(
                meta.get("r"), message(reply), response_type="ephemeral", replace_original=False
            )

    @app.view("escalation_open")
    def escalation_open(
        ack: Ack,
        view: dict[str, Any],
        body: dict[str, Any],
        context: BoltContext,
        client: WebClient,
    ) -> None:
        from handlers.escalations import submit_escalation

        def work(session: Session, state: dict[str, Any], meta: dict[str, Any]) -> Reply:
            return submit_escalation(
                session,
                ctx=meta["ctx"],
                account=state.get("account"),
                severity=state.get("severity"),
                title=state.get("title"),
                description=state.get("description"),
            )

        done = _submit(services, ack, view, body, context, work, fallback_block="title")
        if done is None:
            return
        reply, meta = done
        origin = meta.get("c") if isinstance(meta.get("c"), str) else None
        posted = post_parent(services, client, reply, origin=origin, team_id=context.team_id)
        note = confirmation(reply, posted)
        if meta.get("r"):
            send_to_response_url(
                meta.get("r"), note, response_type="ephemeral", replace_original=False
            )
        elif origin:
            client.chat_postEphemeral(channel=origin, user=body["user"]["id"], **note)

    def escalation_change(
        change: Callable[[Session, ChatContext, int, dict[str, Any]], Reply], fallback_block: str
    ) -> Callable[..., None]:
        """Assign, resolve, note: run the change, then update the card and reply in its thread."""

        def submitted(
            ack: Ack,
            view: dict[str, Any],
            body: dict[str, Any],
            context: BoltContext,
            client: WebClient,
        ) -> None:
            def work(session: Session, state: dict[str, Any], meta: dict[str, Any]) -> Reply:
                return change(session, meta["ctx"], int(meta["x"]), state)

            done = _submit(services, ack, view, body, context, work, fallback_block=fallback_block)
            if done is not None:
                reply, meta = done
                publish_update(services, client, reply, Clicked.decoded(meta))

        return submitted

    def assign(
        session: Session, ctx: ChatContext, escalation_id: int, state: dict[str, Any]
    ) -> Reply:
        from handlers.escalations import assign

        return assign(
            session, ctx=ctx, escalation_id=escalation_id, owner_email=state.get("owner") or ""
        )

    def resolve(
        session: Session, ctx: ChatContext, escalation_id: int, state: dict[str, Any]
    ) -> Reply:
        from handlers.escalations import resolve

        return resolve(session, ctx=ctx, escalation_id=escalation_id, note=state.get("note"))

    def note(
        session: Session, ctx: ChatContext, escalation_id: int, state: dict[str, Any]
    ) -> Reply:
        from handlers.escalations import add_note

        return add_note(session, ctx=ctx, escalation_id=escalation_id, note=state.get("note") or "")

    app.view("escalation_assign")(escalation_change(assign, "owner"))
    app.view("escalation_resolve")(escalation_change(resolve, "note"))
    app.view("escalation_note")(escalation_change(note, "note"))
