"""Portfolio views: my accounts, at-risk accounts, upcoming renewals, overdue milestones and the home tab."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from domain.forecast import describe_short
from domain.numbers import format_score, round_half_away, shown_score
from handlers.accounts import (
    csms_by_id,
    latest_snapshots,
    not_here_reply,
    resolve_account,
    scores_on,
)
from handlers.context import ChatContext
from handlers.plan import STATUS_LABELS
from handlers.reply import Reply
from storage.models import CSM, Account, Milestone, Renewal

BAND_ORDER = {"red": 0, "amber": 1, "insufficient": 2, "green": 3}


@dataclass(frozen=True)
class Scope:
    """Which accounts a portfolio question covers, and how to say so."""

    owner_ids: frozenset[int] | None  # None = every account
    label: str


def scope_for(session: Session, ctx: ChatContext, owner: str | None) -> Scope:
    """ "my" → the asker's accounts; "team" → a manager's team (everyone for others); a name → that CSM's."""
    actor = ctx.actor
    if owner and owner not in ("me", "team"):
        needle = owner.strip().lower()
        for csm in session.exec(select(CSM).order_by(col(CSM.id))).all():
            if csm.name.lower() == needle or csm.name.lower().split()[0] == needle:
                return Scope(frozenset({csm.id or 0}), f"{csm.name}'s accounts")
        return Scope(frozenset(), f"accounts of “{owner}” (nobody by that name)")
    if owner == "team" or (owner is None and actor.role in ("manager", "admin", "unknown")):
        if actor.role == "manager" and actor.csm_id is not None:
            team = session.exec(select(CSM.id).where(CSM.manager_id == actor.csm_id)).all()
            return Scope(frozenset({actor.csm_id, *[t for t in team if t]}), "your team's accounts")
        return Scope(None, "all accounts")
    if actor.csm_id is None:
        return Scope(None, "all accounts")
    return Scope(frozenset({actor.csm_id}), "your accounts")


def _accounts(session: Session, scope: Scope) -> list[Account]:
    query = select(Account).where(col(Account.churned_on).is_(None))
    if scope.owner_ids is not None:
        if not scope.owner_ids:
            return []
        query = query.where(col(Account.owner_id).in_(scope.owner_ids))
    return list(session.exec(query.order_by(col(Account.name))).all())


def _owner_names(session: Session, accounts: list[Account]) -> dict[int, str]:
    return {i: c.name for i, c in csms_by_id(session, (a.owner_id for a in accounts)).items()}


def _row(
    account: Account, snapshot: Any, past: float | None, owners: dict[int, str], today: date
) -> dict[str, Any]:
    score = None if snapshot is None else shown_score(snapshot.score)
    delta = None
    if snapshot is not None and snapshot.score is not None and past is not None:
        delta = round_half_away(snapshot.score - past)
    drivers = (snapshot.drivers or []) if snapshot is not None else []
    return {
        "id": account.id,
        "name": account.name,
        "score": score,
        "band": snapshot.band if snapshot is not None else "insufficient",
        "delta_7d": delta,
        "top_driver": drivers[0]["label"] if drivers else None,
        "forecast_red_in_days": snapshot.forecast_red_in_days if snapshot is not None else None,
        "forecast": _forecast_phrase(snapshot),
        "arr": account.arr,
        "renewal_date": account.renewal_date.isoformat() if account.renewal_date else None,
        "days_to_renewal": (account.renewal_date - today).days if account.renewal_date else None,
        "owner": owners.get(account.owner_id) if account.owner_id else None,
    }


def _forecast_phrase(snapshot: Any) -> str | None:
    """The red forecast as a list row says it ("red in 12–20d"); None when no red is coming."""
    if snapshot is None:
        return None
    return describe_short(
        snapshot.forecast_status,
        snapshot.forecast_red_in_days,
        snapshot.forecast_red_earliest,
        snapshot.forecast_red_latest,
    )


def _rows(session: Session, accounts: list[Account], today: date) -> list[dict[str, Any]]:
    ids = [a.id for a in accounts if a.id]
    snapshots = latest_snapshots(session, ids, today)
    past = scores_on(session, ids, today - timedelta(days=7))
    owners = _owner_names(session, accounts)
    return [_row(a, snapshots.get(a.id or 0), past.get(a.id or 0), owners, today) for a in accounts]


# Window labels that read on their own after "renewals": "this month", "until end of March".
_STANDALONE_WINDOW_WORDS = frozenset(
    ("this", "until", "by", "before", "since", "through", "till", "up", "prior", "ahead")
)


