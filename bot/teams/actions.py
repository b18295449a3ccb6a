"""Adaptive Card Action.Execute verbs: each names the handler it runs, the form to redraw when
input is invalid, the card to redraw under a refusal, and what must follow (shared card edits)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlmodel import Session

from handlers.context import ChatContext
from handlers.reply import Reply

if TYPE_CHECKING:
    from bot.container import Container

Run = Callable[[Session, ChatContext, dict[str, Any], "Container"], Reply]
# A card drawn again under a refusal; None when the data does not say which one.
Redraw = Callable[[Session, ChatContext, dict[str, Any], "Container"], Reply | None]
# What must happen after the handler changed something, besides answering the clicker.
# "auto": decided by the reply (a confirm may open an escalation or move one).
After = Literal["escalation", "opened", "alert", "auto"]

ESCALATION_FIELDS = frozenset({"account", "severity", "title", "description"})
SETTINGS_FIELDS = frozenset(
    {"digest_time", "timezone", "digest_weekends", "work_start", "work_end", "interrupts"}
)


class BadAction(ValueError):
    """The card's data lacks a field or carries a wrong type (an old or tampered card)."""


@dataclass(frozen=True)
class CardAction:
    """One verb.

    Attributes:
        run: the handler call; raises HandlerError for refusals and invalid input.
        after: the follow-up a change needs (escalation thread, new escalation, alert copies).
        form: the form to draw again, with the errors next to their fields, when ``run`` raises
            ValidationFailed about the ``fields`` it has.
        fields: the input ids of ``form``.
        card: the card to draw again, unchanged, under a refusal (else the refusal alone).
        done: a line shown above the answer when it worked ("Saved.").
    """

    run: Run
    after: After | None = None
    form: Run | None = None
    fields: frozenset[str] = frozenset()
    card: Redraw | None = None
    done: str | None = None


