"""Success plans: objectives and milestones, and moving a milestone (status, due date, owner, note)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from handlers.accounts import account_summary, csms_by_id, resolve_account
from handlers.audit import record
from handlers.context import ChatContext
from handlers.errors import NotFound, ValidationFailed
from handlers.permissions import can_change, require_change
from handlers.reply import Reply
from storage.models import (
    CSM,
    MILESTONE_STATUSES,
    Account,
    Milestone,
    MilestoneEvent,
    Objective,
    SuccessPlan,
    utcnow,
)

STATUS_LABELS = {
    "not_started": "Not started",
    "in_progress": "In progress",
    "done": "Done",
    "at_risk": "At risk",
    "blocked": "Blocked",
}
# The statuses a button can set (not_started is where a milestone begins, not a move).
SETTABLE_STATUSES = ("done", "in_progress", "at_risk", "blocked")
NOTE_MAX = 500


def kpi_suffix(unit: str | None) -> str:
    """What follows a KPI number: "52%" but "2.8 reviews" (a word unit needs its space)."""
    if not unit:
        return ""
    return unit if unit == "%" else f" {unit}"


def is_overdue(milestone: Milestone, today: date) -> bool:
    return (
        milestone.status != "done" and milestone.due_date is not None and milestone.due_date < today
    )


def milestone_context(milestone: Milestone, owners: dict[int, CSM], today: date) -> dict[str, Any]:
    owner = owners.get(milestone.owner_id) if milestone.owner_id else None
    return {
        "id": milestone.id,
        "title": milestone.title,
        "owner": owner.name if owner else milestone.owner_name,
        "owner_email": owner.email if owner else None,
        "due_date": milestone.due_date.isoformat() if milestone.due_date else None,
        "days_overdue": (today - milestone.due_date).days
        if is_overdue(milestone, today) and milestone.due_date
        else 0,
        "status": milestone.status,
        "status_label": STATUS_LABELS.get(milestone.status, milestone.status),
        "overdue": is_overdue(milestone, today),
        "note": milestone.note,
    }


def plan_reply(session: Session, account: Account, *, ctx: ChatContext) -> Reply:
    """The account's success plan with every milestone and its status control."""
    plan = session.exec(
        select(SuccessPlan)
        .where(SuccessPlan.account_id == account.id)
        .order_by(col(SuccessPlan.id))
    ).first()
    summary = account_summary(session, account, ctx.today)
    objectives: list[dict[str, Any]] = []
    done = total = overdue = 0
    if plan is not None:
        rows = session.exec(
            select(Objective)
            .where(Objective.plan_id == plan.id)
            .order_by(col(Objective.position), col(Objective.id))
        ).all()
        milestones = (
            session.exec(
                select(Milestone)
                .where(col(Milestone.objective_id).in_([o.id for o in rows]))
                .order_by(col(Milestone.position), col(Milestone.due_date), col(Milestone.id))
            ).all()
            if rows
            else []
        )
        owners = csms_by_id(session, (m.owner_id for m in milestones))
        for objective in rows:
            items = [
                milestone_context(m, owners, ctx.today)
                for m in milestones
                if m.objective_id == objective.id
            ]
            done += sum(1 for m in items if m["status"] == "done")
            overdue += sum(1 for m in items if m["overdue"])
            total += len(items)
            objectives.append(
                {
                    "id": objective.id,
                    "title": objective.title,
                    "kpi": objective.kpi,
                    "kpi_baseline": objective.kpi_baseline,
                    "kpi_target": objective.kpi_target,
                    "kpi_current": objective.kpi_current,
                    "kpi_unit": objective.kpi_unit,
                    "kpi_suffix": kpi_suffix(objective.kpi_unit),
                    "milestones": items,
                }
            )
    context = {
        "account": summary,
        "plan": {"id": plan.id, "title": plan.title} if plan else None,
        "objectives": objectives,
        "statuses": [{"value": s, "label": STATUS_LABELS[s]} for s in SETTABLE_STATUSES],
        "progress": {"done": done, "total": total, "overdue": overdue},
        "can_edit": can_change(session, ctx.actor, account),
    }
    if plan is None:
        text = f"{account.name} has no success plan yet."
    else:
        text = f"{account.name} — {plan.title}: {done}/{total} milestones done"
        if overdue:
            text += f", {overdue} overdue"
    return Reply(template="success_plan", context=context, text=text)


def success_plan(
    session: Session, *, ctx: ChatContext, query: str | None = None, account_id: int | None = None
) -> Reply:
    """`/plan acme`: the success plan."""
    found = resolve_account(
        session, ctx=ctx, intent="success_plan", query=query, account_id=account_id
    )
    if isinstance(found, Reply):
        return found
    return plan_reply(session, found, ctx=ctx)


def _milestone_and_account(session: Session, milestone_id: int) -> tuple[Milestone, Account]:
    milestone = session.get(Milestone, milestone_id)
    if milestone is None:
        raise NotFound(f"Milestone {milestone_id} no longer exists.")
    account = session.get(Account, milestone.account_id)
    if account is None:
        raise NotFound(f"The account of milestone {milestone_id} no longer exists.")
    return milestone, account


