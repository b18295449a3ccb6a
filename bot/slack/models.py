"""Tables only the Slack edge needs: the receipts that make retried Events API deliveries run once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel


def _now() -> datetime:
    # Aware: sqlmodel's UTCDateTime column type refuses naive datetimes.
    return datetime.now(UTC)


class SlackEventReceipt(SQLModel, table=True):
    """One Events API delivery we accepted; the primary key makes a retry's insert fail."""

    __tablename__ = "slack_event_receipt"

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(default_factory=_now, index=True)
