"""Tables of the scheduler: the delivery outbox, raised alerts with their ack/snooze state, and job runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models import utcnow

DELIVERY_STATUSES = ("pending", "sending", "sent", "failed")
ALERT_STATUSES = ("open", "acknowledged", "snoozed", "suppressed")


class Delivery(SQLModel, table=True):
    """One scheduled post; the unique key (kind, subject, target, period) makes every post happen once.

    A dispatcher claims a pending row (status "sending", claimed_by, lease_until), posts it and marks
    it sent; a claim whose lease ran out (the process died) is taken again by the next dispatcher.
    """

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("kind", "subject", "target", "period", name="uq_delivery_key"),
        Index("ix_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    subject: str
    target: str
    period: str
    platform: str
    template: str
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    text: str = ""
    status: str = Field(default="pending")
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_by: str | None = None
    lease_until: datetime | None = None
    message_id: str | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class Alert(SQLModel, table=True):
    """A risk event the rules found for an account; fired (posted) or suppressed, then acked or snoozed.

    ``event_key`` identifies the event itself (the band change of one day, one survey response, one
    overdue milestone), so the same event is never judged twice.
    """

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("event_key", name="uq_alert_event"),
        Index("ix_alert_account_kind", "account_id", "kind", "fired_at"),
        Index("ix_alert_pending", "delivered_in", "delivery"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    kind: str
    event_key: str
    severity: int = 1
    title: str = ""
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="open")
    suppressed_reason: str | None = None
    fired_at: datetime = Field(default_factory=utcnow)
    acknowledged_by_id: int | None = Field(default=None, foreign_key="csm.id")
    acknowledged_at: datetime | None = None
    snoozed_by_id: int | None = Field(default=None, foreign_key="csm.id")
    snoozed_until: datetime | None = None
    # How a fired alert reaches its owner (domain.notify_policy): its class, "urgent" (at once,
    # batched per hour, in working hours), "digest" (the next daily digest) or "team" (no owner:
    # the risk-channel summary and the unowned-accounts route); and the delivery that carried it
    # ("<kind>:<period>"), so it reaches the owner exactly once.
    category: str | None = None
    delivery: str | None = None
    delivered_in: str | None = None


class JobRun(SQLModel, table=True):
    """A job done for a period (nightly recompute of a day...), so a repeated run skips it."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "period", name="uq_job_run"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str
    period: str
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    detail: str | None = None