def _int(data: dict[str, Any], key: str) -> int:
    try:
        return int(data[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadAction(f"{key} must be an integer") from exc


def _text(data: dict[str, Any], key: str) -> str | None:
    """An optional free-text input (empty means not given)."""
    value = data.get(key)
    if value is None:
        return None
    return str(value).strip() or None


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadAction(f"{key} must be a non-empty string")
    return value


def _flag(data: dict[str, Any], key: str) -> bool | None:
    """An Input.Toggle: "true"/"false" (its valueOn/valueOff); absent leaves the setting alone."""
    value = data.get(key)
    if value is None:
        return None
    return str(value).strip().lower() in ("true", "1", "yes", "on")


# --- plans, sentiment, accounts ---------------------------------------------------------------


def open_account(
    session: Session, ctx: ChatContext, *, account_id: int, intent: str | None, models: Any
) -> Reply:
    """A button that names an account by id (a choice, a suggestion): run the intent it was for."""
    if intent == "success_plan":
        from handlers import plan

        return plan.success_plan(session, ctx=ctx, account_id=account_id)
    if intent == "account_changes":
        from handlers import health

        return health.account_changes(session, ctx=ctx, models=models, account_id=account_id)
    if intent == "milestones_overdue":
        from handlers import portfolio

        return portfolio.overdue_milestones(session, ctx=ctx, account_id=account_id)
    if intent == "qbr_prep":
        from handlers.qbr import qbr_prep

        return qbr_prep(session, ctx=ctx, models=models, account_id=account_id)
    if intent == "explain_health":
        from handlers.explain import explain_health

        return explain_health(session, ctx=ctx, models=models, account_id=account_id)
    from handlers import health

    return health.account_health(session, ctx=ctx, models=models, account_id=account_id)


def _plan_card(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply | None:
    if "account_id" not in d:
        return None
    return open_account(
        s, ctx, account_id=_int(d, "account_id"), intent="success_plan", models=c.health_models
    )


def _health_card(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply | None:
    if "account_id" not in d:
        return None
    return open_account(
        s, ctx, account_id=_int(d, "account_id"), intent="account_health", models=c.health_models
    )


def _set_milestone_status(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import plan

    return plan.set_milestone_status(
        s,
        ctx=ctx,
        milestone_id=_int(d, "milestone_id"),
        status=_str(d, "status"),
        note=_text(d, "note"),
    )


def _milestone_edit_form(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import plan

    return plan.milestone_edit_form(s, ctx=ctx, milestone_id=_int(d, "milestone_id"))


def _edit_milestone(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import plan

    return plan.edit_milestone(
        s,
        ctx=ctx,
        milestone_id=_int(d, "milestone_id"),
        due_date=_text(d, "due_date"),
        owner_email=_text(d, "owner_email"),
        # The form always sends the note field: "" clears it, absent leaves it alone.
        note=None if d.get("note") is None else str(d["note"]),
    )


def _milestone_form_again(
    s: Session, ctx: ChatContext, d: dict[str, Any], c: Container
) -> Reply | None:
    if "milestone_id" not in d:
        return None
    return _milestone_edit_form(s, ctx, d, c)


def _set_sentiment(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import sentiment

    return sentiment.set_sentiment(
        s,
        ctx=ctx,
        models=c.health_models,
        account_id=_int(d, "account_id"),
        value=_str(d, "value"),
        reason=_text(d, "reason"),
    )


def _open_account(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    return open_account(
        s, ctx, account_id=_int(d, "account_id"), intent=_text(d, "intent"), models=c.health_models
    )


# --- escalations ------------------------------------------------------------------------------


def _escalation_view(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import escalations

    return escalations.escalation_view(s, ctx=ctx, escalation_id=_int(d, "escalation_id"))


def _acknowledge_escalation(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import escalations

    return escalations.acknowledge(s, ctx=ctx, escalation_id=_int(d, "escalation_id"))


def _resolve_escalation(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import escalations

    return escalations.resolve(
        s, ctx=ctx, escalation_id=_int(d, "escalation_id"), note=_text(d, "note")
    )


def _assign_escalation(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import escalations

    return escalations.assign(
        s, ctx=ctx, escalation_id=_int(d, "escalation_id"), owner_email=_text(d, "owner") or ""
    )


def _note_escalation(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import escalations

    return escalations.add_note(
        s, ctx=ctx, escalation_id=_int(d, "escalation_id"), note=_text(d, "note") or ""
    )


def _escalation_form(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import escalations

    return escalations.escalation_form(
        s, ctx=ctx, escalation_id=_int(d, "escalation_id"), form=_str(d, "form")
    )


def _form_named(form: str) -> Run:
    def again(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
        return _escalation_form(s, ctx, {**d, "form": form}, c)

    return again


def _new_escalation_form(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import escalations

    return escalations.new_escalation_form(s, ctx=ctx, account=_text(d, "account") or "")


def _open_escalation(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import escalations

    return escalations.submit_escalation(
        s,
        ctx=ctx,
        account=_text(d, "account"),
        severity=_text(d, "severity"),
        title=_text(d, "title"),
        description=_text(d, "description"),
    )


# --- alerts -----------------------------------------------------------------------------------


def _alert_view(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers.alerts import alert_view

    return alert_view(s, ctx=ctx, alert_id=_int(d, "alert_id"))


def _acknowledge_alert(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers.alerts import acknowledge_alert

    return acknowledge_alert(s, ctx=ctx, alert_id=_int(d, "alert_id"))


def _snooze_alert(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers.alerts import snooze_alert

    days = _int(d, "days") if d.get("days") is not None else 7
    return snooze_alert(s, ctx=ctx, alert_id=_int(d, "alert_id"), days=days)


# --- settings and home ------------------------------------------------------------------------


def _settings(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers.settings import user_settings

    return user_settings(s, ctx=ctx)


def _save_settings(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers.settings import update_settings

    return update_settings(
        s,
        ctx=ctx,
        digest_time=_text(d, "digest_time") or "",
        timezone=_text(d, "timezone") or "",
        digest_weekends=_flag(d, "digest_weekends"),
        work_start=_text(d, "work_start"),
        work_end=_text(d, "work_end"),
        # A multi-select sends "red,sev1" ("" when nothing is ticked); a card drawn before the
        # field existed sends nothing, and the choice stays as it was.
        interrupts=(
            [k.strip() for k in str(d.get("interrupts") or "").split(",") if k.strip()]
            if "interrupts" in d
            else None
        ),
    )


def _home(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers.portfolio import home

    return home(s, ctx=ctx)


# --- changes asked for in words (handlers.actions) ----------------------------------------------


def _confirm(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import actions

    return actions.confirm(s, ctx=ctx, key=_str(d, "key"))


def _cancel(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import actions

    return actions.cancel(s, ctx=ctx, key=_str(d, "key"))


def _draft_severity(s: Session, ctx: ChatContext, d: dict[str, Any], c: Container) -> Reply:
    from handlers import actions

    return actions.set_draft_severity(s, ctx=ctx, key=_str(d, "key"), severity=_str(d, "severity"))


ACTIONS: dict[str, CardAction] = {
    "action.confirm": CardAction(_confirm, after="auto"),
    "action.cancel": CardAction(_cancel),
    "escalation.draft": CardAction(_draft_severity),
    "milestone.status": CardAction(_set_milestone_status, card=_plan_card),
    "milestone.edit_form": CardAction(_milestone_edit_form, card=_plan_card),
    "milestone.edit": CardAction(_edit_milestone, card=_milestone_form_again),
    "sentiment.set": CardAction(_set_sentiment, card=_health_card),
    "account.open": CardAction(_open_account),
    "escalation.view": CardAction(_escalation_view),
    "escalation.acknowledge": CardAction(
        _acknowledge_escalation, after="escalation", card=_escalation_view
    ),
    "escalation.form": CardAction(_escalation_form, card=_escalation_view),
    "escalation.assign": CardAction(
        _assign_escalation,
        after="escalation",
        form=_form_named("assign"),
        fields=frozenset({"owner"}),
        card=_escalation_view,
    ),
    "escalation.note": CardAction(
        _note_escalation,
        after="escalation",
        form=_form_named("note"),
        fields=frozenset({"note"}),
        card=_escalation_view,
    ),
    "escalation.resolve": CardAction(
        _resolve_escalation,
        after="escalation",
        form=_form_named("resolve"),
        fields=frozenset({"note"}),
        card=_escalation_view,
    ),
    "escalation.new_form": CardAction(_new_escalation_form),
    "escalation.open": CardAction(
        _open_escalation,
        after="opened",
        form=_new_escalation_form,
        fields=ESCALATION_FIELDS,
    ),
    "alert.view": CardAction(_alert_view),
    "alert.acknowledge": CardAction(_acknowledge_alert, after="alert", card=_alert_view),
    "alert.snooze": CardAction(_snooze_alert, after="alert", card=_alert_view),
    "settings.open": CardAction(_settings),
    "settings.save": CardAction(
        _save_settings, form=_settings, fields=SETTINGS_FIELDS, done="Saved."
    ),
    "home.open": CardAction(_home),
}
