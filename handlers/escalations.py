"""Escalations: open one from chat, acknowledge, assign and resolve it, with SLA timers per severity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from handlers.accounts import account_summary, resolve_account
from handlers.audit import record
from handlers.context import ChatContext
from handlers.errors import NotFound, PermissionDenied, ValidationFailed
from handlers.permissions import require_change
from handlers.reply import Reply
from storage.models import CSM, ESCALATION_SEVERITIES, Account, Escalation, EscalationEvent, utcnow

# Time to acknowledge and to resolve, per severity (a common support-style SLA ladder).
SLA = {
    "sev1": (timedelta(hours=1), timedelta(hours=24)),
    "sev2": (timedelta(hours=4), timedelta(days=3)),
    "sev3": (timedelta(days=1), timedelta(days=7)),
}
TITLE_MAX = 150


def escalation_context(
    session: Session, escalation: Escalation, ctx: ChatContext
) -> dict[str, Any]:
    account = session.get(Account, escalation.account_id)
    owner = session.get(CSM, escalation.owner_id) if escalation.owner_id else None
    now = utcnow()
    due = escalation.ack_due_at if escalation.status == "open" else escalation.resolve_due_at
    return {
        "id": escalation.id,
        "title": escalation.title,
        "severity": escalation.severity,
        "status": escalation.status,
        "owner": owner.name if owner else None,
        "opened_at": escalation.opened_at.strftime("%Y-%m-%d %H:%M"),
        "due_at": due.strftime("%Y-%m-%d %H:%M")
        if due and escalation.status != "resolved"
        else None,
        "breached": bool(due and escalation.status != "resolved" and due < now),
        "account": account_summary(session, account, ctx.today) if account else None,
    }


def _reply(session: Session, escalation: Escalation, ctx: ChatContext, verb: str) -> Reply:
    context = escalation_context(session, escalation, ctx)
    name = context["account"]["name"] if context["account"] else "?"
    text = f"Escalation #{escalation.id} {verb}: [{escalation.severity}] {name} — {escalation.title} ({escalation.status})"
    return Reply(template="escalation", context={"escalation": context}, text=text)


def open_escalation(
    session: Session,
    *,
    ctx: ChatContext,
    query: str | None = None,
    account_id: int | None = None,
    severity: str | None = None,
    title: str | None = None,
) -> Reply:
    """Open an escalation; any known CSM may open one, the account owner owns it."""
    found = resolve_account(session, ctx=ctx, intent="escalate", query=query, account_id=account_id)
    if isinstance(found, Reply):
        return found
    if ctx.actor.csm_id is None:
        raise PermissionDenied("I don't know you yet, so I can't open an escalation for you.")
    severity = (severity or "sev2").lower()
    errors: dict[str, str] = {}
    if severity not in ESCALATION_SEVERITIES:
        errors["severity"] = "must be sev1, sev2 or sev3"
    title = (title or "").strip() or f"Escalation for {found.name}"
    if len(title) > TITLE_MAX:
        errors["title"] = f"Keep the title under {TITLE_MAX} characters"
    if errors:
        raise ValidationFailed(errors)
    now = utcnow()
    ack, resolve = SLA[severity]
    escalation = Escalation(
        account_id=found.id or 0,
        title=title,
        severity=severity,
        status="open",
        owner_id=found.owner_id,
        opened_by_id=ctx.actor.csm_id,
        opened_at=now,
        ack_due_at=now + ack,
        resolve_due_at=now + resolve,
    )
    session.add(escalation)
    session.flush()
    session.add(
        EscalationEvent(
            escalation_id=escalation.id or 0,
            actor_id=ctx.actor.csm_id,
            actor_label=ctx.actor.email or ctx.actor.name,
            kind="opened",
            to_value="open",
        )
    )
    record(
        session,
        ctx=ctx,
        action="escalation.open",
        entity="escalation",
        entity_id=escalation.id or 0,
        after={"severity": severity, "title": title, "account_id": found.id},
    )
    reply = _reply(session, escalation, ctx, "opened")
    return Reply(
        template=reply.template, context=reply.context, text=reply.text, visibility="channel"
    )


def _transition(
    session: Session,
    *,
    ctx: ChatContext,
    escalation_id: int,
    to: str,
    note: str | None = None,
    owner_email: str | None = None,
) -> Reply:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound(f"Escalation {escalation_id} no longer exists.")
    account = session.get(Account, escalation.account_id)
    if account is None:
        raise NotFound("The escalation's account no longer exists.")
    require_change(session, ctx.actor, account, f"escalation #{escalation_id}")
    before = {"status": escalation.status, "owner_id": escalation.owner_id}
    if to == "assigned":
        owner = session.exec(
            select(CSM).where(func.lower(CSM.email) == (owner_email or "").strip().lower())
        ).first()
        if owner is None:
            raise ValidationFailed(
                {"owner": f"Nobody with the email {owner_email} uses CSM Assistant"}
            )
        escalation.owner_id = owner.id
        kind, from_value, to_value = "assigned", str(before["owner_id"]), str(owner.id)
    else:
        order = ("open", "acknowledged", "resolved")
        if order.index(to) <= order.index(escalation.status):
            raise ValidationFailed(
                {"status": f"Escalation #{escalation_id} is already {escalation.status}"}
            )
        escalation.status = to
        if to == "acknowledged":
            escalation.acknowledged_at = utcnow()
        else:
            escalation.resolved_at = utcnow()
        kind, from_value, to_value = to, str(before["status"]), to
    session.add(escalation)
    session.add(
        EscalationEvent(
            escalation_id=escalation_id,
            actor_id=ctx.actor.csm_id,
            actor_label=ctx.actor.email or ctx.actor.name,
            kind=kind,
            from_value=from_value,
            to_value=to_value,
            note=note,
        )
    )
    record(
        session,
        ctx=ctx,
        action=f"escalation.{kind}",
        entity="escalation",
        entity_id=escalation_id,
        before=before,
        after={"status": escalation.status, "owner_id": escalation.owner_id},
    )
    session.flush()
    return _reply(session, escalation, ctx, kind)


def acknowledge(session: Session, *, ctx: ChatContext, escalation_id: int) -> Reply:
    return _transition(session, ctx=ctx, escalation_id=escalation_id, to="acknowledged")


def resolve(
    session: Session, *, ctx: ChatContext, escalation_id: int, note: str | None = None
) -> Reply:
    return _transition(session, ctx=ctx, escalation_id=escalation_id, to="resolved", note=note)


def assign(session: Session, *, ctx: ChatContext, escalation_id: int, owner_email: str) -> Reply:
    return _transition(
        session, ctx=ctx, escalation_id=escalation_id, to="assigned", owner_email=owner_email
    )


def open_escalations(session: Session, *, account_id: int | None = None) -> list[Escalation]:
    query = (
        select(Escalation)
        .where(Escalation.status != "resolved")
        .order_by(col(Escalation.opened_at))
    )
    if account_id is not None:
        query = query.where(Escalation.account_id == account_id)
    return list(session.exec(query).all())
