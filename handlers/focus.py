""" "What should I focus on today?": a ranked worklist for the asker, each line with why and what acts on it."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func
from sqlmodel import Session, select

from domain.numbers import format_score, format_signed
from handlers.context import ChatContext
from handlers.name_index import pending_flushed
from handlers.portfolio import (
    Scope,
    _refuse_in_external,
    account_facts,
    at_risk_keys,
    book_name,
    scope_for,
    with_details,
)
from handlers.reply import Reply
from handlers.understanding import Constraints, plural, understanding, understood, with_notes
from storage.models import QBR, Account, Escalation, Milestone, Renewal, utcnow

MAX_ITEMS = 10
RENEWAL_DAYS = 90  # a renewal this close needs a plan leading up to it
QBR_DAYS = 14  # a QBR this close needs preparing
SEVERITY_POINTS = {"sev1": 30, "sev2": 20, "sev3": 10}
KINDS = ("escalation", "at_risk", "renewal", "overdue", "qbr")


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
        "score": score,
        "kind": kind,
        "account_id": account["id"],
        "account": account["name"],
        "why": why,
        "command": command,
        "button": button,
    }


def _make(
    kind: str, score: float, name: str, account_id: int, data: tuple[Any, ...]
) -> dict[str, Any]:
    """The item of one candidate: why it is there, the command and the button that act on it."""
    account = {"id": account_id, "name": name}
    lower = name.lower()
    if kind == "escalation":
        esc_id, severity, title, age, breached = data
        why = (
            f"{severity.upper()} escalation #{esc_id} “{title}” not acknowledged"
            + (f", open {age} days" if age >= 1 else "")
            + (" — SLA breached" if breached else "")
        )
        button = {"label": "Acknowledge", "type": "acknowledge", "escalation_id": esc_id}
        return _item(score, kind, account, why, f"ack escalation {esc_id}", button)
    if kind == "at_risk":
        # The line is written once the account's facts and 7-day change are read (if shown).
        button = _ask("Why?", "why", account_id, "explain_health")
        return _item(score, kind, account, "", f"why did {lower} drop", button)
    if kind == "renewal":
        days, arr = data
        why = f"renews in {days} days ({_money(arr)}) with no open milestone before then"
        button = _ask("Open plan", "plan", account_id, "success_plan")
        return _item(score, kind, account, why, f"plan {lower}", button)
    if kind == "overdue":
        count, oldest = data
        why = f"{plural(count, 'milestone')} overdue (oldest {oldest} days)"
        button = _ask("Overdue", "overdue", account_id, "milestones_overdue")
        return _item(score, kind, account, why, f"overdue {lower}", button)
    day, days = data
    why = f"QBR on {day.isoformat()} (in {plural(days, 'day')}) to prepare"
    button = _ask("Prep QBR", "qbr", account_id, "qbr_prep")
    return _item(score, kind, account, why, f"qbr {lower}", button)


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
    owner = c.owner if c.owner not in (None, "me") else None
    if owner is None and ctx.actor.role == "csm":
        owner = "me"
    scope = scope_for(session, ctx, owner)  # refuses whoever may not read the portfolio
    if ctx.actor.csm_id is None:
        text = "A worklist is for a person: ask for risks, renewals or overdue milestones instead."
        return Reply(template="notice", context={"text": text, "message": text}, text=text)
    if scope.owner_ids is not None and not scope.owner_ids:
        return _reply(session, c, ctx, book_name(scope), [])
    acc, esc, ren, ms, qbr = (
        Account.__table__,
        Escalation.__table__,
        Renewal.__table__,
        Milestone.__table__,
        QBR.__table__,
    )

    def in_scope(query: Any, account_column: Any) -> Any:
        query = query.select_from(account_column.table.join(acc, acc.c.id == account_column))
        query = query.where(acc.c.churned_on.is_(None))
        if scope.owner_ids is not None:
            query = query.where(acc.c.owner_id.in_(sorted(scope.owner_ids) or [-1]))
        return query

    pending_flushed(session)
    conn = session.connection()
    now = utcnow()
    horizon = ctx.today + timedelta(days=RENEWAL_DAYS)
    until = datetime.combine(ctx.today + timedelta(days=QBR_DAYS), time.max, tzinfo=UTC)
    since = datetime.combine(ctx.today, time.min, tzinfo=UTC)
    escalations = conn.execute(
        in_scope(
            select(
                esc.c.id,
                esc.c.account_id,
                esc.c.severity,
                esc.c.title,
                esc.c.opened_at,
                esc.c.ack_due_at,
                acc.c.name,
            ).where(esc.c.status == "open"),
            esc.c.account_id,
        ).order_by(esc.c.opened_at)
    ).all()
    # The open milestones of every account in one pass: how many are overdue and since when, and
    # the first one due before the renewal horizon (a plan leading up to a renewal).
    late = ms.c.due_date < ctx.today
    upcoming = (ms.c.due_date >= ctx.today) & (ms.c.due_date <= horizon)
    milestones = conn.execute(
        in_scope(
            select(
                ms.c.account_id,
                func.count(case((late, ms.c.id))),
                func.min(case((late, ms.c.due_date))),
                func.min(case((upcoming, ms.c.due_date))),
                func.min(acc.c.name),
            ).where(ms.c.status != "done", ms.c.due_date <= horizon),
            ms.c.account_id,
        ).group_by(ms.c.account_id)
    ).all()
    planned = {r[0]: r[3] for r in milestones if r[3] is not None}
    overdue = [(r[0], r[1], r[2], r[4]) for r in milestones if r[1]]
    renewals = [
        r
        for r in conn.execute(
            in_scope(
                select(ren.c.account_id, ren.c.renewal_date, ren.c.arr, acc.c.name).where(
                    ren.c.status == "open",
                    ren.c.renewal_date >= ctx.today,
                    ren.c.renewal_date <= horizon,
                ),
                ren.c.account_id,
            ).order_by(ren.c.renewal_date)
        ).all()
        # Work scheduled before the renewal is a plan leading up to it.
        if planned.get(r[0]) is None or planned[r[0]] > r[1]
    ]
    qbrs = conn.execute(
        in_scope(
            select(qbr.c.account_id, qbr.c.scheduled_for, acc.c.name).where(
                qbr.c.status == "scheduled",
                qbr.c.scheduled_for >= since,
                qbr.c.scheduled_for <= until,
            ),
            qbr.c.account_id,
        ).order_by(qbr.c.scheduled_for)
    ).all()
    # The at-risk accounts (red, amber, or green heading for red within 30 days), ranked from
    # what the driver gives; the full facts are read for the few shown. The other items need
    # only the account's name, read with them.
    risky = at_risk_keys(session, scope, ctx.today, red_within_days=30)

    # Each kind's candidates as (score, account name, account id, what its line needs); a
    # manager's book has thousands, so only each kind's top few become full items (the overall
    # top is among them) and the rest are counted.
    found: dict[str, list[tuple[float, str, int, tuple[Any, ...]]]] = {kind: [] for kind in KINDS}
    for esc_id, account_id, severity, title, opened, due, name in escalations:
        opened = opened if opened.tzinfo else opened.replace(tzinfo=UTC)
        if due is not None and due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        breached = due is not None and due < now
        score = 100 + SEVERITY_POINTS.get(severity, 0) + (10 if breached else 0)
        found["escalation"].append(
            (score, name, account_id, (esc_id, severity, title, (now - opened).days, breached))
        )
    for account_id, name, band, arr, renewal_date in risky:
        base = {"red": 70, "amber": 55}.get(band, 45)
        renews = None if renewal_date is None else (renewal_date - ctx.today).days
        soon = renews is not None and 0 <= renews <= 60
        score = base + min(15.0, (arr or 0) / 100_000) + (10 if soon else 0)
        found["at_risk"].append((score, name, account_id, ()))
    for account_id, day, arr, name in renewals:
        days = (day - ctx.today).days
        score = 60 + (RENEWAL_DAYS - days) / 6 + min(10.0, arr / 100_000)
        found["renewal"].append((score, name, account_id, (days, arr)))
    for account_id, count, oldest_due, name in overdue:
        oldest = (ctx.today - oldest_due).days
        found["overdue"].append(
            (50 + min(15.0, oldest / 3) + count, name, account_id, (count, oldest))
        )
    for account_id, when, name in qbrs:
        days = (when.date() - ctx.today).days
        found["qbr"].append((40 + (QBR_DAYS - days) * 2, name, account_id, (when.date(), days)))
    counts = {kind: len(rows) for kind, rows in found.items()}
    items = [
        _make(kind, *candidate)
        for kind, rows in found.items()
        for candidate in heapq.nsmallest(MAX_ITEMS, rows, key=lambda r: (-r[0], r[1]))
    ]
    return _reply(session, c, ctx, book_name(scope), items, scope, counts)


def _risk_why(row: dict[str, Any]) -> str:
    forecast = row["forecast_red_in_days"]
    renews = row["days_to_renewal"]
    bits = [f"{row['band']} {format_score(row['score'])}"]
    if row["delta_7d"]:
        bits.append(f"{format_signed(row['delta_7d'])} in 7 days")
    if forecast is not None and row["band"] != "red":
        bits.append(f"likely {row.get('forecast') or f'red in ~{forecast}d'}")
    bits.append(f"{_money(row['arr'])} ARR at risk")
    if renews is not None and 0 <= renews <= RENEWAL_DAYS:
        bits.append(f"renews in {renews} days")
    return ", ".join(bits)


def _reply(
    session: Session,
    c: Constraints,
    ctx: ChatContext,
    book: str,
    items: list[dict[str, Any]],
    scope: Scope | None = None,
    counts: dict[str, int] | None = None,
) -> Reply:
    kinds = counts or {k: sum(1 for i in items if i["kind"] == k) for k in KINDS}
    total = sum(kinds.values())
    # Only the top of the list is shown: no need to sort thousands of a manager's items.
    shown = heapq.nsmallest(MAX_ITEMS, items, key=lambda i: (-i["score"], i["account"]))
    at_risk = [i for i in shown if i["kind"] == "at_risk"]
    if scope is not None and at_risk:
        facts = account_facts(
            session, scope, ctx.today, account_ids=[i["account_id"] for i in at_risk]
        )
        rows = {r["id"]: r for r in with_details(session, facts, ctx.today)}
        for item in at_risk:
            item["why"] = _risk_why(rows[item["account_id"]])
    for rank, item in enumerate(shown, 1):
        item["rank"] = rank
        item["score"] = round(item["score"], 1)
    applied = {"scope"}
    if c.window is not None and c.window.start <= ctx.today <= c.window.end:
        applied.add("window")  # "today", "this week": the worklist is for now
    not_applied = c.not_applied(applied, "the worklist ranks everything due now")
    result = (
        f"{plural(total, 'thing')} to act on"
        + (f", top: {shown[0]['account']} — {shown[0]['why']}" if shown else "")
        if items
        else "nothing urgent: no open escalations, at-risk accounts, unplanned renewals, overdue "
        "milestones or QBRs in the next two weeks"
    )
    line = understood("Your focus for today", None, [book], result)
    return Reply(
        template="focus_today",
        context={
            "scope": book,
            "items": shown,
            "total": total,
            "kinds": kinds,
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
    )