def _event(
    session: Session,
    milestone: Milestone,
    ctx: ChatContext,
    field: str,
    before: Any,
    after: Any,
    note: str | None,
) -> None:
    session.add(
        MilestoneEvent(
            milestone_id=milestone.id or 0,
            actor_id=ctx.actor.csm_id,
            actor_label=ctx.actor.email or ctx.actor.name,
            field=field,
            from_value=None if before is None else str(before),
            to_value=None if after is None else str(after),
            note=note,
        )
    )


def set_milestone_status(
    session: Session, *, ctx: ChatContext, milestone_id: int, status: str, note: str | None = None
) -> Reply:
    """A status button: check permission, change, record the event and audit, return the refreshed plan."""
    if status not in MILESTONE_STATUSES:
        raise ValidationFailed({"status": f"must be one of {', '.join(MILESTONE_STATUSES)}"})
    milestone, account = _milestone_and_account(session, milestone_id)
    require_change(session, ctx.actor, account, f"milestone “{milestone.title}”")
    if milestone.status != status:
        before = milestone.status
        milestone.status = status
        milestone.completed_on = ctx.today if status == "done" else None
        milestone.updated_at = utcnow()
        session.add(milestone)
        _event(session, milestone, ctx, "status", before, status, note)
        record(
            session,
            ctx=ctx,
            action="milestone.status",
            entity="milestone",
            entity_id=milestone_id,
            before={"status": before},
            after={"status": status},
        )
        session.flush()
    return plan_reply(session, account, ctx=ctx)


def milestone_edit_form(session: Session, *, ctx: ChatContext, milestone_id: int) -> Reply:
    """The data for the edit modal / card: current values and who can own it."""
    milestone, account = _milestone_and_account(session, milestone_id)
    require_change(session, ctx.actor, account, f"milestone “{milestone.title}”")
    owner = session.get(CSM, milestone.owner_id) if milestone.owner_id else None
    owners = session.exec(select(CSM).order_by(col(CSM.name))).all()
    return Reply(
        template="milestone_edit",
        context={
            "account": {"id": account.id, "name": account.name},
            "milestone": {
                "id": milestone.id,
                "title": milestone.title,
                "due_date": milestone.due_date.isoformat() if milestone.due_date else None,
                "owner_email": owner.email if owner else None,
                "owner_name": owner.name if owner else milestone.owner_name,
                "note": milestone.note,
                "status": milestone.status,
            },
            "owners": [{"email": c.email, "name": c.name} for c in owners],
        },
        text=f"Edit milestone “{milestone.title}” ({account.name})",
    )


def edit_milestone(
    session: Session,
    *,
    ctx: ChatContext,
    milestone_id: int,
    due_date: str | None = None,
    owner_email: str | None = None,
    note: str | None = None,
) -> Reply:
    """The edit form's submit: validate every field first, then change what differs, event per field."""
    milestone, account = _milestone_and_account(session, milestone_id)
    require_change(session, ctx.actor, account, f"milestone “{milestone.title}”")
    errors: dict[str, str] = {}
    new_due = milestone.due_date
    if due_date not in (None, ""):
        try:
            new_due = date.fromisoformat(str(due_date).strip())
        except ValueError:
            errors["due_date"] = f"“{due_date}” is not a date; use YYYY-MM-DD"
        else:
            if milestone.status != "done" and new_due < ctx.today and new_due != milestone.due_date:
                errors["due_date"] = "A new due date can't be in the past"
    new_owner = milestone.owner_id
    if owner_email not in (None, ""):
        owner = session.exec(
            select(CSM).where(func.lower(CSM.email) == str(owner_email).strip().lower())
        ).first()
        if owner is None:
            errors["owner"] = f"Nobody with the email {owner_email} uses CSM Assistant"
        else:
            new_owner = owner.id
    new_note = milestone.note if note is None else (note.strip() or None)
    if new_note and len(new_note) > NOTE_MAX:
        errors["note"] = f"Keep the note under {NOTE_MAX} characters (it has {len(new_note)})"
    if errors:
        raise ValidationFailed(errors)
    before = {
        "due_date": _iso(milestone.due_date),
        "owner_id": milestone.owner_id,
        "note": milestone.note,
    }
    after = {"due_date": _iso(new_due), "owner_id": new_owner, "note": new_note}
    changed = {k: v for k, v in after.items() if before[k] != v}
    if changed:
        for field in changed:
            _event(
                session,
                milestone,
                ctx,
                field,
                before[field],
                after[field],
                new_note if field != "note" else None,
            )
        milestone.due_date, milestone.owner_id, milestone.note = new_due, new_owner, new_note
        milestone.updated_at = utcnow()
        session.add(milestone)
        record(
            session,
            ctx=ctx,
            action="milestone.edit",
            entity="milestone",
            entity_id=milestone_id,
            before={k: before[k] for k in changed},
            after=changed,
        )
        session.flush()
    return plan_reply(session, account, ctx=ctx)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
