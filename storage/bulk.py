"""Fast bulk writes shared by the demo generator, the CSV import and health recomputation."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC
from itertools import islice
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    Table,
    TypeDecorator,
    inspect,
    text,
)
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
    if conn.dialect.name == "postgresql":
        return _copy_tuples(conn, tbl, columns, rows)
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


def _copy_tuples(
    conn: Connection, tbl: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """PostgreSQL's COPY FROM STDIN: one stream instead of a statement per row (~10x faster).

    psycopg adapts dates and numbers itself; JSON columns are written as their text.
    """
    convert = [(i, f) for i, c in enumerate(columns) if (f := _converter(tbl.c[c].type, False))]
    sql = f"COPY {tbl.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    types = [_pg_type(tbl.c[c].type) for c in columns]
    count = 0
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(sql) as copy:
            copy.set_types(types)
            for row in rows:
                if convert:
                    values = list(row)
                    for i, f in convert:
                        values[i] = f(values[i])
                    row = values
                copy.write_row(row)
                count += 1
    finally:
        cursor.close()
    return count


def _pg_type(col_type: Any) -> str:
    """The PostgreSQL type name binary COPY must be told for a column."""
    base = col_type.impl if isinstance(col_type, TypeDecorator) else col_type
    if isinstance(base, JSON):
        return "json"
    if isinstance(base, DateTime):
        return "timestamptz" if getattr(base, "timezone", False) else "timestamp"
    if isinstance(base, Date):
        return "date"
    if isinstance(base, Integer):
        return "int8" if isinstance(base, BigInteger) else "int4"
    if isinstance(base, Float):
        return "float8"
    if isinstance(base, Boolean):
        return "bool"
    return "text"


@contextmanager
def indexes_built_after(conn: Connection, tbl: Table) -> Iterator[None]:
    """On PostgreSQL, load a big table with its secondary indexes and foreign keys dropped, then
    build them back in one pass each (PostgreSQL's own advice for populating a database).

    Everything happens in the caller's transaction, so a failure leaves the schema as it was.
    Elsewhere (SQLite) this does nothing.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    indexes = conn.execute(
        text(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
            " WHERE t.relname = :t AND NOT x.indisprimary"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)"
        ),
        {"t": tbl.name},
    ).all()
    constraints = conn.execute(
        text(
            "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " JOIN pg_class t ON t.oid = c.conrelid"
            " WHERE t.relname = :t AND c.contype IN ('f', 'u') ORDER BY c.contype DESC"
        ),
        {"t": tbl.name},
    ).all()
    for name, _ in constraints:
        conn.execute(text(f'ALTER TABLE "{tbl.name}" DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    yield
    for name, definition in reversed(constraints):
        conn.execute(text(f'ALTER TABLE "{tbl.name}" ADD CONSTRAINT "{name}" {definition}'))
    for _, definition in indexes:
        conn.execute(text(definition))


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
