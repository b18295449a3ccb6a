"""Portfolio views: my accounts, at-risk accounts, upcoming renewals, overdue milestones and the home tab."""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_
from sqlmodel import Session, col, select

from domain.forecast import describe_short
from domain.nlu.timewindow import TimeWindow
from domain.numbers import days_away, format_score, round_half_away, shown_score
from handlers import access
from handlers.access import Scope
from handlers.accounts import (
    csms_by_id,
    latest_snapshots,
    not_here_reply,
    resolve_account,
    scores_on,
)
from handlers.context import ChatContext
from handlers.name_index import pending_flushed
from handlers.plan import STATUS_LABELS
from handlers.reply import Reply
from handlers.understanding import (
    Constraints,
    plural,
    understanding,
    understood,
    window_phrase,
    with_notes,
)
from storage.models import CSM, Account, HealthSnapshot, Milestone, Renewal

BAND_ORDER = {"red": 0, "amber": 1, "insufficient": 2, "green": 3}
# Lists carry at most this many rows (templates show fewer); totals count them all.
LIST_LIMIT = 200
# The bands a stated band stands for ("at risk" is red and amber).
BAND_SETS: dict[str, frozenset[str]] = {
    "red": frozenset({"red"}),
    "amber": frozenset({"amber"}),
    "green": frozenset({"green"}),
    "at_risk": frozenset({"red", "amber"}),
}


def book_name(scope: Scope) -> str:
    """How an answer's first line names a scope: "your book", "Marco Rossi's book", "all accounts"."""
    if scope.label == "all accounts" or not scope.label.endswith("accounts"):
        return scope.label
    return scope.label.removesuffix("accounts") + "book"


def scope_for(session: Session, ctx: ChatContext, owner: str | None) -> Scope:
    """ "my" → the asker's book (a CSM's accounts; a manager's team; an admin's everything; a
    viewer's team or everything); "team" → a manager's team, a CSM's manager's team (everyone
    when there is none); "all" → every account; a name → that CSM's.

    Raises access.NoAccess for someone who may not read the portfolio; the default book of
    each role is access.book_of's rule.
    """
    access.require(session, ctx, access.Action.READ_PORTFOLIO)
    if owner == "all":
        return Scope(None, "all accounts")
    if owner and owner not in ("me", "team"):
        needle = owner.strip().lower()
        for csm in session.exec(select(CSM).order_by(col(CSM.id))).all():
            if csm.name.lower() == needle or csm.name.lower().split()[0] == needle:
                return Scope(frozenset({csm.id or 0}), f"{csm.name}'s accounts")
        return Scope(frozenset(), f"accounts of “{owner}” (nobody by that name)")
    # Only a CSM's "my accounts" are the ones they own; everyone else's are their book.
    if owner == "me" and ctx.actor.role != "csm":
        owner = None
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
        "segment": account.segment,
    }


_ACC = Account.__table__
_SNAP = HealthSnapshot.__table__


def _latest_day(day_param: str) -> Any:
    """The day of an account's newest snapshot on or before a day (an index seek per account)."""
    inner = _SNAP.alias()
    return (
        select(func.max(inner.c.day))
        .where(inner.c.account_id == _ACC.c.id, inner.c.day <= bindparam(day_param))
        .scalar_subquery()
    )


# The newest snapshot on or before today, and the one a week before it.
NOW = _SNAP.alias("now")
_WEEK = _SNAP.alias("week")


def _facts_query(indicators: tuple[str, ...] = ()) -> Any:
    columns = [
        _ACC.c.id,
        _ACC.c.name,
        _ACC.c.arr,
        _ACC.c.renewal_date,
        _ACC.c.segment,
        _ACC.c.owner_id,
        _ACC.c.licensed_seats,
        NOW.c.score,
        NOW.c.band,
        NOW.c.forecast_red_in_days,
        NOW.c.forecast_status,
        NOW.c.forecast_red_earliest,
        NOW.c.forecast_red_latest,
    ]
    for key in indicators:
        columns.append(NOW.c.indicator_scores[key]["value"].as_float())
    return select(*columns).select_from(
        _ACC.outerjoin(NOW, (NOW.c.account_id == _ACC.c.id) & (NOW.c.day == _latest_day("today")))
    )