def window_phrase(label: str) -> str:
    """How a window reads after "renewals": "in the next 60 days", "this month", "in Q1 2027"."""
    first = label.split(" ", 1)[0].lower()
    if first in ("next", "last", "past", "previous", "coming"):
        return f"in the {label}"
    if first in _STANDALONE_WINDOW_WORDS:
        return label
    return f"in {label}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _refuse_in_external(ctx: ChatContext) -> Reply | None:
    # Portfolio lists would show other customers' names to an outside organisation.
    return not_here_reply() if ctx.external else None


def portfolio_rows(
    session: Session, *, ctx: ChatContext, owner: str | None = None
) -> tuple[str, list[dict[str, Any]]] | Reply:
    """The scope label and one row per live account in it (score, band, ARR, renewal), or the
    refusal for an external channel; the health map reads these."""
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    if owner is None and ctx.actor.csm_id and ctx.actor.role not in ("manager", "admin"):
        owner = "me"
    scope = scope_for(session, ctx, owner)
    return scope.label, _rows(session, _accounts(session, scope), ctx.today)


def _risk_key(row: dict[str, Any]) -> tuple[Any, ...]:
    forecast = row["forecast_red_in_days"]
    return (
        BAND_ORDER.get(row["band"], 9),
        row["score"] if row["score"] is not None else 999,
        forecast if forecast is not None else 999,
        -(row["arr"] or 0),
    )


def at_risk(
    session: Session, *, ctx: ChatContext, owner: str | None = None, band: str | None = None
) -> Reply:
    """Red and amber accounts (or one band), and green ones forecast to turn red, worst first."""
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    scope = scope_for(session, ctx, owner)
    rows = _rows(session, _accounts(session, scope), ctx.today)
    if band:
        risky = [r for r in rows if r["band"] == band]
    else:
        risky = [
            r
            for r in rows
            if r["band"] in ("red", "amber")
            or (r["forecast_red_in_days"] is not None and r["forecast_red_in_days"] <= 30)
        ]
    risky.sort(key=_risk_key)
    arr_at_risk = sum(r["arr"] or 0 for r in risky)
    counts = {b: sum(1 for r in risky if r["band"] == b) for b in ("red", "amber", "green")}
    if band:
        found = _plural(len(risky), f"{band} account")
        text = (
            f"{found} in {scope.label}, ARR ${arr_at_risk:,.0f}"
            if risky
            else f"No {band} accounts in {scope.label}."
        )
    else:
        found = _plural(len(risky), "account") + " at risk"
        text = (
            f"{found} in {scope.label} ({counts['red']} red, {counts['amber']} amber"
            + (f", {counts['green']} green heading for red" if counts["green"] else "")
            + "), "
            f"ARR at risk ${arr_at_risk:,.0f}"
            if risky
            else f"No accounts at risk in {scope.label}."
        )
    return Reply(
        template="risks",
        context={
            "scope": scope.label,
            "band": band,
            "accounts": risky,
            "total": len(risky),
            "counts": counts,
            "arr_at_risk": arr_at_risk,
        },
        text=text,
    )


def my_accounts(session: Session, *, ctx: ChatContext, owner: str | None = None) -> Reply:
    """The asker's (or a named CSM's) accounts with health, worst first."""
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    if owner is None and ctx.actor.csm_id and ctx.actor.role not in ("manager", "admin"):
        owner = "me"
    # A manager's or an admin's "my accounts" is the book they look after: their team's (or all).
    scope = scope_for(session, ctx, owner)
    rows = _rows(session, _accounts(session, scope), ctx.today)
    rows.sort(key=_risk_key)
    counts = {
        b: sum(1 for r in rows if r["band"] == b) for b in ("red", "amber", "green", "insufficient")
    }
    total_arr = sum(r["arr"] or 0 for r in rows)
    text = (
        f"{_plural(len(rows), 'account')} in {scope.label}: {counts['red']} red, "
        f"{counts['amber']} amber, {counts['green']} green"
        + (f", {counts['insufficient']} without enough data" if counts["insufficient"] else "")
        if rows
        else f"{scope.label[:1].upper()}{scope.label[1:]}: none."
    )
    return Reply(
        template="my_accounts",
        context={
            "scope": scope.label,
            "csm": {"name": ctx.actor.name},
            "accounts": rows,
            "counts": counts,
            "total": len(rows),
            "total_arr": total_arr,
        },
        text=text,
    )


