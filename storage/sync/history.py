"""Sync runs as the sync_run table keeps them: record one, and the last of each source."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from storage.bulk import table
from storage.models import utcnow


def record_run(
    engine: Engine,
    *,
    source: str,
    started_at: datetime,
    status: str,
    dry_run: bool,
    counts: dict[str, Any],
    refused: int,
    error: str | None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            table("sync_run")
            .insert()
            .values(
                source=source,
                started_at=started_at,
                finished_at=utcnow(),
                status=status,
                dry_run=dry_run,
                counts=counts,
                refused=refused,
                error=error,
            )
        )


def last_runs(engine: Engine) -> dict[str, dict[str, Any]]:
    """The newest real (not dry) run of each source, by source name."""
    runs = table("sync_run")
    newest = (
        select(runs.c.source, func.max(runs.c.id).label("id"))
        .where(runs.c.dry_run.is_(False))
        .group_by(runs.c.source)
        .subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(select(runs).join(newest, newest.c.id == runs.c.id)).mappings().all()
    return {row["source"]: dict(row) for row in rows}
