"""The sync use case: pull every configured source, then recompute the health of the accounts it changed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine

from domain.health_model import HealthModels
from storage.sync.config import load_sync_config
from storage.sync.run import SourceReport, sync_sources

logger = logging.getLogger(__name__)

# Health follows the kinds that feed it; renewals and milestones do not.
_HEALTH_KINDS = ("accounts", "readings", "surveys")


@dataclass(frozen=True)
class SyncSummary:
    reports: list[SourceReport]
    recomputed: int

    @property
    def failed(self) -> list[SourceReport]:
        return [r for r in self.reports if not r.ok]

    def lines(self) -> list[str]:
        out = [line for r in self.reports for line in r.lines()]
        if self.recomputed:
            noun = "account" if self.recomputed == 1 else "accounts"
            out.append(f"Health recomputed for {self.recomputed} {noun}.")
        return out


def run_sync(
    engine: Engine,
    config_path: Path | str,
    *,
    models: HealthModels,
    today: date,
    source: str | None = None,
    dry_run: bool = False,
) -> SyncSummary:
    """`csm-bot sync run` and the scheduled sync. Raises SyncConfigError for an unusable file."""
    from handlers.recompute import recompute_health

    config = load_sync_config(config_path)
    reports = sync_sources(engine, config.named(source), dry_run=dry_run, today=today)
    touched = {
        account_id
        for report in reports
        for result in report.imports
        if result.kind in _HEALTH_KINDS
        for account_id in result.account_ids
    }
    recomputed = 0
    if touched and not dry_run:
        recomputed = recompute_health(
            engine, as_of=today, models=models, account_ids=sorted(touched)
        ).accounts
    return SyncSummary(reports, recomputed)