def upcoming_renewals(
    session: Session,
    *,
    ctx: ChatContext,
    days: int = 90,
    start: date | None = None,
    end: date | None = None,
    label: str | None = None,
    owner: str | None = None,
) -> Reply:
    """Renewals in a window (default the next 90 days), soonest first, with health and ARR.

    Open renewals always; for the part of the window already past, the closed ones too (renewed
    or churned, with the outcome), so "what renewed last month?" has an answer.
    """
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    start = start or ctx.today
    end = end or ctx.today + timedelta(days=days)
    label = label or f"next {(end - start).days} days"
    scope = scope_for(session, ctx, owner)
    query = (
        select(Renewal, Account)
        .join(Account, Account.id == Renewal.account_id)
        .where(Renewal.renewal_date >= start, Renewal.renewal_date <= end)
        .where(or_(Renewal.status == "open", col(Renewal.renewal_date) < ctx.today))
        .order_by(col(Renewal.renewal_date), col(Account.name))
    )
    if scope.owner_ids is not None:
        query = query.where(col(Account.owner_id).in_(scope.owner_ids or {-1}))
    pairs = session.exec(query).all()
    accounts = [a for _, a in pairs]
    snapshots = latest_snapshots(session, [a.id for a in accounts if a.id], ctx.today)
    owners = _owner_names(session, accounts)
    renewals = []
    for renewal, account in pairs:
        snapshot = snapshots.get(account.id or 0)
        renewals.append(
            {
                "account_id": account.id,
                "account_name": account.name,
                "renewal_date": renewal.renewal_date.isoformat(),
                "days_left": (renewal.renewal_date - ctx.today).days,
                "arr": renewal.arr,
                "likelihood": renewal.likelihood,
                "score": None if snapshot is None else shown_score(snapshot.score),
                "band": snapshot.band if snapshot else "insufficient",
                "owner": owners.get(account.owner_id) if account.owner_id else None,
                "status": renewal.status,
                "renewed_arr": renewal.renewed_arr,
            }
        )
    total_arr = sum(r["arr"] for r in renewals)
    arr_at_risk = sum(
        r["arr"] for r in renewals if r["status"] == "open" and r["band"] in ("red", "amber")
    )
    closed = sum(1 for r in renewals if r["status"] != "open")
    phrase = window_phrase(label)
    text = (
        f"{_plural(len(renewals), 'renewal')} {phrase} ({scope.label}), ${total_arr:,.0f} ARR, "
        f"${arr_at_risk:,.0f} of it on red or amber accounts"
        + (f"; {closed} already closed" if closed else "")
        if renewals
        else f"No renewals {phrase} ({scope.label})."
    )
    return Reply(
        template="renewals",
        context={
            "scope": scope.label,
            "window": {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "label": label,
                "phrase": phrase,
            },
            "renewals": renewals,
            "total": len(renewals),
            "total_arr": total_arr,
            "arr_at_risk": arr_at_risk,
            "closed": closed,
        },
        text=text,
    )


def _overdue_rows(
    session: Session, ctx: ChatContext, account_ids: list[int] | None
) -> list[dict[str, Any]]:
    query = (
        select(Milestone, Account)
        .join(Account, Account.id == Milestone.account_id)
        .where(
            Milestone.status != "done",
            col(Milestone.due_date).is_not(None),
            Milestone.due_date < ctx.today,
        )
        .order_by(col(Milestone.due_date), col(Milestone.id))
    )
    if account_ids is not None:
        query = query.where(col(Milestone.account_id).in_(account_ids or [-1]))
    pairs = session.exec(query).all()
    owners = {i: c.name for i, c in csms_by_id(session, (m.owner_id for m, _ in pairs)).items()}
    return [
        {
            "id": m.id,
            "title": m.title,
            "account_id": a.id,
            "account_name": a.name,
            "owner": owners.get(m.owner_id) if m.owner_id else m.owner_name,
            "due_date": m.due_date.isoformat() if m.due_date else None,
            "days_overdue": (ctx.today - m.due_date).days if m.due_date else 0,
            "status": m.status,
            "status_label": STATUS_LABELS.get(m.status, m.status),
        }
        for m, a in pairs
    ]


