"""The name index of every account, built once per process and patched as accounts change.

Access (``visible_index``) and account resolution both read it. It reads the account table
straight through the driver, so ``pending_flushed``, which every handler that queries below the
ORM calls first, lives here too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from domain.accounts_index import AccountIndex, AccountName
from storage.models import Account

_index_lock = threading.Lock()
# Per database: the newest index, the fingerprint it answers to, and its build lock.
_index_cache: dict[str, tuple[tuple[Any, ...], AccountIndex]] = {}
_build_locks: dict[str, threading.Lock] = {}
# A change touching more accounts than this (or this share of them) rebuilds instead of patching.
_DELTA_MAX_ROWS = 500
_DELTA_MAX_SHARE = 0.05


# Any insert, rename, alias change or delete moves one of these. One statement of three scalar
# subqueries, each answered from an index alone (a plain count/max over the table would make
# SQLite scan it); sent straight to the driver, since it runs on every request that names an
# account and SQLAlchemy's statement machinery would cost ten times the query itself.
_FINGERPRINT_SQL = (
    "SELECT (SELECT count(*) FROM account), (SELECT max(id) FROM account), "
    "(SELECT max(updated_at) FROM account)"
)


def pending_flushed(session: Session) -> None:
    """What an ORM query would do first (autoflush): statements sent below the ORM see pending rows too."""
    if session.autoflush:
        session.flush()


def _fingerprint(session: Session) -> tuple[Any, ...]:
    pending_flushed(session)
    return tuple(_driver_query(session, _FINGERPRINT_SQL, ())[0])


def _decoded(raw: Iterable[Any]) -> list[tuple[int, str, list[str] | None, int | None]]:
    """(id, name, aliases, owner id) rows with the JSON alias list decoded.

    SQLite returns the list as text (PostgreSQL drivers already decode it); most accounts have
    no alias, and "[]" needs no JSON parser.
    """
    return [
        (
            acc_id,
            name,
            None
            if aliases == "[]"
            else json.loads(aliases)
            if isinstance(aliases, str | bytes)
            else aliases,
            owner_id,
        )
        for acc_id, name, aliases, owner_id in raw
    ]


def _name_rows(session: Session) -> list[tuple[int, str, list[str] | None, int | None]]:
    """(id, name, aliases, owner id) of every account, straight from the driver.

    The index is built from all accounts (10,000 in the benchmark portfolio) on a one-shot
    `csm-bot ask`, so this skips SQLAlchemy's per-row processing; the only conversion needed is
    the JSON alias list, which SQLite returns as text (PostgreSQL drivers already decode it).
    """
    acc = Account.__table__
    result = session.connection().execute(
        select(acc.c.id, acc.c.name, acc.c.aliases, acc.c.owner_id).where(acc.c.id.is_not(None))
    )
    try:
        raw = result.cursor.fetchall()
    finally:
        result.close()
    return _decoded(raw)


def _account_names(rows: list[tuple[int, str, list[str] | None, int | None]]) -> list[AccountName]:
    return [AccountName(id=r[0], name=r[1], aliases=tuple(r[2] or ()), owner_id=r[3]) for r in rows]


def _driver_query(session: Session, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """A statement straight to the driver, with its own placeholder style (sqlite ?, psycopg %s)."""
    connection = session.connection()
    style = connection.dialect.paramstyle
    if style not in ("qmark", "numeric"):
        sql = sql.replace("?", "%s")
    cursor = connection.connection.cursor()
    dbapi = connection.dialect.loaded_dbapi
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    except dbapi.Error as exc:
        # As SQLAlchemy would raise it (sqlalchemy.exc.OperationalError...), so that callers
        # and the CLI's one-line explanations ("no tables yet: run csm-bot db upgrade") see it.
        raise DBAPIError.instance(sql, params, exc, dbapi.Error) from exc
    finally:
        cursor.close()


def _changed_rows(
    session: Session, since: tuple[Any, ...]
) -> list[tuple[int, str, list[str] | None, int | None]]:
    """Accounts added (id above the last max id) or changed (updated_at at or after the last max)."""
    _count, max_id, max_updated = since
    # Two index range scans; "id > ? OR updated_at >= ?" would scan the whole table. (UNION ALL:
    # PostgreSQL cannot compare JSON columns to drop duplicates; they are dropped here.)
    raw = _driver_query(
        session,
        "SELECT id, name, aliases, owner_id FROM account WHERE id > ? "
        "UNION ALL SELECT id, name, aliases, owner_id FROM account WHERE updated_at >= ?",
        (max_id or 0, max_updated),
    )
    raw = list({r[0]: r for r in raw}.values())
    return _decoded(raw)


def _patched(
    session: Session, index: AccountIndex, since: tuple[Any, ...], now: tuple[Any, ...]
) -> AccountIndex | None:
    """The index brought up to date with what changed since ``since``; None when a rebuild is cheaper."""
    if since[2] is None or now[0] is None:
        return None
    rows = _changed_rows(session, since)
    if len(rows) > max(_DELTA_MAX_ROWS, _DELTA_MAX_SHARE * (now[0] or 0)):
        return None
    known = {r[0] for r in rows if index.get(r[0]) is not None}
    deleted = len(index) + len(rows) - len(known) - (now[0] or 0)
    removed = _deleted_ids(session, index.sorted_ids(), deleted) if deleted > 0 else []
    return index.apply(_account_names(rows), removed)


def _deleted_ids(session: Session, ids: list[int], deleted: int) -> list[int]:
    """Which of the indexed ``ids`` (sorted) are gone, knowing how many: halve the id ranges whose
    count fell, one primary-key range count each (a few dozen for a handful of deletions)."""
    found: list[int] = []

    def gone_in(lo: int, hi: int) -> int:
        present = _driver_query(
            session, "SELECT count(*) FROM account WHERE id >= ? AND id <= ?", (ids[lo], ids[hi])
        )[0][0]
        return (hi - lo + 1) - present

    def search(lo: int, hi: int, missing: int) -> None:
        if missing <= 0 or lo > hi:
            return
        if missing == hi - lo + 1:
            found.extend(ids[lo : hi + 1])
            return
        mid = (lo + hi) // 2
        left = gone_in(lo, mid)
        search(lo, mid, left)
        search(mid + 1, hi, missing - left)

    if ids:
        search(0, len(ids) - 1, min(deleted, len(ids)))
    return found


def account_index(session: Session) -> AccountIndex:
    """The name index of every account: built once per process, then patched as accounts change.

    A rename, a new account or a deletion patches the index (milliseconds) instead of rebuilding
    it; only a large change (an import of many accounts, a new demo) rebuilds. Concurrent
    requests wait for one build rather than each doing their own.
    """
    url = str(session.get_bind().url)
    now = _fingerprint(session)
    cached = _index_cache.get(url)
    if cached is not None and cached[0] == now:
        return cached[1]
    with _index_lock:
        lock = _build_locks.setdefault(url, threading.Lock())
    with lock:
        cached = _index_cache.get(url)
        if cached is not None and cached[0] == now:
            return cached[1]
        index = _patched(session, cached[1], cached[0], now) if cached is not None else None
        if index is None:
            index = AccountIndex(_account_names(_name_rows(session)))
        _index_cache[url] = (now, index)
    return index


def warm_account_index(session: Session) -> AccountIndex:
    """Build the index and everything it builds on first need, before the first message arrives."""
    return account_index(session).warm()
