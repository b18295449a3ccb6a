"""Retention metric inputs (NRR, GRR, MRR, logo churn) for a set of accounts over a window, from
ARR history: the one place handlers read "what each account was worth when the period began"."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Connection, Select
from sqlmodel import Session, select

from domain.retention import ArrTimeline, RetentionInputs, retention_inputs
from handlers.name_index import pending_flushed
from storage.models import Account, ArrChange

_CHUNK = 900  # below SQLite's bound-parameter limit


def arr_timelines(
    session: Session, account_ids: Iterable[int] | Select | None, *, up_to: date
) -> dict[int, ArrTimeline]:
    """Each account's ARR history up to ``up_to``: [(day the ARR took effect, ARR)], by day.

    ``account_ids`` None means every account; a SELECT of ids (a book, a segment) is used as a
    subquery. An account with no recorded change at all (data written before ARR history
    existed, or by a writer that bypassed storage.arr_history) has had its current ARR since its
    start date, and 0 from its churn date.
    """
    acc, changes = Account.__table__, ArrChange.__table__
    pending_flushed(session)
    conn = session.connection()
    # Core statements, not ORM ones: a company's history is tens of thousands of rows, and the
    # ORM's per-row work would cost more than SQLite takes to read them.
    accounts: list[tuple[int, float, date | None, date | None]] = []
    timelines: dict[int, list[tuple[date, float]]] = {}
    recorded: set[int] = set()
    for chunk in _id_filters(account_ids):
        query = select(acc.c.id, acc.c.arr, acc.c.start_date, acc.c.churned_on)
        if chunk is not None:
            query = query.where(acc.c.id.in_(chunk))
        accounts.extend(
            (account_id, arr, _day(start), _day(churned_on))
            for account_id, arr, start, churned_on in _raw_rows(conn, query)
        )
    for account_id, *_ in accounts:
        timelines[account_id] = []
    for chunk in _id_filters(account_ids):
        # Every change (a few per account), so an account whose history starts later is told
        # apart from one without any history.
        query = select(changes.c.account_id, changes.c.day, changes.c.arr).order_by(
            changes.c.account_id, changes.c.day
        )
        if chunk is not None:
            query = query.where(changes.c.account_id.in_(chunk))
        for account_id, raw_day, arr in _raw_rows(conn, query):
            recorded.add(account_id)
            day = _day(raw_day)
            if day <= up_to:
                timelines.setdefault(account_id, []).append((day, arr))
    for account_id, arr, start, churned_on in accounts:
        if account_id in recorded or not arr or arr <= 0:
            continue
        fallback = [(start or date.min, float(arr))]
        if churned_on is not None:
            fallback.append((churned_on, 0.0))
        timelines[account_id] = [(d, v) for d, v in fallback if d <= up_to]
    return timelines


def _raw_rows(conn: Connection, query: Any) -> list[tuple[Any, ...]]:
    """The driver's rows as they come (SQLite dates are ISO text: see _day)."""
    result = conn.execute(query)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _day(value: Any) -> Any:
    """A date column read below SQLAlchemy: SQLite gives its ISO text, PostgreSQL a date."""
    return date.fromisoformat(value[:10]) if isinstance(value, str) else value


def _id_filters(account_ids: Iterable[int] | Select | None) -> Iterable[Any]:
    """What an IN takes, once or per chunk: nothing (every account), a subquery, or id lists."""
    if account_ids is None or isinstance(account_ids, Select):
        yield account_ids
        return
    yield from _chunks(sorted(set(account_ids)))


def _chunks(ids: list[int] | None) -> Iterable[list[int] | None]:
    if ids is None:
        yield None
        return
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def arr_metric_inputs(
    session: Session, account_ids: Iterable[int] | Select | None, start: date, end: date
) -> RetentionInputs:
    """Metric inputs for a set of accounts over [start, end] (both days included), from ARR
    history: the starting ARR (the ARR in effect when ``start`` began), expansion, contraction,
    churned ARR, customers at the start and lost, and new business.

    This is what every retention figure (GRR, NRR, MRR, logo churn) for an account, a book, a
    team or the company over a period is computed from: ``result.grr``, ``result.nrr``,
    ``result.logo_churn``, ``result.mrr_start`` ... ``account_ids`` None means every account; a
    SELECT of ids is read as a subquery.
    """
    return retention_inputs(arr_timelines(session, account_ids, up_to=end), start, end)
