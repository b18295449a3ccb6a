"""The delivery outbox: every scheduled post is a row keyed (kind, subject, target, period), inserted once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from handlers.reply import Reply
from scheduler.models import Delivery, utcnow

KEY_COLUMNS = ("kind", "subject", "target", "period")
# Rows per INSERT statement: big enough for a 10k-account day, small enough for SQLite's variable cap.
_CHUNK = 500

# Admin reports: they are about other deliveries, so re-sending an old one is not what a retry means.
FAILED_REPORT_KIND = "delivery_failed"
PAUSED_REPORT_KIND = "delivery_paused"
REPORT_KINDS = frozenset({FAILED_REPORT_KIND, PAUSED_REPORT_KIND})

# How long a post is still worth making after it was queued. A digest is useless tomorrow; a
# renewal reminder is not. Past its deadline a row fails as "expired" (and is reported).
DEFAULT_DEADLINES: dict[str, timedelta] = {
    "daily_digest": timedelta(hours=12),
    "manager_digest": timedelta(days=1),
    "risk_alert": timedelta(days=3),
    "renewal_reminder": timedelta(days=5),
    "qbr_prep": timedelta(days=2),
    # An hour's urgent alerts for one CSM, and the risk channel's summary of a run: still worth
    # reading the same day, not the next.
    "urgent_alerts": timedelta(hours=12),
    "risk_summary": timedelta(hours=12),
    FAILED_REPORT_KIND: timedelta(days=3),
    PAUSED_REPORT_KIND: timedelta(days=3),
}
DEFAULT_DEADLINE = timedelta(days=1)


@dataclass(frozen=True)
class OutboxItem:
    """One post to make: what (reply), where (platform, target) and its once-only key."""

    kind: str
    subject: str
    target: str
    period: str
    platform: str
    reply: Reply

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.subject, self.target, self.period)


def _insert(session: Session):  # type: ignore[no-untyped-def]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert(Delivery)
    if dialect == "sqlite":
        return sqlite_insert(Delivery)
    return insert(Delivery)


def enqueue(
    session: Session,
    items: Iterable[OutboxItem],
    *,
    now: datetime | None = None,
    due: datetime | None = None,
) -> int:
    """Insert the items that are not in the outbox yet; returns how many were new.

    ON CONFLICT DO NOTHING on the unique key makes this safe to repeat and safe under two
    concurrent leaders: whichever commits first owns the row, the other inserts nothing.
    ``now`` is the business instant the row is queued for (a scheduler run's ``at``); ``due``
    when it may first be sent (default: then). The row's deadline starts when it falls due on
    the dispatcher's clock. Each row gets a fresh delivery id (``uid``) that the notifiers write
    into the message.
    """
    now = now or utcnow()
    rows = [
        {
            "uid": uuid.uuid4().hex,
            "kind": i.kind,
            "subject": i.subject,
            "target": i.target,
            "period": i.period,
            "platform": i.platform,
            "template": i.reply.template,
            "context": i.reply.context,
            "text": i.reply.text,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": due or now,
            "created_at": now,
            "updated_at": now,
        }
        for i in _dedupe(items)
    ]
    if not rows:
        return 0
    # One cached statement run "executemany"-style: SQLAlchemy batches it into multi-row
    # INSERT ... RETURNING (insertmanyvalues), returning only the rows that were new.
    stmt = (
        _insert(session)
        .on_conflict_do_nothing(index_elements=list(KEY_COLUMNS))
        .returning(Delivery.id)
    )
    return len(session.execute(stmt, rows).all())


def _dedupe(items: Iterable[OutboxItem]) -> list[OutboxItem]:
    # One statement may not carry the same key twice (PostgreSQL refuses to touch a row twice).
    seen: dict[tuple[str, str, str, str], OutboxItem] = {}
    for item in items:
        seen.setdefault(item.key, item)
    return list(seen.values())


def existing_keys(
    session: Session,
    kind: str,
    periods: Sequence[str] | None = None,
    subjects: Sequence[str] | None = None,
) -> set[tuple[str, str, str, str]]:
    """Keys already in the outbox for a kind (lets jobs skip building replies that would be dropped)."""
    stmt = select(Delivery.kind, Delivery.subject, Delivery.target, Delivery.period).where(
        Delivery.kind == kind
    )
    if periods is not None:
        stmt = stmt.where(Delivery.period.in_(list(periods)))
    if subjects is not None:
        keys: set[tuple[str, str, str, str]] = set()
        wanted = sorted(set(subjects))
        for start in range(0, len(wanted), _CHUNK):
            chunk = stmt.where(Delivery.subject.in_(wanted[start : start + _CHUNK]))
            keys |= {tuple(r) for r in session.execute(chunk).all()}  # type: ignore[misc]
        return keys
    return {tuple(r) for r in session.execute(stmt).all()}  # type: ignore[misc]


def list_deliveries(
    session: Session, *, status: str | None = None, limit: int = 200
) -> list[Delivery]:
    stmt = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(Delivery.status == status)
    return list(session.execute(stmt).scalars())


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    return {status: n for status, n in rows}


def requeue_failed(
    session: Session,
    *,
    kind: str | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
    deadlines: dict[str, timedelta] | None = None,
) -> int:
    """Failed rows back to pending, due now, with a fresh deadline; returns how many.

    Admin reports are left alone unless ``kind`` names them. A row whose last answer was lost
    keeps that state, so it is still looked up before it is posted again.
    """
    now = now or utcnow()
    ttl = {**DEFAULT_DEADLINES, **(deadlines or {})}
    stmt = select(Delivery.id, Delivery.kind).where(Delivery.status == "failed")
    if kind:
        stmt = stmt.where(Delivery.kind == kind)
    else:
        stmt = stmt.where(Delivery.kind.notin_(sorted(REPORT_KINDS)))  # type: ignore[attr-defined]
    if since is not None:
        stmt = stmt.where(Delivery.updated_at >= since)  # type: ignore[operator]
    rows = session.execute(stmt).all()
    by_kind: dict[str, list[int]] = {}
    for row_id, row_kind in rows:
        by_kind.setdefault(row_kind, []).append(row_id)
    for row_kind, ids in by_kind.items():
        for start in range(0, len(ids), _CHUNK):
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids[start : start + _CHUNK]))  # type: ignore[union-attr]
                .values(
                    status="pending",
                    next_attempt_at=now,
                    deadline=now + ttl.get(row_kind, DEFAULT_DEADLINE),
                    error=None,
                    claimed_by=None,
                    lease_until=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
    return len(rows)