# Built once (per set of indicator values asked for): composing these costs more than SQLite
# takes to answer them.
_FACTS: dict[tuple[str, ...], Any] = {(): _facts_query()}
_DETAILS = select(
    _ACC.c.id, NOW.c.drivers[0]["label"].as_string(), NOW.c.score, _WEEK.c.score
).select_from(
    _ACC.outerjoin(
        NOW, (NOW.c.account_id == _ACC.c.id) & (NOW.c.day == _latest_day("today"))
    ).outerjoin(_WEEK, (_WEEK.c.account_id == _ACC.c.id) & (_WEEK.c.day == _latest_day("week_ago")))
)


def account_facts(
    session: Session,
    scope: Scope,
    today: date,
    *,
    account_ids: list[int] | None = None,
    indicators: tuple[str, ...] = (),
    live_only: bool = True,
    where: Any = None,
) -> list[dict[str, Any]]:
    """The live accounts of a scope as list rows: money, renewal, owner and today's health, in one
    statement (10,000 accounts: one pass, no per-row JSON parsing). The 7-day change and the main
    driver are left to ``with_details``, for the rows an answer shows.

    ``indicators``: also each one's latest value, as ``row["values"][key]``. ``where``: an extra
    condition on the account (``_ACC``) and its newest snapshot (``NOW``).
    """
    query = _FACTS.get(indicators)
    if query is None:
        query = _FACTS[indicators] = _facts_query(indicators)
    if live_only:
        query = query.where(_ACC.c.churned_on.is_(None))
    if scope.owner_ids is not None:
        if not scope.owner_ids:
            return []
        query = query.where(_ACC.c.owner_id.in_(sorted(scope.owner_ids)))
    if account_ids is not None:
        query = query.where(_ACC.c.id.in_(account_ids or [-1]))
    if where is not None:
        query = query.where(where)
    pending_flushed(session)
    raw = _driver_rows(session, query.order_by(_ACC.c.name), {"today": today})
    owners = {i: c.name for i, c in csms_by_id(session, {r[5] for r in raw if r[5]}).items()}
    rows: list[dict[str, Any]] = []
    for r in raw:
        renewal = _as_date(r[3])
        row = {
            "id": r[0],
            "name": r[1],
            "score": shown_score(r[7]),
            "band": r[8] or "insufficient",
            "delta_7d": None,
            "top_driver": None,
            "forecast_red_in_days": r[9],
            "forecast": describe_short(r[10], r[9], r[11], r[12]),
            "arr": r[2],
            "renewal_date": renewal.isoformat() if renewal else None,
            "days_to_renewal": (renewal - today).days if renewal else None,
            "owner": owners.get(r[5]) if r[5] else None,
            "segment": r[4],
            "licensed_seats": r[6],
        }
        if indicators:
            row["values"] = dict(zip(indicators, r[13:], strict=True))
        rows.append(row)
    return rows


def _driver_rows(session: Session, query: Any, params: dict[str, Any]) -> list[Any]:
    """A statement's rows as the driver gives them: SQLAlchemy's per-row processing costs more
    than SQLite takes to read 10,000 accounts (dates stay ISO text on SQLite: see _as_date)."""
    result = session.connection().execute(query, params)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _as_date(value: Any) -> date | None:
    return date.fromisoformat(value[:10]) if isinstance(value, str) else value


_AT_RISK_KEYS = (
    select(_ACC.c.id, _ACC.c.name, NOW.c.band, _ACC.c.arr, _ACC.c.renewal_date)
    .select_from(
        _ACC.join(NOW, (NOW.c.account_id == _ACC.c.id) & (NOW.c.day == _latest_day("today")))
    )
    .where(
        _ACC.c.churned_on.is_(None),
        or_(NOW.c.band.in_(("red", "amber")), NOW.c.forecast_red_in_days <= bindparam("red_in")),
    )
)


