"""Tables of the scheduler: the delivery outbox, raised alerts with their ack/snooze state, and job runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models import utcnow

DELIVERY_STATUSES = ("pending", "sending", "sent", "failed")
ATTEMPT_IN_FLIGHT = "in_flight"
ATTEMPT_UNKNOWN = "unknown"
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
    # The delivery id written into the message itself (Slack metadata, Teams channelData), so a
    # post whose answer was lost can be found on the platform instead of being sent again.
    uid: str | None = None
    # "in_flight" from just before the HTTP call until its outcome is recorded; "unknown" when
    # the answer was lost (timeout, dropped connection). Either way: look it up before re-sending.
    attempt_state: str | None = None
    first_attempt_at: datetime | None = None
    # Give up after this instant (None: created_at plus the kind's deadline in the settings).
    deadline: datetime | None = None


class DeliveryPause(SQLModel, table=True):
    """A platform workspace whose token or scopes stopped working: its posts wait, nothing fails.

    Set by the first workspace-wide error (invalid_auth, token_revoked, missing_scope...); every
    replica skips the platform while it exists; one replica at a time probes (Slack: auth.test)
    at ``next_probe_at`` and deletes the row when the token works again.
    """

    __tablename__ = "delivery_pause"

    platform: str = Field(primary_key=True)
    workspace: str = Field(primary_key=True)
    reason: str
    since: datetime = Field(default_factory=utcnow)
    next_probe_at: datetime = Field(default_factory=utcnow)
    probes: int = 0


class DeliveryGate(SQLModel, table=True):
    """Shared pacing state of one key (a channel, a Teams thread, a workspace): every replica books
    its send slots through this row (locked while booking) and honours ``blocked_until``
    (a Retry-After the platform announced)."""

    __tablename__ = "delivery_gate"

    key: str = Field(primary_key=True)
    blocked_until: datetime | None = None
    last_at: datetime | None = None


class DeliverySlot(SQLModel, table=True):
    """One booked send on a pacing key: the sliding windows (1/s per Slack channel, 7/1 s … 1800/h
    per Teams thread) are counted over these rows; rows older than the longest window are pruned."""

    __tablename__ = "delivery_slot"
    __table_args__ = (Index("ix_delivery_slot_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str
    at: datetime


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
