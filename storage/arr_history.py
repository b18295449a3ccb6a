"""ARR history: the one place an account's ARR changes are recorded, with the day they took effect.

Every writer (CSV import, the HTTP data API, the demo seed, sync adapters) records changes through
record_arr_changes, so "the ARR at the start of a period" is always answerable: the newest change
dated before the period. The table keeps one row per account and day, every row a real change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from storage.bulk import chunks, insert_dicts, table
from storage.models import ARR_CHANGE_CAUSES, utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArrChangeRequest:
    """From ``day`` on, the account's ARR is ``arr`` (0 = churned), because of ``cause``."""

    account_id: int
    day: date
    arr: float
    cause: str = "update"
    source: str = "import"
    renewal_id: int | None = None
    note: str | None = None


@dataclass
class ArrHistoryReport:
    """What record_arr_changes did."""

    inserted: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    accounts: set[int] = field(default_factory=set)  # accounts whose Account.arr changed


def change_kind(previous: float, arr: float) -> str:
    """new, expansion, contraction, churn or reactivation, from the ARR before and after."""
    if arr <= 0:
        return "churn"
    if previous <= 0:
        return "new"
    return "expansion" if arr > previous else "contraction"


def _load(conn: Connection, account_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    arr = table("arr_change")
    found: dict[int, list[dict[str, Any]]] = {}
    for batch in chunks(sorted(set(account_ids)), 500):
        stmt = select(arr).where(arr.c.account_id.in_(batch)).order_by(arr.c.account_id, arr.c.day)
        for row in conn.execute(stmt).mappings():
            found.setdefault(row["account_id"], []).append(dict(row))
    return found


def _apply(rows: list[dict[str, Any]], req: ArrChangeRequest, stamp: Any) -> str:
    """Apply one request to an account's rows (sorted by day) in memory; what it did."""
    before = [r for r in rows if r["day"] < req.day]
    previous = before[-1]["arr"] if before else 0.0
    same = next((r for r in rows if r["day"] == req.day), None)
    arr = float(req.arr)
    if arr == previous:
        if same is None:
            return "unchanged"
        rows.remove(same)  # the day's change is undone
        result = "removed"
    elif same is not None:
        values = {
            "arr": arr,
            "cause": req.cause,
            "renewal_id": req.renewal_id if req.renewal_id is not None else same["renewal_id"],
        }
        if all(same[k] == v for k, v in values.items()):
            return "unchanged"
        same.update(values, source=req.source, note=req.note, recorded_at=stamp, _dirty=True)
        result = "updated"
    else:
        rows.append(
            {
                "id": None,
                "account_id": req.account_id,
                "day": req.day,
                "arr": arr,
                "previous_arr": previous,
                "kind": change_kind(previous, arr),
                "cause": req.cause,
                "source": req.source,
                "renewal_id": req.renewal_id,
                "note": req.note,
                "recorded_at": stamp,
            }
        )
        rows.sort(key=lambda r: r["day"])
        result = "inserted"
    _chain(rows)
    return result


def _chain(rows: list[dict[str, Any]]) -> None:
    """Re-link previous_arr and kind along the days; drop rows that no longer change anything."""
    previous = 0.0
    n = 0
    while n < len(rows):
        row = rows[n]
        if row["arr"] == previous:
            rows.pop(n)
            continue
        kind = change_kind(previous, row["arr"])
        if row["previous_arr"] != previous or row["kind"] != kind:
            row.update(previous_arr=previous, kind=kind, _dirty=True)
        previous = row["arr"]
        n += 1


def record_arr_changes(
    conn: Connection, changes: Sequence[ArrChangeRequest], *, at: datetime | None = None
) -> ArrHistoryReport:
    """Record ARR changes, in order, and keep Account.arr equal to the newest ARR above zero.

    A change to the ARR already in effect on its day records nothing, so re-running an import or
    a sync is a no-op. A second change on the same day replaces the first; a change dated before
    others re-links the ones after it (and drops any that no longer change anything). A churn
    (ARR 0) leaves Account.arr at the last contract value, which is what was lost. Runs in the
    caller's transaction. ``at`` stamps the rows (default now; the demo pins it).
    """
    report = ArrHistoryReport()
    if not changes:
        return report
    for change in changes:
        if change.cause not in ARR_CHANGE_CAUSES:
            raise ValueError(f"unknown ARR change cause {change.cause!r}")
        if change.arr < 0:
            raise ValueError(f"ARR cannot be negative: {change.arr!r}")
    timelines = _load(conn, (c.account_id for c in changes))
    original = {aid: {r["id"]: dict(r) for r in rows} for aid, rows in timelines.items()}
    stamp = at or utcnow()
    for change in changes:
        rows = timelines.setdefault(change.account_id, [])
        outcome = _apply(rows, change, stamp)
        setattr(report, outcome, getattr(report, outcome) + 1)
    _write(conn, timelines, original, {c.account_id for c in changes}, report, stamp)
    return report


def _write(
    conn: Connection,
    timelines: dict[int, list[dict[str, Any]]],
    original: dict[int, dict[int, dict[str, Any]]],
    touched: set[int],
    report: ArrHistoryReport,
    stamp: datetime,
) -> None:
    arr_tbl, acc = table("arr_change"), table("account")
    columns = ("day", "arr", "previous_arr", "kind", "cause", "source", "renewal_id", "note")
    inserts, deleted = [], []
    for aid in touched:
        rows = timelines.get(aid, [])
        kept = {r["id"] for r in rows if r["id"] is not None}
        deleted.extend(i for i in original.get(aid, {}) if i not in kept)
        for r in rows:
            if r["id"] is None:
                inserts.append({k: v for k, v in r.items() if k not in ("id", "_dirty")})
            elif r.pop("_dirty", False):
                conn.execute(
                    arr_tbl.update()
                    .where(arr_tbl.c.id == r["id"])
                    .values({k: r[k] for k in (*columns, "recorded_at")})
                )
    # Deletes before inserts: a day whose change was undone may get a new one in the same batch.
    for batch in chunks(deleted, 500):
        conn.execute(arr_tbl.delete().where(arr_tbl.c.id.in_(batch)))
    if inserts:
        insert_dicts(conn, arr_tbl, inserts)
    # Account.arr mirrors the newest ARR above zero (a churned account keeps what it was worth).
    current = {}
    for batch in chunks(sorted(touched), 500):
        current.update(conn.execute(select(acc.c.id, acc.c.arr).where(acc.c.id.in_(batch))).all())
    for aid in sorted(touched):
        positive = [r["arr"] for r in timelines.get(aid, []) if r["arr"] > 0]
        if positive and aid in current and current[aid] != positive[-1]:
            conn.execute(
                acc.update().where(acc.c.id == aid).values(arr=positive[-1], updated_at=stamp)
            )
            report.accounts.add(aid)


# ---------------------------------------------------------------------------------------------
# what an import implies


def record_import_arr(
    conn: Connection,
    kind: str,
    account_ids: Iterable[int],
    *,
    source: str,
    today: date | None = None,
    at: datetime | None = None,
) -> ArrHistoryReport:
    """Record the ARR changes an import of ``kind`` implies for the accounts it changed.

    accounts: a new account's ARR from its start date (today when it has none or it lies ahead),
    a changed ARR from today, a churn date as ARR 0 from that day. renewals: a renewed renewal's
    ARR from the day it closed (its renewal date when no close date is given), a churned one as
    ARR 0; its ``arr`` (what was up for renewal) also corrects a start ARR that was only assumed.
    Other kinds change no ARR.
    """
    ids = sorted(set(account_ids))
    if not ids or kind not in ("accounts", "renewals"):
        return ArrHistoryReport()
    day = today or date.today()
    timelines = _load(conn, ids)
    if kind == "accounts":
        requests = _from_accounts(conn, ids, timelines, day, source)
    else:
        requests = _from_renewals(conn, ids, timelines, source)
    return record_arr_changes(conn, requests, at=at)


def record_account_arr(
    conn: Connection,
    account_ids: Iterable[int],
    *,
    source: str,
    today: date | None = None,
    at: datetime | None = None,
) -> ArrHistoryReport:
    """The ARR changes the accounts' records and their closed renewals imply, recorded (what an
    accounts import followed by a renewals import records; the demo seed and syncs use it)."""
    ids = sorted(set(account_ids))
    report = record_import_arr(conn, "accounts", ids, source=source, today=today, at=at)
    more = record_import_arr(conn, "renewals", ids, source=source, today=today, at=at)
    report.inserted += more.inserted
    report.updated += more.updated
    report.removed += more.removed
    report.unchanged += more.unchanged
    report.accounts |= more.accounts
    return report


def _plan(rows: list[dict[str, Any]], req: ArrChangeRequest, out: list[ArrChangeRequest]) -> None:
    """Queue a request and apply it to the in-memory rows, so the next decision sees it."""
    out.append(req)
    _apply(rows, req, None)


def _in_effect(rows: list[dict[str, Any]], day: date, *, before: bool = False) -> dict | None:
    found = None
    for r in rows:
        if r["day"] < day or (not before and r["day"] == day):
            found = r
    return found


def _from_accounts(
    conn: Connection,
    ids: list[int],
    timelines: dict[int, list[dict[str, Any]]],
    today: date,
    source: str,
) -> list[ArrChangeRequest]:
    acc = table("account")
    out: list[ArrChangeRequest] = []
    for batch in chunks(ids, 500):
        stmt = select(acc.c.id, acc.c.arr, acc.c.start_date, acc.c.churned_on).where(
            acc.c.id.in_(batch)
        )
        for aid, arr, start, churned_on in conn.execute(stmt).all():
            rows = [dict(r) for r in timelines.get(aid, [])]
            arr = float(arr or 0.0)
            if not rows:
                if arr > 0:
                    first = start if start is not None and start <= today else today
                    if churned_on is not None and first > churned_on:
                        first = churned_on  # churned before the stated start: data says both
                    _plan(rows, ArrChangeRequest(aid, first, arr, "start", source), out)
            elif churned_on is None and arr > 0:
                now = _in_effect(rows, today)
                if now is None or now["arr"] != arr:
                    _plan(rows, ArrChangeRequest(aid, today, arr, "update", source), out)
            if churned_on is not None:
                then = _in_effect(rows, churned_on)
                if then is not None and then["arr"] > 0:
                    _plan(rows, ArrChangeRequest(aid, churned_on, 0.0, "churn", source), out)
    return out


def _from_renewals(
    conn: Connection,
    ids: list[int],
    timelines: dict[int, list[dict[str, Any]]],
    source: str,
) -> list[ArrChangeRequest]:
    ren, acc = table("renewal"), table("account")
    closed: list[tuple[date, int, int, float, float | None, str]] = []
    starts: dict[int, date | None] = {}
    for batch in chunks(ids, 500):
        starts.update(
            conn.execute(select(acc.c.id, acc.c.start_date).where(acc.c.id.in_(batch))).all()
        )
        stmt = select(
            ren.c.id,
            ren.c.account_id,
            ren.c.renewal_date,
            ren.c.closed_on,
            ren.c.arr,
            ren.c.renewed_arr,
            ren.c.status,
        ).where(ren.c.account_id.in_(batch), ren.c.status.in_(("renewed", "churned")))
        for rid, aid, renewal_date, closed_on, arr, renewed_arr, status in conn.execute(stmt):
            closed.append(
                (closed_on or renewal_date, aid, rid, float(arr or 0.0), renewed_arr, status)
            )
    out: list[ArrChangeRequest] = []
    work = {aid: [dict(r) for r in rows] for aid, rows in timelines.items()}
    for day, aid, rid, arr, renewed_arr, status in sorted(closed, key=lambda c: (c[1], c[0], c[2])):
        rows = work.setdefault(aid, [])
        before = _in_effect(rows, day, before=True)
        if arr > 0 and before is not None and before["cause"] == "start" and before["arr"] != arr:
            # What was up for renewal is evidence of the ARR before it; a start ARR copied from
            # today's account record is only an assumption.
            _plan(rows, ArrChangeRequest(aid, before["day"], arr, "start", source), out)
        elif arr > 0 and not rows:
            # No history yet: the contract ran at the renewed amount from the account's start.
            start = starts.get(aid)
            if start is not None and start < day:
                _plan(rows, ArrChangeRequest(aid, start, arr, "start", source), out)
        if status == "churned":
            new = 0.0
            cause = "churn"
        else:
            new = float(renewed_arr) if renewed_arr is not None else arr
            cause = "renewal"
        if new > 0 or _in_effect(rows, day) is not None:
            _plan(rows, ArrChangeRequest(aid, day, new, cause, source, renewal_id=rid), out)
    return out