def at_risk_keys(
    session: Session, scope: Scope, today: date, *, red_within_days: int = 30
) -> list[tuple[int, str, str, float | None, date | None]]:
    """(id, name, band, ARR, renewal date) of the scope's live accounts that are red, amber or
    forecast red within ``red_within_days``: what ranks them, read straight from the driver (a
    manager's book holds thousands; the full facts are read for the few an answer shows)."""
    query = _AT_RISK_KEYS
    if scope.owner_ids is not None:
        if not scope.owner_ids:
            return []
        query = query.where(_ACC.c.owner_id.in_(sorted(scope.owner_ids)))
    pending_flushed(session)
    raw = _driver_rows(session, query, {"today": today, "red_in": red_within_days})
    return [(i, name, band, arr, _as_date(day)) for i, name, band, arr, day in raw]


def with_details(session: Session, rows: list[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    """Fill the 7-day change and the main driver of the rows an answer shows (one statement)."""
    if not rows:
        return rows
    pending_flushed(session)
    found = {
        r[0]: r
        for r in session.connection().execute(
            _DETAILS.where(_ACC.c.id.in_([row["id"] for row in rows])),
            {"today": today, "week_ago": today - timedelta(days=7)},
        )
    }
    for row in rows:
        detail = found.get(row["id"])
        if detail is None:
            continue
        _, driver, now, week = detail
        row["top_driver"] = driver
        row["delta_7d"] = None if now is None or week is None else round_half_away(now - week)
    return rows


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


def window_phrase_of_label(label: str) -> str:
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
    return scope.label, account_facts(session, scope, ctx.today)


def _risk_key(row: dict[str, Any]) -> tuple[Any, ...]:
    forecast = row["forecast_red_in_days"]
    return (
        BAND_ORDER.get(row["band"], 9),
        row["score"] if row["score"] is not None else 999,
        forecast if forecast is not None else 999,
        -(row["arr"] or 0),
    )


def _filtered(
    rows: list[dict[str, Any]], c: Constraints, *, arr_key: str = "arr"
) -> list[dict[str, Any]]:
    """Rows that meet the band, amount (on ``arr_key``) and segment the question states."""
    bands = BAND_SETS.get(c.band) if c.band else None
    return [
        r
        for r in rows
        if (bands is None or r["band"] in bands)
        and (c.amount is None or c.amount.accepts(r.get(arr_key)))
        and (c.segment is None or (r.get("segment") or "").lower() == c.segment)
    ]


def _ordered(
    rows: list[dict[str, Any]],
    c: Constraints,
    default: Any,
    *,
    arr_key: str = "arr",
    date_key: str = "renewal_date",
    name_key: str = "name",
) -> list[dict[str, Any]]:
    """Sorted as asked ("by ARR", "riskiest first") else by ``default``; cut to the limit."""
    order = c.order
    key = order.key if order else None
    if key == "arr":
        rows = sorted(rows, key=lambda r: r.get(arr_key) or 0, reverse=order.descending)  # type: ignore[union-attr]
    elif key == "health":
        rows = sorted(
            rows,
            key=lambda r: 999 if r.get("score") is None else r["score"],
            reverse=order.descending,  # type: ignore[union-attr]
        )
    elif key == "renewal":
        rows = sorted(rows, key=lambda r: r.get(date_key) or "9999", reverse=order.descending)  # type: ignore[union-attr]
    elif key == "name":
        rows = sorted(rows, key=lambda r: (r.get(name_key) or "").lower(), reverse=order.descending)  # type: ignore[union-attr]
    else:
        rows = sorted(rows, key=default)
    if order is not None and order.limit:
        rows = rows[: order.limit]
    return rows


def _filter_parts(c: Constraints, applied: AbstractSet[str]) -> list[str | None]:
    """The understood line's filter phrases, for the constraints this answer applied."""
    phrases = c.phrases()
    return [phrases.get(kind) for kind in ("band", "amount", "segment", "order") if kind in applied]


def at_risk(
    session: Session,
    *,
    ctx: ChatContext,
    owner: str | None = None,
    band: str | None = None,
    constraints: Constraints | None = None,
) -> Reply:
    """Red and amber accounts (or one band), and green ones forecast to turn red, worst first.

    A window keeps the accounts whose renewal falls in it ("ARR at risk this quarter").
    """
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    c = constraints or Constraints(owner=owner, band=band)
    band = c.band if c.band != "at_risk" else None
    scope = scope_for(session, ctx, c.owner)
    rows = account_facts(session, scope, ctx.today)
    if band:
        risky = [r for r in rows if r["band"] == band]
    else:
        risky = [
            r
            for r in rows
            if r["band"] in ("red", "amber")
            or (r["forecast_red_in_days"] is not None and r["forecast_red_in_days"] <= 30)
        ]
    before_window = len(risky)
    if c.window is not None:
        start, end = c.window.start.isoformat(), c.window.end.isoformat()
        risky = [r for r in risky if r["renewal_date"] and start <= r["renewal_date"] <= end]
    risky = _ordered(
        _filtered(risky, Constraints(amount=c.amount, segment=c.segment)), c, _risk_key
    )
    arr_at_risk = sum(r["arr"] or 0 for r in risky)
    counts = {b: sum(1 for r in risky if r["band"] == b) for b in ("red", "amber", "green")}
    applied = {"window", "scope", "band", "amount", "segment", "order"}
    not_applied = c.not_applied(applied, "the at-risk list is about accounts, not this")
    subject = f"{band.capitalize()} accounts" if band else "Accounts at risk"
    window = None
    if c.window is not None:
        subject += " renewing"
        window = window_phrase(c.window)
    parts: list[str | None] = [book_name(scope), *_filter_parts(c, applied - {"band"})]
    if risky:
        result = (
            plural(len(risky), "account")
            + (
                f" ({counts['red']} red, {counts['amber']} amber"
                + (f", {counts['green']} green heading for red" if counts["green"] else "")
                + ")"
                if not band
                else ""
            )
            + f", {_money(arr_at_risk)} ARR"
        )
    elif c.window is not None and before_window:
        result = f"none ({plural(before_window, 'account')} at risk, none renewing in this window)"
    else:
        result = "none"
    line = understood(subject, window, parts, result)
    return Reply(
        template="risks",
        context={
            "scope": scope.label,
            "band": band,
            "accounts": risky[:LIST_LIMIT],
            "total": len(risky),
            "counts": counts,
            "arr_at_risk": arr_at_risk,
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
    )


def _money(value: float) -> str:
    return f"${value:,.0f}"


def my_accounts(
    session: Session,
    *,
    ctx: ChatContext,
    owner: str | None = None,
    constraints: Constraints | None = None,
) -> Reply:
    """The asker's (or a named CSM's) accounts with health, worst first (or as asked)."""
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    c = constraints or Constraints(owner=owner)
    owner = c.owner
    if owner is None and ctx.actor.csm_id and ctx.actor.role == "csm":
        owner = "me"
    # A manager's or an admin's "my accounts" is the book they look after (scope_for's rule).
    scope = scope_for(session, ctx, owner)
    rows = _ordered(_filtered(account_facts(session, scope, ctx.today), c), c, _risk_key)
    with_details(session, rows[:LIST_LIMIT], ctx.today)
    counts = {
        b: sum(1 for r in rows if r["band"] == b) for b in ("red", "amber", "green", "insufficient")
    }
    total_arr = sum(r["arr"] or 0 for r in rows)
    applied = {"scope", "band", "amount", "segment", "order"}
    not_applied = c.not_applied(applied, "an account list shows today's book")
    filters = _filter_parts(c, applied)
    subject = book_name(scope)[:1].upper() + book_name(scope)[1:]
    if rows:
        result = (
            f"{plural(len(rows), 'account')}, {_money(total_arr)} ARR — {counts['red']} red, "
            f"{counts['amber']} amber, {counts['green']} green"
            + (f", {counts['insufficient']} without enough data" if counts["insufficient"] else "")
        )
    else:
        result = "none"
    line = understood(subject, None, filters, result)
    return Reply(
        template="my_accounts",
        context={
            "scope": scope.label,
            "csm": {"name": ctx.actor.name},
            "accounts": rows[:LIST_LIMIT],
            "counts": counts,
            "total": len(rows),
            "total_arr": total_arr,
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
    )


def _renewal_rows(
    session: Session, ctx: ChatContext, scope: Scope, c: Constraints, *where: Any
) -> list[dict[str, Any]]:
    """Renewals matching `where` in the scope (and the named accounts), with health and owner."""
    ren = Renewal.__table__
    query = (
        select(
            ren.c.account_id,
            ren.c.renewal_date,
            ren.c.arr,
            ren.c.likelihood,
            ren.c.status,
            ren.c.renewed_arr,
        )
        .select_from(ren.join(_ACC, _ACC.c.id == ren.c.account_id))
        .where(*where)
        .order_by(ren.c.renewal_date, _ACC.c.name)
    )
    if scope.owner_ids is not None:
        query = query.where(_ACC.c.owner_id.in_(sorted(scope.owner_ids) or [-1]))
    if c.accounts:
        query = query.where(_ACC.c.id.in_(c.accounts))
    pending_flushed(session)
    raw = session.connection().execute(query).all()
    if not raw:
        return []
    # Health, names and owners of the accounts renewing, churned ones included (a past renewal).
    facts = {
        r["id"]: r
        for r in account_facts(
            session,
            Scope(None, scope.label),
            ctx.today,
            account_ids=sorted({r[0] for r in raw}),
            live_only=False,
        )
    }
    renewals = []
    for account_id, day, arr, likelihood, status, renewed_arr in raw:
        fact = facts.get(account_id)
        if fact is None:
            continue
        renewals.append(
            {
                "account_id": account_id,
                "account_name": fact["name"],
                "renewal_date": day.isoformat(),
                "days_left": (day - ctx.today).days,
                "arr": arr,
                "likelihood": likelihood,
                "score": fact["score"],
                "band": fact["band"],
                "owner": fact["owner"],
                "status": status,
                "renewed_arr": renewed_arr,
                "segment": fact["segment"],
            }
        )
    return renewals


def upcoming_renewals(
    session: Session,
    *,
    ctx: ChatContext,
    days: int = 90,
    start: date | None = None,
    end: date | None = None,
    label: str | None = None,
    owner: str | None = None,
    constraints: Constraints | None = None,
) -> Reply:
    """Renewals in a window (default the next 90 days), soonest first, with health and ARR.

    Open renewals always; for the part of the window already past, the closed ones too (renewed
    or churned, with the outcome), so "what renewed last month?" has an answer. A band, an amount
    (on the renewal's ARR: "over $100k" is strictly more), a segment and an order apply too.
    A window from today on also names the open renewals already past their date (past_due).
    """
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    c = constraints or Constraints(owner=owner)
    default = False
    if c.window is not None:
        start, end, label = c.window.start, c.window.end, c.window.label
    elif start is None and end is None:
        default = constraints is not None
    start = start or ctx.today
    end = end or ctx.today + timedelta(days=days)
    label = label or f"next {(end - start).days} days"
    scope = scope_for(session, ctx, c.owner)
    renewals = _renewal_rows(
        session,
        ctx,
        scope,
        c,
        Renewal.__table__.c.renewal_date >= start,
        Renewal.__table__.c.renewal_date <= end,
        or_(Renewal.__table__.c.status == "open", Renewal.__table__.c.renewal_date < ctx.today),
    )
    # Open renewals whose date has passed belong to no future window, yet they are the ones a
    # CSM must chase: a list that starts today names them instead of leaving them out silently.
    past_due = (
        _filtered(
            _renewal_rows(
                session,
                ctx,
                scope,
                c,
                Renewal.__table__.c.renewal_date < ctx.today,
                Renewal.__table__.c.status == "open",
            ),
            c,
        )
        if start >= ctx.today
        else []
    )
    renewals = _ordered(
        _filtered(renewals, c),
        c,
        lambda r: (r["renewal_date"], r["account_name"]),
        name_key="account_name",
    )
    total_arr = sum(r["arr"] for r in renewals)
    arr_at_risk = sum(
        r["arr"] for r in renewals if r["status"] == "open" and r["band"] in ("red", "amber")
    )
    closed = sum(1 for r in renewals if r["status"] != "open")
    phrase = window_phrase_of_label(label)
    applied = {"window", "scope", "band", "amount", "segment", "order", "accounts"}
    not_applied = c.not_applied(applied, "renewal lists show ARR, dates and health")
    if renewals:
        result = (
            f"{plural(len(renewals), 'renewal')}, {_money(total_arr)} ARR, "
            f"{_money(arr_at_risk)} of it on red or amber accounts"
            + (f"; {closed} already closed" if closed else "")
        )
    else:
        result = "none"
    line = understood(
        "Renewals",
        window_phrase(TimeWindow(start, end, label), default=default),
        [c.phrases().get("accounts"), book_name(scope), *_filter_parts(c, applied)],
        result,
    )
    past_due_line = _past_due_line(past_due)
    return Reply(
        template="renewals",
        context={
            "scope": scope.label,
            "window": {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "label": label,
                "phrase": phrase,
                "default": default,
            },
            "renewals": renewals[:LIST_LIMIT],
            "total": len(renewals),
            "total_arr": total_arr,
            "arr_at_risk": arr_at_risk,
            "closed": closed,
            "past_due": past_due[:PAST_DUE_SHOWN],
            "past_due_total": len(past_due),
            "past_due_line": past_due_line,
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied) + (f"\n{past_due_line}" if past_due_line else ""),
    )


PAST_DUE_SHOWN = 5


def _past_due_line(past_due: list[dict[str, Any]]) -> str:
    """'Still open past their date: Nakatomi Trading (due 2026-11-27, 8 days ago, $8k)' or ''."""
    if not past_due:
        return ""
    shown = ", ".join(
        f"{r['account_name']} (due {r['renewal_date']}, {days_away(r['days_left'])}, "
        f"{_money(r['arr'])})"
        for r in past_due[:PAST_DUE_SHOWN]
    )
    more = len(past_due) - PAST_DUE_SHOWN
    return f"Still open past their date: {shown}" + (f" and {more} more" if more > 0 else "")


def _overdue_rows(
    session: Session, ctx: ChatContext, account_ids: list[int] | None
) -> list[dict[str, Any]]:
    return _milestone_rows(session, ctx, account_ids, end=ctx.today - timedelta(days=1))


_MS = Milestone.__table__


def _milestone_rows(
    session: Session,
    ctx: ChatContext,
    account_ids: list[int] | None,
    *,
    start: date | None = None,
    end: date | None = None,
    owner_ids: frozenset[int] | None = None,
) -> list[dict[str, Any]]:
    """Not-done milestones due between ``start`` and ``end`` (both included), soonest first."""
    query = (
        select(
            _MS.c.id,
            _MS.c.title,
            _MS.c.owner_id,
            _MS.c.owner_name,
            _MS.c.due_date,
            _MS.c.status,
            _ACC.c.id,
            _ACC.c.name,
            _ACC.c.arr,
            _ACC.c.segment,
        )
        .select_from(_MS.join(_ACC, _ACC.c.id == _MS.c.account_id))
        .where(_MS.c.status != "done", _MS.c.due_date.is_not(None))
        .order_by(_MS.c.due_date, _MS.c.id)
    )
    if start is not None:
        query = query.where(_MS.c.due_date >= start)
    if end is not None:
        query = query.where(_MS.c.due_date <= end)
    if account_ids is not None:
        query = query.where(_MS.c.account_id.in_(account_ids or [-1]))
    if owner_ids is not None:
        query = query.where(
            _ACC.c.owner_id.in_(sorted(owner_ids) or [-1]), _ACC.c.churned_on.is_(None)
        )
    pending_flushed(session)
    raw = session.connection().execute(query).all()
    owners = {i: c.name for i, c in csms_by_id(session, {r[2] for r in raw if r[2]}).items()}
    today = ctx.today
    return [
        {
            "id": r[0],
            "title": r[1],
            "account_id": r[6],
            "account_name": r[7],
            "owner": owners.get(r[2]) if r[2] else r[3],
            "due_date": r[4].isoformat(),
            "days_overdue": max(0, (today - r[4]).days),
            "days_left": (r[4] - today).days,
            "status": r[5],
            "status_label": STATUS_LABELS.get(r[5], r[5]),
            "arr": r[8],
            "segment": r[9],
        }
        for r in raw
    ]


def _with_bands(session: Session, rows: list[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    """Each milestone row with its account's band and score (for band filters and the list)."""
    facts = {
        f["id"]: f
        for f in account_facts(
            session,
            Scope(None, ""),
            today,
            account_ids=sorted({r["account_id"] for r in rows}),
            live_only=False,
        )
    }
    for r in rows:
        fact = facts.get(r["account_id"])
        r["band"] = fact["band"] if fact else "insufficient"
        r["score"] = fact["score"] if fact else None
    return rows


@dataclass(frozen=True)
class _Covered:
    """The accounts a milestone question covers: named ids, or a scope's owners (None = all)."""

    account_ids: list[int] | None
    owner_ids: frozenset[int] | None
    where: str
    account: dict[str, Any] | None


def _milestone_scope(
    session: Session, ctx: ChatContext, c: Constraints, account_id: int | None, intent: str
) -> _Covered | Reply:
    """The accounts a milestone question covers: named ones, or the asker's (or a named) book."""
    ids = list(c.accounts) or ([account_id] if account_id else [])
    if ids:
        found = resolve_account(session, ctx=ctx, intent=intent, account_id=ids[0])
        if isinstance(found, Reply):
            return found
        if ctx.external and any(i not in ctx.allowed_account_ids for i in ids):
            return not_here_reply()
        names = [found.name or "", *c.account_names[1:]]
        return _Covered(ids, None, ", ".join(names), {"id": found.id, "name": found.name})
    refused = _refuse_in_external(ctx)
    if refused:
        return refused
    scope = scope_for(session, ctx, c.owner)
    return _Covered(None, scope.owner_ids, book_name(scope), None)


# What a milestone list applies of a question; anything else it states is named as not applied.
_MILESTONE_LIST_APPLIES = frozenset(
    {"window", "scope", "band", "amount", "segment", "order", "accounts"}
)


def _milestones_as_asked(
    session: Session, ctx: ChatContext, rows: list[dict[str, Any]], c: Constraints
) -> tuple[list[dict[str, Any]], list[str]]:
    """Milestone rows filtered by the question's band, amount and segment and put in its order
    (by due date without one), and the notes for what of the question a milestone list ignores."""
    if c.band:
        rows = _with_bands(session, rows, ctx.today)
    rows = _ordered(
        _filtered(rows, c),
        c,
        lambda r: (r["due_date"], r["id"]),
        date_key="due_date",
        name_key="title",
    )
    return rows, c.not_applied(_MILESTONE_LIST_APPLIES, "this lists milestones")


def overdue_milestones(
    session: Session,
    *,
    ctx: ChatContext,
    query: str | None = None,
    account_id: int | None = None,
    owner: str | None = None,
    constraints: Constraints | None = None,
) -> Reply:
    """Milestones past their due date and not done: for one account, or across the asker's portfolio.

    A window keeps those whose due date fell in it; band, amount and segment filter by account.
    """
    c = constraints or Constraints(owner=owner)
    if query:
        found = resolve_account(
            session, ctx=ctx, intent="milestones_overdue", query=query, account_id=account_id
        )
        if isinstance(found, Reply):
            return found
        account_id = found.id
    covered = _milestone_scope(session, ctx, c, account_id, "milestones_overdue")
    if isinstance(covered, Reply):
        return covered
    ids, where, account = covered.account_ids, covered.where, covered.account
    yesterday = ctx.today - timedelta(days=1)
    start = c.window.start if c.window else None
    end = min(c.window.end, yesterday) if c.window else yesterday
    rows = _milestone_rows(session, ctx, ids, start=start, end=end, owner_ids=covered.owner_ids)
    rows, not_applied = _milestones_as_asked(session, ctx, rows, c)
    if ids is not None and account is not None and c.owner:
        not_applied.append(f"“{c.phrases()['scope']}” not applied: the account named wins")
    result = (
        plural(len(rows), "milestone")
        + ": "
        + "; ".join(
            f"{r['title']} ({r['account_name']}, {r['days_overdue']}d late)" for r in rows[:5]
        )
        if rows
        else "none"
    )
    line = understood(
        "Overdue milestones",
        f"due {window_phrase(c.window)}" if c.window else None,
        [where if account is None else f"for {where}", *_filter_parts(c, _MILESTONE_LIST_APPLIES)],
        result,
    )
    return Reply(
        template="milestones_overdue",
        context={
            "account": account,
            "scope": where,
            "milestones": rows[:LIST_LIMIT],
            "total": len(rows),
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
    )


# Milestones "due" without a window: the next two weeks (and the answer says so).
DEFAULT_DUE_DAYS = 14


def milestones_due(
    session: Session,
    *,
    ctx: ChatContext,
    account_id: int | None = None,
    constraints: Constraints | None = None,
) -> Reply:
    """Not-done milestones due in a window across the book, or an account's next milestone(s).

    "Due this week" runs from the business date to Sunday; without a window: the next 14 days
    for a book, and for one account its next milestone (plus any already overdue).
    """
    c = constraints or Constraints()
    covered = _milestone_scope(session, ctx, c, account_id, "milestones_due")
    if isinstance(covered, Reply):
        return covered
    ids, where, account = covered.account_ids, covered.where, covered.account
    default = c.window is None
    if c.window is not None:
        start, end, label = max(c.window.start, ctx.today), c.window.end, c.window.label
        if c.window.end < ctx.today:
            start = c.window.start  # a window in the past: what was due then (and is not done)
    else:
        start, end = ctx.today, ctx.today + timedelta(days=DEFAULT_DUE_DAYS)
        label = f"next {DEFAULT_DUE_DAYS} days"
    next_only = account is not None and default
    if next_only:
        rows = _milestone_rows(session, ctx, ids, start=ctx.today)
        if rows:
            first_due = rows[0]["due_date"]
            rows = [r for r in rows if r["due_date"] == first_due]
    else:
        rows = _milestone_rows(session, ctx, ids, start=start, end=end, owner_ids=covered.owner_ids)
    overdue = len(_overdue_rows(session, ctx, ids)) if account is not None else 0
    rows, not_applied = _milestones_as_asked(session, ctx, rows, c)
    window = TimeWindow(start, end, label)
    if next_only:
        subject = f"Next milestone for {where}"
        window_text = None
        result = (
            "; ".join(f"{r['title']}, due {r['due_date']} ({r['days_left']}d)" for r in rows)
            if rows
            else "none scheduled"
        )
    else:
        subject = "Milestones due"
        window_text = window_phrase(window, default=default)
        result = (
            plural(len(rows), "milestone")
            + ": "
            + "; ".join(f"{r['title']} ({r['account_name']}, {r['due_date']})" for r in rows[:5])
            if rows
            else "none"
        )
    parts = [] if next_only else [where if account is None else f"for {where}"]
    line = understood(
        subject, window_text, [*parts, *_filter_parts(c, _MILESTONE_LIST_APPLIES)], result
    )
    if overdue:
        line += f" ({plural(overdue, 'milestone')} already overdue)"
    return Reply(
        template="milestones_due",
        context={
            "account": account,
            "scope": where,
            "next_only": next_only,
            "window": {"start": start.isoformat(), "end": end.isoformat(), "label": label},
            "milestones": rows[:LIST_LIMIT],
            "total": len(rows),
            "overdue": overdue,
            **understanding(line, not_applied),
        },
        text=with_notes(line, not_applied),
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
        days = first["days_left"]
        text = (
            f"{found.name}'s renewal was due on {first['renewal_date']} ({days_away(days)}) "
            f"and is still open, ${first['arr']:,.0f} ARR"
            if days < 0
            else f"{found.name} renews on {first['renewal_date']} (in {days} days), "
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
