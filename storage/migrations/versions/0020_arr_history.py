"""ARR history (one row per change of an account's ARR, backfilled); the forecast's range and status

Revision ID: 0020_arr_history
Revises: 0010_people_sync
Create Date: 2026-11-27

The backfill rebuilds each account's ARR history from what the database already knows: the ARR
from the start date (the first closed renewal's amount when there is one, as that is what ran
until it renewed, else today's ARR), every closed renewal on the day it closed (renewed amount,
or 0 when churned), the churn date, and today's ARR when it differs from where that leaves it.
It is self-contained (no application imports), so it keeps working as the code moves on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0020_arr_history"
down_revision = "0010_people_sync"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arr_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("arr", sa.Float(), nullable=False),
        sa.Column("previous_arr", sa.Float(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("cause", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("renewal_id", sa.Integer(), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["renewal_id"], ["renewal.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "day", name="uq_arr_change_day"),
    )
    with op.batch_alter_table("arr_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_arr_change_account_id"), ["account_id"], unique=False)
    with op.batch_alter_table("health_snapshot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("forecast_red_earliest", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("forecast_red_latest", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("forecast_status", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("health_snapshot", schema=None) as batch_op:
        batch_op.drop_column("forecast_status")
        batch_op.drop_column("forecast_red_latest")
        batch_op.drop_column("forecast_red_earliest")
    with op.batch_alter_table("arr_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_arr_change_account_id"))
    op.drop_table("arr_change")


# ---------------------------------------------------------------------------------------------
# backfill

_account = sa.table(
    "account",
    sa.column("id", sa.Integer),
    sa.column("arr", sa.Float),
    sa.column("start_date", sa.Date),
    sa.column("churned_on", sa.Date),
    sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime),
)
_renewal = sa.table(
    "renewal",
    sa.column("id", sa.Integer),
    sa.column("account_id", sa.Integer),
    sa.column("renewal_date", sa.Date),
    sa.column("closed_on", sa.Date),
    sa.column("arr", sa.Float),
    sa.column("renewed_arr", sa.Float),
    sa.column("status", sa.String),
)
_arr_change = sa.table(
    "arr_change",
    sa.column("account_id", sa.Integer),
    sa.column("day", sa.Date),
    sa.column("arr", sa.Float),
    sa.column("previous_arr", sa.Float),
    sa.column("kind", sa.String),
    sa.column("cause", sa.String),
    sa.column("source", sa.String),
    sa.column("renewal_id", sa.Integer),
    sa.column("note", sa.String),
    sa.column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime),
)


def _kind(previous: float, arr: float) -> str:
    if arr <= 0:
        return "churn"
    if previous <= 0:
        return "new"
    return "expansion" if arr > previous else "contraction"


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


def _backfill(conn: sa.engine.Connection) -> None:
    now = datetime.now(UTC)
    today = now.date()
    closed: dict[int, list[tuple[date, int, float, float | None, str]]] = {}
    for rid, aid, renewal_date, closed_on, arr, renewed_arr, status in conn.execute(
        sa.select(
            _renewal.c.id,
            _renewal.c.account_id,
            _renewal.c.renewal_date,
            _renewal.c.closed_on,
            _renewal.c.arr,
            _renewal.c.renewed_arr,
            _renewal.c.status,
        ).where(_renewal.c.status.in_(("renewed", "churned")))
    ):
        day = _as_date(closed_on) or _as_date(renewal_date)
        closed.setdefault(aid, []).append((day, rid, float(arr or 0.0), renewed_arr, status))
    rows: list[dict[str, Any]] = []
    for aid, arr, start, churned_on, created_at in conn.execute(
        sa.select(
            _account.c.id,
            _account.c.arr,
            _account.c.start_date,
            _account.c.churned_on,
            _account.c.created_at,
        ).order_by(_account.c.id)
    ):
        arr = float(arr or 0.0)
        churned_on = _as_date(churned_on)
        renewals = sorted(closed.get(aid, []))
        start_day = _as_date(start) or _as_date(created_at) or today
        if renewals:
            start_day = min(start_day, renewals[0][0])
        initial = renewals[0][2] if renewals and renewals[0][2] > 0 else arr
        events: list[tuple[date, float, str, int | None]] = []
        if initial > 0:
            events.append((start_day, initial, "start", None))
        for day, rid, old, renewed_arr, status in renewals:
            new = 0.0 if status == "churned" else float(renewed_arr if renewed_arr is not None else old)
            events.append((day, new, "churn" if status == "churned" else "renewal", rid))
        if churned_on is not None:
            events.append((churned_on, 0.0, "churn", None))
        elif arr > 0:
            events.append((max(today, max((e[0] for e in events), default=today)), arr, "update", None))
        by_day: dict[date, tuple[float, str, int | None]] = {}
        for day, value, cause, rid in sorted(events, key=lambda e: e[0]):
            by_day[day] = (value, cause, rid)  # the last change of a day is the day's ARR
        previous = 0.0
        for day in sorted(by_day):
            value, cause, rid = by_day[day]
            if value == previous:
                continue
            rows.append(
                {
                    "account_id": aid,
                    "day": day,
                    "arr": value,
                    "previous_arr": previous,
                    "kind": _kind(previous, value),
                    "cause": cause,
                    "source": "backfill",
                    "renewal_id": rid,
                    "note": None,
                    "recorded_at": now,
                }
            )
            previous = value
    for start in range(0, len(rows), 1000):
        conn.execute(sa.insert(_arr_change), rows[start : start + 1000])
