""" "What should I focus on today?": a ranked worklist for the asker, each line with why and what acts on it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from handlers.context import ChatContext
from handlers.portfolio import (
    _accounts,
    _milestone_rows,
    _overdue_rows,
    _refuse_in_external,
    _rows,
    scope_for,
)
from handlers.reply import Reply
from handlers.understanding import Constraints, plural, understanding, understood, with_notes
from storage.models import QBR, Escalation, Renewal, utcnow

MAX_ITEMS = 10
RENEWAL_DAYS = 90  # a renewal this close needs a plan leading up to it
QBR_DAYS = 14  # a QBR this close needs preparing
SEVERITY_POINTS = {"sev1": 30, "sev2": 20, "sev3": 10}


def _ask(label: str, kind: str, account_id: int, intent: str) -> dict[str, Any]:
    """A button that re-asks a question about one account (Slack: an Ask; Teams: account.open)."""
    return {"label": label, "type": "ask", "ask": {"k": kind, "a": account_id}, "intent": intent}


def _item(
    score: float,
    kind: str,
    account: dict[str, Any],
    why: str,
    command: str,
    button: dict[str, Any],
) -> dict[str, Any]:
    return {
        "score": round(score, 1),
        "kind": kind,
        "account_id": account["id"],
        "account": account["name"],
        "why": why,
        "command": command,
        "button": button,
    }


def _money(value: float | None) -> str:
    if not value:
        return "$0"
    return f"${value / 1000:.0f}k" if value < 1_000_000 else f"${value / 1_000_000:.1f}M"


def focus_today(
    session: Session, *, ctx: ChatContext, constraints: Constraints | None = None
) -> Reply:
    """Unacknowledged escalations, at-risk ARR, renewals without a plan, overdue milestones, QBRs."""
    c = constraints or Constraints()
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    if ctx.actor.csm_id is None:
        text = (
            "I can only build a worklist for someone I know. Ask an admin to add your email to "
            "CSM Assistant."
        )
        return Reply(template="notice", context={"text": text, "message": text}, text=text)
    owner = c.owner if c.owner not in (None, "me") else None
    if owner is None and ctx.actor.role == "csm":
        owner = "me"
    scope = scope_for(session, ctx, owner)
    accounts = _accounts(session, scope)
    rows = {r["id"]: r for r in _rows(session, accounts, ctx.today)}
    ids = list(rows)
    items: list[dict[str, Any]] = []

    now = utcnow()
    for esc in session.exec(
        select(Escalation)
        .where(col(Escalation.account_id).in_(ids or [-1]), Escalation.status == "open")
        .order_by(col(Escalation.opened_at))
    ).all():
        account = rows[esc.account_id]
        opened = esc.opened_at if esc.opened_at.tzinfo else esc.opened_at.replace(tzinfo=UTC)
        due = esc.ack_due_at
        if due is not None and due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        breached = due is not None and due < now
        age = (now - opened).days
        why = (
            f"{esc.severity.upper()} escalation #{esc.id} “{esc.title}” not acknowledged"
            + (f", open {age} days" if age >= 1 else "")
            + (" — SLA breached" if breached else "")
        )
        items.append(
            _item(
                100 + SEVERITY_POINTS.get(esc.severity, 0) + (10 if breached else 0),
                "escalation",
                account,
                why,
                f"ack escalation {esc.id}",
                {"label": "Acknowledge", "type": "acknowledge", "escalation_id": esc.id},
            )
        )

    for row in rows.values():
        forecast = row["forecast_red_in_days"]
        risky = row["band"] in ("red", "amber") or (forecast is not None and forecast <= 30)
        if not risky:
            continue
        base = {"red": 70, "amber": 55}.get(row["band"], 45)
        renews = row["days_to_renewal"]
        score = (
            base
            + min(15.0, (row["arr"] or 0) / 100_000)
            + (10 if renews is not None and 0 <= renews <= 60 else 0)
        )
        bits = [f"{row['band']} {row['score'] if row['score'] is not None else '—'}"]
        if row["delta_7d"]:
            bits.append(f"{row['delta_7d']:+d} in 7 days".replace("-", "−"))
        if forecast is not None and row["band"] != "red":
            bits.append(f"likely red in ~{forecast} days")
        bits.append(f"{_money(row['arr'])} ARR at risk")
        if renews is not None and 0 <= renews <= RENEWAL_DAYS:
            bits.append(f"renews in {renews} days")
        items.append(
            _item(
                score,
                "at_risk",
                row,
                ", ".join(bits),
                f"why did {row['name'].lower()} drop",
                _ask("Why?", "why", row["id"], "explain_health"),
            )
        )

    horizon = ctx.today + timedelta(days=RENEWAL_DAYS)
    upcoming = session.exec(
        select(Renewal)
        .where(
            col(Renewal.account_id).in_(ids or [-1]),
            Renewal.status == "open",
            Renewal.renewal_date >= ctx.today,
            Renewal.renewal_date <= horizon,
        )
        .order_by(col(Renewal.renewal_date))
    ).all()
    if upcoming:
        planned = {
            m["account_id"]: m["due_date"]
            for m in reversed(_milestone_rows(session, ctx, ids, start=ctx.today, end=horizon))
        }
        for renewal in upcoming:
            first_due = planned.get(renewal.account_id)
            if first_due is not None and first_due <= renewal.renewal_date.isoformat():
                continue  # work is scheduled before the renewal
            days = (renewal.renewal_date - ctx.today).days
            row = rows[renewal.account_id]
            items.append(
                _item(
                    60 + (RENEWAL_DAYS - days) / 6 + min(10.0, renewal.arr / 100_000),
                    "renewal",
                    row,
                    f"renews in {days} days ({_money(renewal.arr)}) with no open milestone before "
                    "then",
                    f"plan {row['name'].lower()}",
                    _ask("Open plan", "plan", row["id"], "success_plan"),
                )
            )

    overdue: dict[int, list[dict[str, Any]]] = {}
    for m in _overdue_rows(session, ctx, ids):
        overdue.setdefault(m["account_id"], []).append(m)
    for account_id, late in overdue.items():
        row = rows[account_id]
        oldest = max(m["days_overdue"] for m in late)
        items.append(
            _item(
                50 + min(15.0, oldest / 3) + len(late),
                "overdue",
                row,
                f"{plural(len(late), 'milestone')} overdue (oldest {oldest} days: "
                f"“{max(late, key=lambda m: m['days_overdue'])['title']}”)",
                f"overdue {row['name'].lower()}",
                _ask("Overdue", "overdue", account_id, "milestones_overdue"),
            )
        )

    until = datetime.combine(ctx.today + timedelta(days=QBR_DAYS), time.max, tzinfo=UTC)
    since = datetime.combine(ctx.today, time.min, tzinfo=UTC)
    for qbr in session.exec(
        select(QBR)
        .where(
            col(QBR.account_id).in_(ids or [-1]),
            QBR.status == "scheduled",
            QBR.scheduled_for >= since,
            QBR.scheduled_for <= until,
        )
        .order_by(col(QBR.scheduled_for))
    ).all():
        row = rows[qbr.account_id]
        days = (qbr.scheduled_for.date() - ctx.today).days
        items.append(
            _item(
                40 + (QBR_DAYS - days) * 2,
                "qbr",
                row,
                f"QBR on {qbr.scheduled_for.date().isoformat()} (in {plural(days, 'day')}) to prepare",
                f"qbr {row['name'].lower()}",
                _ask("Prep QBR", "qbr", row["id"], "qbr_prep"),
            )
        )

    items.sort(key=lambda i: (-i["score"], i["account"]))
    total = len(items)
    shown = items[:MAX_ITEMS]
    for rank, item in enumerate(shown, 1):
        item["rank"] = rank
    applied = {"scope"}
    if c.window is not None and c.window.start <= ctx.today <= c.window.end:
        applied.add("window")  # "today", "this week": the worklist is for now
    not_applied = c.not_applied(applied, "the worklist ranks everything due now")
    kinds = {
        k: sum(1 for i in items if i["kind"] == k)
        for k in ("escalation", "at_risk", "renewal", "overdue", "qbr")
    }
    result = (
        f"{plural(total, 'thing')} to act on"
        + (f", top: {shown[0]['account']} — {shown[0]['why']}" if shown else "")
        if items
        else "nothing urgent: no open escalations, at-risk accounts, unplanned renewals, overdue "
        "milestones or QBRs in the next two weeks"
    )
    line = understood("Your focus for today", None, [scope.book], result)
    return Reply(
        template="focus_today",
        context={
            "scope": scope.book,
            "items": shown,
            "total": total,
            "kinds": kinds,
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
    )
