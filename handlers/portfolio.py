"""Portfolio views: my accounts, at-risk accounts, upcoming renewals, overdue milestones and the home tab."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlmodel import Session, col, select

from domain.forecast import describe_short
from domain.numbers import format_score, round_half_away, shown_score
from handlers import access
from handlers.access import Scope
from handlers.accounts import (
    csms_by_id,
    latest_snapshots,
    not_here_reply,
    pending_flushed,
    resolve_account,
    scores_on,
)
from handlers.context import ChatContext
from handlers.plan import STATUS_LABELS
from handlers.reply import Reply
from storage.models import CSM, Account, HealthSnapshot, Milestone, Renewal

BAND_ORDER = {"red": 0, "amber": 1, "insufficient": 2, "green": 3}


def scope_for(session: Session, ctx: ChatContext, owner: str | None) -> Scope:
    """ "my" → the asker's accounts; "team" → a manager's team (everyone for others); a name → that CSM's.

    Raises access.NoAccess for someone who may not read the portfolio; the default book of
    each role is access.book_of's rule.
    """
    access.require(session, ctx, access.Action.READ_PORTFOLIO)
    if owner and owner not in ("me", "team"):
        needle = owner.strip().lower()
        for csm in session.exec(select(CSM).order_by(col(CSM.id))).all():
            if csm.name.lower() == needle or csm.name.lower().split()[0] == needle:
                return Scope(frozenset({csm.id or 0}), f"{csm.name}'s accounts")
        return Scope(frozenset(), f"accounts of “{owner}” (nobody by that name)")
    return access.book_of(session, ctx.actor, owner)


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


# A list reply carries the rows it shows (templates show 20 to 30, then "…and N more") and the
# totals of all of them: a manager's 10,000 accounts are counted, not all turned into rows.
SHOWN = 50

_ACC = Account.__table__
_SNAP = HealthSnapshot.__table__
_RENEWAL = Renewal.__table__


def _latest_snapshot_join(today: date) -> Any:
    """account LEFT JOIN its newest health snapshot on or before ``today`` (one index probe each)."""
    newest = _SNAP.alias("newest")
    day = (
        select(func.max(newest.c.day))
        .where(newest.c.account_id == _ACC.c.id, newest.c.day <= today)
        .scalar_subquery()
    )
    return _ACC.outerjoin(_SNAP, and_(_SNAP.c.account_id == _ACC.c.id, _SNAP.c.day == day))


def _in_scope(query: Any, scope: Scope) -> Any:
    if scope.owner_ids is None:
        return query
    return query.where(_ACC.c.owner_id.in_(scope.owner_ids or {-1}))


@dataclass(frozen=True)
class Ranked:
    """The worst accounts of a list (at most SHOWN, worst first) and the totals of all of it."""

    rows: list[Any]
    total: int
    counts: dict[str, int]
    arr: float


def _ranked(
    session: Session, scope: Scope, today: date, where: Callable[[Any], Any] | None = None
) -> Ranked:
    """Live accounts in scope with their newest score, ranked worst first: the shown ones, and
    counts per band and ARR over every one (``where`` narrows them), all in one statement."""
    pending_flushed(session)
    scored = (
        _in_scope(
            select(
                _ACC.c.id,
                _ACC.c.name,
                _ACC.c.arr,
                _ACC.c.renewal_date,
                _ACC.c.owner_id,
                _SNAP.c.id.label("snapshot_id"),
                _SNAP.c.score,
                func.coalesce(_SNAP.c.band, "insufficient").label("band"),
                _SNAP.c.forecast_red_in_days,
                _SNAP.c.forecast_status,
                _SNAP.c.forecast_red_earliest,
                _SNAP.c.forecast_red_latest,
            )
            .select_from(_latest_snapshot_join(today))
            .where(_ACC.c.churned_on.is_(None)),
            scope,
        )
    ).subquery("scored")
    c = scored.c
    band_rank = case({b: n for b, n in BAND_ORDER.items()}, value=c.band, else_=9)
    per_band = [
        func.sum(case((c.band == b, 1), else_=0)).over().label(f"n_{b}") for b in BAND_ORDER
    ]
    query = (
        select(
            scored,
            func.count().over().label("n_total"),
            func.coalesce(func.sum(c.arr).over(), 0).label("arr_total"),
            *per_band,
        )
        .order_by(
            band_rank,
            func.coalesce(c.score, 999),  # raw: ties of the rounded score shown keep their order
            func.coalesce(c.forecast_red_in_days, 999),
            -func.coalesce(c.arr, 0),
            c.name,
        )
        .limit(SHOWN)
    )
    if where is not None:
        query = query.where(where(c))
    rows = list(session.connection().execute(query).all())
    if not rows:
        return Ranked(rows=[], total=0, counts=dict.fromkeys(BAND_ORDER, 0), arr=0.0)
    first = rows[0]
    counts = {b: int(getattr(first, f"n_{b}") or 0) for b in BAND_ORDER}
    return Ranked(rows=rows, total=first.n_total, counts=counts, arr=float(first.arr_total))


def _ids(session: Session, scope: Scope) -> list[int]:
    """The ids of the live accounts in scope."""
    query = _in_scope(select(_ACC.c.id).where(_ACC.c.churned_on.is_(None)), scope)
    return [i for (i,) in session.connection().execute(query)]


def _shown(session: Session, rows: list[Any], today: date) -> list[dict[str, Any]]:
    """The detail rows a reply shows (top driver, 7-day change, owner) for the first SHOWN rows."""
    rows = rows[:SHOWN]
    ids = [r.id for r in rows]
    snapshot_ids = [r.snapshot_id for r in rows if r.snapshot_id is not None]
    drivers: dict[int, Any] = {}
    if snapshot_ids:
        found = session.connection().execute(
            select(_SNAP.c.id, _SNAP.c.drivers).where(_SNAP.c.id.in_(snapshot_ids))
        )
        drivers = {i: d for i, d in found}
    past = scores_on(session, ids, today - timedelta(days=7))
    owners = {i: c.name for i, c in csms_by_id(session, (r.owner_id for r in rows)).items()}
    shown = []
    for r in rows:
        score = shown_score(r.score)
        top = drivers.get(r.snapshot_id) or []
        if isinstance(top, str):  # SQLite hands JSON back as text on a Core select
            top = json.loads(top)
        before = past.get(r.id)
        shown.append(
            {
                "id": r.id,
                "name": r.name,
                "score": score,
                "band": r.band,
                "delta_7d": round_half_away(r.score - before)
                if r.score is not None and before is not None
                else None,
                "top_driver": top[0]["label"] if top else None,
                "forecast_red_in_days": r.forecast_red_in_days,
                "forecast": describe_short(
                    r.forecast_status,
                    r.forecast_red_in_days,
                    r.forecast_red_earliest,
                    r.forecast_red_latest,
                ),
                "arr": r.arr,
                "renewal_date": r.renewal_date.isoformat() if r.renewal_date else None,
                "days_to_renewal": (r.renewal_date - today).days if r.renewal_date else None,
                "owner": owners.get(r.owner_id) if r.owner_id else None,
            }
        )
    return shown


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
    return None if access.lists_shown_here(ctx) else not_here_reply()


def portfolio_rows(
    session: Session, *, ctx: ChatContext, owner: str | None = None
) -> tuple[str, list[dict[str, Any]]] | Reply:
    """The scope label and one row per live account in it (score, band, ARR, renewal), or the
    refusal for an external channel; the health map reads these."""
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    if owner is None and ctx.actor.csm_id and ctx.actor.role == "csm":
        owner = "me"
    scope = scope_for(session, ctx, owner)
    return scope.label, _rows(session, _accounts(session, scope), ctx.today)


def at_risk(
    session: Session, *, ctx: ChatContext, owner: str | None = None, band: str | None = None
) -> Reply:
    """Red and amber accounts (or one band), and green ones forecast to turn red, worst first."""
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    scope = scope_for(session, ctx, owner)
    if band:
        risky = _ranked(session, scope, ctx.today, lambda c: c.band == band)
    else:
        # Red and amber, and any account forecast to turn red within 30 days.
        risky = _ranked(
            session,
            scope,
            ctx.today,
            lambda c: or_(c.band.in_(("red", "amber")), c.forecast_red_in_days <= 30),
        )
    arr_at_risk = risky.arr
    counts = {b: risky.counts[b] for b in ("red", "amber", "green")}
    if band:
        found = _plural(risky.total, f"{band} account")
        text = (
            f"{found} in {scope.label}, ARR ${arr_at_risk:,.0f}"
            if risky.total
            else f"No {band} accounts in {scope.label}."
        )
    else:
        found = _plural(risky.total, "account") + " at risk"
        text = (
            f"{found} in {scope.label} ({counts['red']} red, {counts['amber']} amber"
            + (f", {counts['green']} green heading for red" if counts["green"] else "")
            + "), "
            f"ARR at risk ${arr_at_risk:,.0f}"
            if risky.total
            else f"No accounts at risk in {scope.label}."
        )
    return Reply(
        template="risks",
        context={
            "scope": scope.label,
            "band": band,
            "accounts": _shown(session, risky.rows, ctx.today),
            "total": risky.total,
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
    if owner is None and ctx.actor.csm_id and ctx.actor.role == "csm":
        owner = "me"
    # A manager's or an admin's "my accounts" is the book they look after: their team's (or all).
    scope = scope_for(session, ctx, owner)
    ranked = _ranked(session, scope, ctx.today)
    counts = ranked.counts
    total_arr = ranked.arr
    text = (
        f"{_plural(ranked.total, 'account')} in {scope.label}: {counts['red']} red, "
        f"{counts['amber']} amber, {counts['green']} green"
        + (f", {counts['insufficient']} without enough data" if counts["insufficient"] else "")
        if ranked.total
        else f"{scope.label[:1].upper()}{scope.label[1:]}: none."
    )
    return Reply(
        template="my_accounts",
        context={
            "scope": scope.label,
            "csm": {"name": ctx.actor.name},
            "accounts": _shown(session, ranked.rows, ctx.today),
            "counts": counts,
            "total": ranked.total,
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
    pending_flushed(session)
    band = func.coalesce(_SNAP.c.band, "insufficient")
    at_risk = and_(_RENEWAL.c.status == "open", band.in_(("red", "amber")))
    query = (
        select(
            _RENEWAL.c.renewal_date,
            _RENEWAL.c.arr,
            _RENEWAL.c.likelihood,
            _RENEWAL.c.status,
            _RENEWAL.c.renewed_arr,
            _ACC.c.id.label("account_id"),
            _ACC.c.name.label("account_name"),
            _ACC.c.owner_id,
            _SNAP.c.score,
            band.label("band"),
            # The totals of the whole window, next to the rows shown.
            func.count().over().label("n_total"),
            func.sum(_RENEWAL.c.arr).over().label("arr_total"),
            func.sum(case((at_risk, _RENEWAL.c.arr), else_=0)).over().label("arr_at_risk"),
            func.sum(case((_RENEWAL.c.status != "open", 1), else_=0)).over().label("n_closed"),
        )
        .select_from(
            _latest_snapshot_join(ctx.today).join(_RENEWAL, _RENEWAL.c.account_id == _ACC.c.id)
        )
        .where(_RENEWAL.c.renewal_date >= start, _RENEWAL.c.renewal_date <= end)
        .where(or_(_RENEWAL.c.status == "open", _RENEWAL.c.renewal_date < ctx.today))
        .order_by(_RENEWAL.c.renewal_date, _ACC.c.name)
        .limit(SHOWN)
    )
    found = session.connection().execute(_in_scope(query, scope)).all()
    owners = {i: c.name for i, c in csms_by_id(session, (r.owner_id for r in found)).items()}
    renewals = [
        {
            "account_id": r.account_id,
            "account_name": r.account_name,
            "renewal_date": r.renewal_date.isoformat(),
            "days_left": (r.renewal_date - ctx.today).days,
            "arr": r.arr,
            "likelihood": r.likelihood,
            "score": shown_score(r.score),
            "band": r.band,
            "owner": owners.get(r.owner_id) if r.owner_id else None,
            "status": r.status,
            "renewed_arr": r.renewed_arr,
        }
        for r in found
    ]
    total = found[0].n_total if found else 0
    total_arr = float(found[0].arr_total or 0) if found else 0.0
    arr_at_risk = float(found[0].arr_at_risk or 0) if found else 0.0
    closed = int(found[0].n_closed or 0) if found else 0
    phrase = window_phrase(label)
    text = (
        f"{_plural(total, 'renewal')} {phrase} ({scope.label}), ${total_arr:,.0f} ARR, "
        f"${arr_at_risk:,.0f} of it on red or amber accounts"
        + (f"; {closed} already closed" if closed else "")
        if total
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
            "total": total,
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
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    # A CSM's start page is their own accounts; everyone else's is their book (design.md:
    # a manager's team, an admin's everything, a viewer's team or everything).
    mine = "me" if ctx.actor.role == "csm" else None
    scope = scope_for(session, ctx, mine)
    ranked = _ranked(session, scope, ctx.today)
    counts = ranked.counts
    # Worst first: the red and amber accounts lead the ranking.
    red_amber = [r for r in ranked.rows if r.band in ("red", "amber")]
    renewals = upcoming_renewals(session, ctx=ctx, days=30, owner=mine)
    overdue = _overdue_rows(session, ctx, _ids(session, scope))
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
            "red_amber": _shown(session, red_amber, ctx.today),
            "red_amber_total": counts["red"] + counts["amber"],
            "renewals": renewals.context["renewals"],
            "renewals_total": renewals.context["total"],
            "overdue": overdue[:SHOWN],
            "overdue_total": len(overdue),
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
