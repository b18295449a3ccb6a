"""The demo portfolio as a use case: write it (storage.demo), then compute its health history."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from sqlalchemy.engine import Engine

from domain.health_model import HealthModels, load_health_models
from handlers.recompute import backfill_snapshots
from storage.demo import DemoSummary, write_demo


def seed_demo(
    engine: Engine,
    *,
    today: date,
    accounts: int = 60,
    days: int = 365,
    seed: int = 7,
    models: HealthModels | None = None,
    snapshot_days: int = 45,
    scenario: str | None = None,
) -> DemoSummary:
    """Wipe the database, write a deterministic demo portfolio, then backfill health snapshots
    for the last ``snapshot_days`` days (at most as many as there are days of readings), so a
    fresh demo has trends."""
    models = models or load_health_models(None)
    summary = write_demo(
        engine,
        today=today,
        accounts=accounts,
        days=days,
        seed=seed,
        models=models,
        scenario=scenario,
    )
    span = min(snapshot_days, days)
    if span <= 0:
        return summary
    snapshots = backfill_snapshots(
        engine, start=today - timedelta(days=span - 1), end=today, models=models
    )
    return dataclasses.replace(summary, snapshots=snapshots)
