"""Fast bulk writes shared by the demo generator, the CSV import and health recomputation."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC
from itertools import islice
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Table, TypeDecorator, inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.all_models  # noqa: F401  (registers every table on SQLModel.metadata)

CHUNK = 10_000


def table(name: str) -> Table:
    """The Core table for a model's table name (so bulk code never builds ORM objects)."""
    return SQLModel.metadata.tables[name]


def is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def chunks(rows: Iterable[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    """Consecutive lists of at most ``size`` items, so huge inserts never sit in memory at once."""
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def insert_dicts(conn: Connection, tbl: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Core executemany in chunks; column defaults and type processing come from the table."""
    count = 0
    for batch in chunks(rows):
        conn.execute(tbl.insert(), batch)
        count += len(batch)
    return count


def _sqlite_datetime(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if value.utcoffset() is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _converter(col_type: Any, sqlite: bool) -> Any:
    """How to turn a Python value into what the DBAPI should get for a column, or None if as-is."""
    base = col_type.impl if isinstance(col_type, TypeDecorator) else col_type
    if isinstance(base, JSON):
        return lambda v: None if v is None else json.dumps(v)
    # sqlite3's default date adapters are deprecated (3.12) and write other text forms; write
    # exactly what SQLAlchemy writes, so reads through the models see the same values.
    if sqlite and isinstance(base, DateTime):
        return _sqlite_datetime
    if sqlite and isinstance(base, Date):
        return lambda v: v if v is None or isinstance(v, str) else v.isoformat()
    return None


def insert_tuples(
    conn: Connection, tbl: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert plain tuples straight through the DBAPI ``executemany`` (the hot path for readings).

    SQLAlchemy's per-row parameter processing costs more than the database itself for millions of
    rows, so only the date and JSON columns are converted here, to the forms SQLAlchemy writes.
    """
    sqlite = is_sqlite(conn)
    marker = "?" if sqlite else "%s"
    sql = (
        f"INSERT INTO {tbl.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    convert = [(i, f) for i, c in enumerate(columns) if (f := _converter(tbl.c[c].type, sqlite))]
    count = 0
    for batch in chunks(rows):
        if convert:
            converted = []
            for row in batch:
                values = list(row)
                for i, f in convert:
                    values[i] = f(values[i])
                converted.append(tuple(values))
            batch = converted
        conn.exec_driver_sql(sql, batch)
        count += len(batch)
    return count


def _domain_tables() -> set[str]:
    """Tables defined in storage.models: the customer-success data a demo replaces."""
    from storage import models

    return {
        obj.__table__.name
        for obj in vars(models).values()
        if isinstance(obj, type)
        and getattr(obj, "__module__", "") == models.__name__
        and hasattr(obj, "__table__")
    }


def wipe_all(conn: Connection) -> list[str]:
    """Empty every domain table (and any table referencing one), restarting ids from 1.

    Tables unrelated to the domain data (event receipts, leader locks...) are left alone.
    Returns the names of the tables emptied.
    """
    inspector = inspect(conn)
    present = set(inspector.get_table_names())
    domain = _domain_tables() & present
    # Other packages' tables that point at domain rows (an outbox, say) must go too, or the
    # parents could not be deleted.
    for name in sorted(present - domain - {"alembic_version"}):
        if any(fk["referred_table"] in domain for fk in inspector.get_foreign_keys(name)):
            domain.add(name)
    names = sorted(domain)
    if is_sqlite(conn):
        # Checked at commit instead of per statement, so the order of the deletes is free.
        # SQLite hands out ids from 1 again once a table without AUTOINCREMENT is empty.
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        for name in names:
            conn.execute(text(f'DELETE FROM "{name}"'))
    elif names:
        quoted = ", ".join(f'"{n}"' for n in names)
        conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    return names