def overdue_milestones(
    session: Session,
    *,
    ctx: ChatContext,
    query: str | None = None,
    account_id: int | None = None,
    owner: str | None = None,
) -> Reply:
    """Milestones past their due date and not done: for one account, or across the asker's portfolio."""
    account_summary: dict[str, Any] | None = None
    if query or account_id:
        found = resolve_account(
            session, ctx=ctx, intent="milestones_overdue", query=query, account_id=account_id
        )
        if isinstance(found, Reply):
            return found
        ids: list[int] | None = [found.id or 0]
        account_summary = {"id": found.id, "name": found.name}
        where = found.name
    else:
        refused = _refuse_in_external(ctx)
        if refused:
            return refused
        scope = scope_for(session, ctx, owner)
        ids = None if scope.owner_ids is None else [a.id or 0 for a in _accounts(session, scope)]
        where = scope.label
    rows = _overdue_rows(session, ctx, ids)
    text = (
        f"{len(rows)} overdue milestones for {where}: "
        + "; ".join(
            f"{r['title']} ({r['account_name']}, {r['days_overdue']}d late)" for r in rows[:5]
        )
        if rows
        else f"No overdue milestones for {where}."
    )
    return Reply(
        template="milestones_overdue",
        context={
            "account": account_summary,
            "scope": where,
            "milestones": rows,
            "total": len(rows),
        },
        text=text,
    )


def home(session: Session, *, ctx: ChatContext) -> Reply:
    """The App Home / start page: red and amber accounts, renewals in 30 days, overdue milestones."""
    scope = scope_for(session, ctx, "me" if ctx.actor.csm_id else None)
    accounts = _accounts(session, scope)
    rows = _rows(session, accounts, ctx.today)
    red_amber = sorted([r for r in rows if r["band"] in ("red", "amber")], key=_risk_key)
    counts = {
        b: sum(1 for r in rows if r["band"] == b) for b in ("red", "amber", "green", "insufficient")
    }
    renewals = upcoming_renewals(
        session, ctx=ctx, days=30, owner="me" if ctx.actor.csm_id else None
    )
    overdue = _overdue_rows(session, ctx, [a.id or 0 for a in accounts])
    csm = {"name": ctx.actor.name, "email": ctx.actor.email} if ctx.actor.csm_id else None
    text = (
        f"{scope.label.capitalize()}: {counts['red']} red, {counts['amber']} amber; "
        f"{renewals.context['total']} renewals in 30 days; {len(overdue)} overdue milestones"
    )
    return Reply(
        template="home",
        context={
            "csm": csm,
            "scope": scope.label,
            "counts": counts,
            "red_amber": red_amber,
            "renewals": renewals.context["renewals"],
            "overdue": overdue,
        },
        text=text,
    )


def portfolio_size(session: Session) -> int:
    return session.exec(select(func.count(Account.id))).one()


def account_renewal(
    session: Session, *, ctx: ChatContext, query: str | None = None, account_id: int | None = None
) -> Reply:
    """One account's renewal: date, days left, ARR, likelihood, with the health it goes in with."""
    found = resolve_account(
        session, ctx=ctx, intent="renewals_upcoming", query=query, account_id=account_id
    )
    if isinstance(found, Reply):
        return found
    renewals = session.exec(
        select(Renewal)
        .where(Renewal.account_id == found.id, Renewal.status == "open")
        .order_by(col(Renewal.renewal_date))
    ).all()
    snapshot = latest_snapshots(session, [found.id or 0], ctx.today).get(found.id or 0)
    row = _rows(session, [found], ctx.today)[0]
    items = [
        {
            "renewal_date": r.renewal_date.isoformat(),
            "days_left": (r.renewal_date - ctx.today).days,
            "arr": r.arr,
            "likelihood": r.likelihood,
        }
        for r in renewals
    ]
    overdue = _overdue_rows(session, ctx, [found.id or 0])
    if items:
        first = items[0]
        text = (
            f"{found.name} renews on {first['renewal_date']} (in {first['days_left']} days), "
            f"${first['arr']:,.0f} ARR"
        )
    else:
        text = f"{found.name} has no open renewal on record."
    if snapshot is not None and snapshot.score is not None:
        text += f"; health {format_score(snapshot.score)} {snapshot.band}"
    return Reply(
        template="account_renewal",
        context={
            "account": {"id": found.id, "name": found.name, "owner": row["owner"]},
            "renewals": items,
            "health": {
                "score": row["score"],
                "band": row["band"],
                "delta_7d": row["delta_7d"],
                "top_driver": row["top_driver"],
                "forecast_red_in_days": row["forecast_red_in_days"],
                "forecast": row["forecast"],
            },
            "overdue_milestones": len(overdue),
        },
        text=text,
    )
