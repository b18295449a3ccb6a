"""Modal submissions: milestone edit, sentiment, settings, escalations; invalid input comes back as field errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from sqlmodel import Session

from bot.slack.listeners.common import (
    APOLOGY,
    BUSY_TEXT,
    after_ack,
    handled,
    refreshed_payload,
    send_to_response_url,
    text_field,
)
from bot.slack.messages import decode, message, surface
from bot.slack.middleware import home_of, request_key
from bot.slack.services import WEB_API_ERRORS, SlackServices, web_api_failed
from bot.slack.threads import Clicked, already_open, confirmation, post_parent, publish_update
from bot.slack.worker import BUSY, FAILED, LATE
from handlers.context import ChatContext
from handlers.errors import HandlerError, NotFound, ValidationFailed
from handlers.reply import Reply

logger = logging.getLogger(__name__)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def values(view: dict[str, Any]) -> dict[str, Any]:
    """Each input block's value by block_id, whatever element it holds (text, date, time, select...).

    A malformed state (it came over the wire) reads as the fields that are well formed.
    """
    found: dict[str, Any] = {}
    for block_id, actions in _dict(_dict(view.get("state")).get("values")).items():
        for element in _dict(actions).values():
            if not isinstance(element, dict):
                continue
            kind = element.get("type")
            if kind == "datepicker":
                found[block_id] = element.get("selected_date")
            elif kind == "timepicker":
                found[block_id] = element.get("selected_time")
            elif kind in ("static_select", "radio_buttons", "external_select"):
                found[block_id] = _dict(element.get("selected_option")).get("value")
            elif kind == "checkboxes":
                options = element.get("selected_options")
                found[block_id] = [
                    _dict(o).get("value") for o in (options if isinstance(options, list) else [])
                ]
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


WORKING = "Working on it… I'll show the outcome here in a moment."


def _submit(
    services: SlackServices,
    ack: Ack,
    view: dict[str, Any],
    body: dict[str, Any],
    context: BoltContext,
    work: Callable[[Session, dict[str, Any], dict[str, Any]], Reply],
    *,
    fallback_block: str,
    then: Callable[[Reply, dict[str, Any]], None] | None = None,
) -> None:
    """Run a modal's handler as the submitter, in the channel it came from.

    Done within the worker's budget: errors come back inline on the modal, or the modal closes
    and ``then`` (posting, redrawing) runs after the ack. Slower: the modal turns into "working
    on it" at once and views.update shows the outcome when the handler is done.
    """
    meta = decode(text_field(view, "private_metadata"))
    user = text_field(body.get("user") if isinstance(body.get("user"), dict) else {}, "id")
    channel = meta.get("c") if isinstance(meta.get("c"), str) else None
    key = request_key(body)
    state = values(view)

    def run() -> Reply | HandlerError:
        ctx = services.chat_context(
            user,
            channel,
            client=context.client,
            team_id=context.team_id,
            request_key=key,
            home=home_of(context),
        )
        return handled(services, lambda session: work(session, state, {"ctx": ctx, **meta}))

    def late(result: Reply | HandlerError) -> None:
        if isinstance(result, HandlerError):
            _show(services, context, view, "Not saved", result.message)
            return
        _show(services, context, view, "Done", result.text)
        if then is not None:
            then(result, meta)

    outcome = services.worker.run(run, late=late)
    if outcome is LATE:
        ack(
            response_action="update",
            view=surface("notice_modal", {"title": "Working", "text": WORKING}),
        )
        return
    if outcome is BUSY or outcome is FAILED:
        text = BUSY_TEXT if outcome is BUSY else APOLOGY
        ack(response_action="errors", errors={fallback_block: text})
        return
    result = outcome
    assert isinstance(result, Reply | HandlerError)
    if isinstance(result, HandlerError):
        blocks = [b.get("block_id") for b in _blocks(view) if b.get("block_id")]
        ack(response_action="errors", errors=field_errors(result, blocks, fallback_block))
        return
    ack()
    if then is not None:
        after_ack(services, lambda: then(result, meta))


def _blocks(view: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = view.get("blocks")
    return [b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []


def _show(
    services: SlackServices, context: BoltContext, view: dict[str, Any], title: str, text: str
) -> None:
    """Replace a "working on it" modal with the outcome."""
    view_id = text_field(view, "id")
    if not view_id:
        return
    client = context.client or services.client
    try:
        client.views_update(
            view_id=view_id, view=surface("notice_modal", {"title": title, "text": text})
        )
    except WEB_API_ERRORS as exc:
        web_api_failed("views.update", exc)


def _replace_original(reply: Reply, meta: dict[str, Any]) -> None:
    """After a modal saved, redraw the message it was opened from (its response_url)."""
    url = meta.get("r") if isinstance(meta.get("r"), str) else None
    send_to_response_url(
        url, refreshed_payload(reply, ephemeral=bool(meta.get("e"))), replace_original=True
    )


def _meta_id(meta: dict[str, Any], key: str) -> int:
    """An id the modal carried in its private_metadata; an old or tampered modal is refused."""
    value = meta.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**53:
        return value
    raise NotFound("This form is out of date. Open it again from the message.")


def _text(state: dict[str, Any], key: str) -> str | None:
    value = state.get(key)
    return value if isinstance(value, str) else None


def _list(state: dict[str, Any], key: str) -> list[str]:
    value = state.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


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
                milestone_id=_meta_id(meta, "m"),
                due_date=_text(state, "due_date"),
                owner_email=_text(state, "owner"),
                note=_text(state, "note") or "",
            )

        _submit(
            services,
            ack,
            view,
            body,
            context,
            work,
            fallback_block="note",
            then=_replace_original,
        )

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
                account_id=_meta_id(meta, "a"),
                value=_text(state, "value") or "",
                reason=_text(state, "reason"),
            )

        _submit(
            services,
            ack,
            view,
            body,
            context,
            work,
            fallback_block="reason",
            then=_replace_original,
        )

    @app.view("settings")
    def settings(
        ack: Ack, view: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        from handlers.settings import update_settings

        def work(session: Session, state: dict[str, Any], meta: dict[str, Any]) -> Reply:
            weekends = state.get("digest_weekends")
            return update_settings(
                session,
                ctx=meta["ctx"],
                digest_time=_text(state, "digest_time"),
                timezone=_text(state, "timezone"),
                digest_weekends=isinstance(weekends, list) and "weekends" in weekends,
                work_start=_text(state, "work_start"),
                work_end=_text(state, "work_end"),
                # A modal opened before this field existed leaves the choice as it was.
                interrupts=_list(state, "interrupts") if "interrupts" in state else None,
            )

        def then(reply: Reply, meta: dict[str, Any]) -> None:
            url = meta.get("r") if isinstance(meta.get("r"), str) else None
            send_to_response_url(
                url, message(reply), response_type="ephemeral", replace_original=False
            )

        _submit(services, ack, view, body, context, work, fallback_block="timezone", then=then)

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
                account=_text(state, "account"),
                severity=_text(state, "severity"),
                title=_text(state, "title"),
                description=_text(state, "description"),
            )

        def then(reply: Reply, meta: dict[str, Any]) -> None:
            origin = meta.get("c") if isinstance(meta.get("c"), str) else None
            if reply.context.get("existing"):
                # The same modal submitted twice: the first submit posts the thread.
                note = already_open(reply)
            else:
                posted = post_parent(
                    services, client, reply, origin=origin, team_id=context.team_id
                )
                note = confirmation(reply, posted)
            url = meta.get("r") if isinstance(meta.get("r"), str) else None
            if url:
                send_to_response_url(url, note, response_type="ephemeral", replace_original=False)
            elif origin:
                user = body.get("user") if isinstance(body.get("user"), dict) else {}
                try:
                    client.chat_postEphemeral(channel=origin, user=text_field(user, "id"), **note)
                except WEB_API_ERRORS as exc:
                    web_api_failed("chat.postEphemeral", exc)

        _submit(services, ack, view, body, context, work, fallback_block="title", then=then)

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
                return change(session, meta["ctx"], _meta_id(meta, "x"), state)

            def then(reply: Reply, meta: dict[str, Any]) -> None:
                publish_update(services, client, reply, Clicked.decoded(meta))

            _submit(
                services,
                ack,
                view,
                body,
                context,
                work,
                fallback_block=fallback_block,
                then=then,
            )

        return submitted

    def assign(
        session: Session, ctx: ChatContext, escalation_id: int, state: dict[str, Any]
    ) -> Reply:
        from handlers.escalations import assign

        return assign(
            session, ctx=ctx, escalation_id=escalation_id, owner_email=_text(state, "owner") or ""
        )

    def resolve(
        session: Session, ctx: ChatContext, escalation_id: int, state: dict[str, Any]
    ) -> Reply:
        from handlers.escalations import resolve

        return resolve(session, ctx=ctx, escalation_id=escalation_id, note=_text(state, "note"))

    def note(
        session: Session, ctx: ChatContext, escalation_id: int, state: dict[str, Any]
    ) -> Reply:
        from handlers.escalations import add_note

        return add_note(
            session, ctx=ctx, escalation_id=escalation_id, note=_text(state, "note") or ""
        )

    app.view("escalation_assign")(escalation_change(assign, "owner"))
    app.view("escalation_resolve")(escalation_change(resolve, "note"))
    app.view("escalation_note")(escalation_change(note, "note"))
