"""Tables the chat platforms need: Slack event receipts (retries run once) and Teams conversation references."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from storage.models import utcnow


class SlackEventReceipt(SQLModel, table=True):
    """One Events API delivery we accepted; the primary key makes a retry's insert fail."""

    __tablename__ = "slack_event_receipt"

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, index=True)


class TeamsConversation(SQLModel, table=True):
    """A Teams conversation the bot has been in, kept so it can post there later (proactive sends).

    Channel threads are stored once per channel (``conversation_id`` without ``;messageid=``), so a
    proactive post starts a new channel post and a thread reply can still be derived from it.
    """

    __tablename__ = "teams_conversation"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(unique=True, index=True)
    conversation_type: str = Field(default="personal")  # personal | channel | groupChat
    tenant_id: str | None = None
    service_url: str
    bot_id: str | None = None
    team_id: str | None = None
    # Personal chats: the user on the other side, so "csm:<id>" targets find their chat.
    user_id: str | None = None
    aad_object_id: str | None = None
    csm_id: int | None = Field(default=None, foreign_key="csm.id", index=True)
    reference: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # False once the bot was removed or uninstalled there: sends would fail, so they are refused.
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class TeamsActivityReceipt(SQLModel, table=True):
    """One Teams activity we accepted; the primary key makes a redelivery's insert fail.

    ``activity_key`` is a digest of the conversation id and the activity id (activity ids are
    unique within a conversation).
    """

    __tablename__ = "teams_activity_receipt"

    activity_key: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, index=True)
