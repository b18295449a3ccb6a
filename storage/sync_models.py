"""Table of sync runs: what each pull from another system changed, refused, or why it failed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field

from storage.models import Table, utcnow


class SyncRun(Table, table=True):
    """One run of one source: `csm-bot sync run` or the scheduled job.

    ``counts`` holds per kind {rows, inserted, updated, unchanged, refused}; ``status`` is ok
    or failed (``error`` says why: unreachable, refused login, rate limited for too long).
    """

    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_source_started", "source", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    status: str = "ok"
    dry_run: bool = False
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    refused: int = 0
    error: str | None = None
