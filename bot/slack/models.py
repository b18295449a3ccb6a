"""Tables only the Slack edge needs: the receipts that make retried Events API deliveries run once."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from storage.models import utcnow


class SlackEventReceipt(SQLModel, table=True):
    """One Events API delivery we accepted; the primary key makes a retry's insert fail."""

    __tablename__ = "slack_event_receipt"

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, index=True)
