"""Retention metric inputs (NRR, GRR, MRR, logo churn) for a set of accounts over a window, from
ARR history: the one place handlers read "what each account was worth when the period began"."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlmodel import Session, col, select

from domain.retention import ArrTimeline, RetentionInputs, retention_inputs
from storage.models import Account, ArrChange

_CHUNK = 900  # below SQLite's bound-parameter limit


def arr_timelines(
    session: Session, account_ids: Iterable[int] | None, *, up_to: date
) -> dict[int, ArrTimeline]:
    """Each account's ARR history up to ``up_to``: [(day the ARR took effect, ARR)], by day.

    ``account_ids`` None means every account. An account with no recorded change at all (data
    written before ARR history existed, or by a writer that bypassed storage.arr_history) has had
    its current ARR since its start date, and 0 from its churn date.
    """
    ids = None if account_ids is None else sorted(set(account_ids))
    accounts: list[tuple[int, float, date | None, date | None]] = []
    for chunk in _chunks(ids):
        query = select(Account.id, Account.arr, Account.start_date, Account.churned_on)
        if chunk is not None:
            query = query.where(col(Account.id).in_(chunk))
        accounts.extend((a, arr, start, churned) for a, arr, start, churned in session.exec(query))
    timelines: dict[int, list[tuple[date, float]]] = {a: [] for a, *_ in accounts}
    recorded: set[int] = set()
    for chunk in _chunks(ids):
        # Every change (a few per account), so an account whose history starts later is told
        # apart from one without any history.
        query = select(ArrChange.account_id, ArrChange.day, ArrChange.arr).order_by(
            col(ArrChange.account_id), col(ArrChange.day)
        )
        if chunk is not None:
            query = query.where(col(ArrChange.account_id).in_(chunk))
        for account_id, day, arr in session.exec(query):
            recorded.add(account_id)
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


def _chunks(ids: list[int] | None) -> Iterable[list[int] | None]:
    if ids is None:
        yield None
        return
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def arr_metric_inputs(
    session: Session, account_ids: Iterable[int] | None, start: date, end: date
) -> RetentionInputs:
    """Metric inputs for a set of accounts over [start, end] (both days included), from ARR
    history: the starting ARR (the ARR in effect when ``start`` began), expansion, contraction,
    churned ARR, customers at the start and lost, and new business.

    This is what every retention figure (GRR, NRR, MRR, logo churn) for an account, a book, a
    team or the company over a period is computed from: ``result.grr``, ``result.nrr``,
    ``result.logo_churn``, ``result.mrr_start`` ... ``account_ids`` None means every account.
    """
    return retention_inputs(arr_timelines(session, account_ids, up_to=end), start, end)
