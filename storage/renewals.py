"""One story for renewals: an account's renewal date and ARR keep its next open renewal, and back."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from storage.bulk import chunks, table
from storage.models import utcnow

logger = logging.getLogger(__name__)


def follow_accounts(
    conn: Connection, account_ids: Iterable[int], *, changed: Iterable[int]
) -> tuple[int, int]:
    """Give every live account with a renewal date an open renewal for it; returns (created, updated).

    - No open renewal, and none at all on that date (a decided term is not reopened): one is
      created with the account's date and ARR.
    - An open renewal, and the account's renewal date or ARR is new or changed (``changed``):
      the next open renewal takes the account's date and ARR.
    - Otherwise the renewal is left alone, so re-importing an unchanged accounts file never
      undoes what a renewals import set (its own ARR, likelihood, an opportunity's date).
    """
    changed_ids = set(changed)
    accounts = _accounts(conn, account_ids)
    if not accounts:
        return 0, 0
    renewals = _renewals_of(conn, accounts)
    ren = table("renewal")
    created = updated = 0
    inserts: list[dict[str, Any]] = []
    for account_id, (renewal_date, arr) in sorted(accounts.items()):
        mine = renewals.get(account_id, [])
        open_ = sorted((r for r in mine if r["status"] == "open"), key=lambda r: r["renewal_date"])
        if not open_:
            if any(r["renewal_date"] == renewal_date for r in mine):
                continue
            inserts.append(
                {
                    "account_id": account_id,
                    "external_id": None,
                    "renewal_date": renewal_date,
                    "arr": arr,
                    "likelihood": None,
                    "status": "open",
                    "renewed_arr": None,
                    "closed_on": None,
                }
            )
            created += 1
        elif account_id in changed_ids:
            nxt = open_[0]
            diff = {k: v for k, v in (("renewal_date", renewal_date), ("arr", arr)) if nxt[k] != v}
            if diff:
                conn.execute(ren.update().where(ren.c.id == nxt["id"]).values(**diff))
                updated += 1
    if inserts:
        conn.execute(ren.insert(), inserts)
    if created or updated:
        logger.info(
            "renewals following account renewal dates: %d created, %d updated", created, updated
        )
    return created, updated


def claim_derived(conn: Connection, incoming: Iterable[tuple[str, int, date, str | None]]) -> int:
    """Imported renewals take over the renewals made from account renewal dates.

    ``incoming`` holds (external id, account id, renewal date, status) of renewals not yet in
    the database. An open one, or one on the same date, adopts its account's derived renewal
    (the open renewal without an external id) instead of becoming a second renewal of the same
    term. Returns how many were adopted.
    """
    ren = table("renewal")
    wanted = [i for i in incoming if i[1] is not None]
    if not wanted:
        return 0
    derived: dict[int, list[tuple[int, date]]] = defaultdict(list)
    for batch in chunks(sorted({i[1] for i in wanted}), 500):
        for rid, account_id, renewal_date in conn.execute(
            select(ren.c.id, ren.c.account_id, ren.c.renewal_date)
            .where(
                ren.c.account_id.in_(batch),
                ren.c.external_id.is_(None),
                ren.c.status == "open",
            )
            .order_by(ren.c.renewal_date)
        ):
            derived[account_id].append((rid, renewal_date))
    adopted = 0
    for external_id, account_id, renewal_date, status in wanted:
        candidates = derived.get(account_id)
        if not candidates:
            continue
        for k, (rid, day) in enumerate(candidates):
            if status in (None, "open") or day == renewal_date:
                conn.execute(ren.update().where(ren.c.id == rid).values(external_id=external_id))
                del candidates[k]
                adopted += 1
                break
    return adopted


def follow_renewals(conn: Connection, account_ids: Iterable[int]) -> int:
    """An account's renewal date becomes its earliest open renewal's; returns accounts changed.

    So "my accounts" ("renews 2027-03-31") and "when does X renew" always agree, whichever of
    the two files (or sync objects) moved the date.
    """
    acc, ren = table("account"), table("renewal")
    ids = sorted(set(account_ids))
    earliest: dict[int, date] = {}
    current: dict[int, date | None] = {}
    for batch in chunks(ids, 500):
        for account_id, renewal_date in conn.execute(
            select(ren.c.account_id, ren.c.renewal_date).where(
                ren.c.account_id.in_(batch), ren.c.status == "open"
            )
        ):
            if account_id not in earliest or renewal_date < earliest[account_id]:
                earliest[account_id] = renewal_date
        current.update(
            conn.execute(
                select(acc.c.id, acc.c.renewal_date).where(
                    acc.c.id.in_(batch), acc.c.churned_on.is_(None)
                )
            ).all()
        )
    changed = 0
    stamp = utcnow()
    for account_id, renewal_date in sorted(earliest.items()):
        if account_id in current and current[account_id] != renewal_date:
            conn.execute(
                acc.update()
                .where(acc.c.id == account_id)
                .values(renewal_date=renewal_date, updated_at=stamp)
            )
            changed += 1
    return changed


def _accounts(conn: Connection, account_ids: Iterable[int]) -> dict[int, tuple[date, float]]:
    """(renewal date, ARR) of the live accounts among ``account_ids`` that have a renewal date."""
    acc = table("account")
    out: dict[int, tuple[date, float]] = {}
    for batch in chunks(sorted(set(account_ids)), 500):
        for account_id, renewal_date, arr in conn.execute(
            select(acc.c.id, acc.c.renewal_date, acc.c.arr).where(
                acc.c.id.in_(batch),
                acc.c.renewal_date.is_not(None),
                acc.c.churned_on.is_(None),
            )
        ):
            out[account_id] = (renewal_date, arr)
    return out


def _renewals_of(conn: Connection, accounts: dict[int, Any]) -> dict[int, list[dict[str, Any]]]:
    ren = table("renewal")
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for batch in chunks(sorted(accounts), 500):
        for rec in conn.execute(
            select(ren.c.id, ren.c.account_id, ren.c.renewal_date, ren.c.arr, ren.c.status).where(
                ren.c.account_id.in_(batch)
            )
        ).mappings():
            out[rec["account_id"]].append(dict(rec))
    return out
