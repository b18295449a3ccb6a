"""The scheduler runs the sync: a stable job id, a top-level job function, on the leader."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from bot.container import Container
from bot.scheduling import start_scheduler
from scheduler import jobs
from scheduler.config import SchedulerConfig
from scheduler.notifier import RecordingNotifier
from tests.sync.conftest import rows


def warehouse(tmp_path: Path) -> Path:
    """A SQLite file standing in for a read replica, and the sync file that reads it."""
    url = f"sqlite:///{tmp_path / 'replica.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE customers (id text, name text, owner text, ends date)"))
        conn.execute(
            text(
                "INSERT INTO customers VALUES ('C-1', 'Northwind', 'dana@example.com', '2027-01-31'),"
                " ('C-2', 'Contoso', 'marco@example.com', NULL)"
            )
        )
    engine.dispose()
    path = tmp_path / "sync.yml"
    path.write_text(
        "sources:\n"
        "  - name: replica\n"
        "    type: sql\n"
        f"    url: {url}\n"
        "    queries:\n"
        "      accounts: SELECT id AS external_id, name, owner AS owner_email, ends AS renewal_date FROM customers\n"
    )
    return path


def test_serve_schedules_the_sync_and_the_job_pulls_the_sources(team: Container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    container = Container(
        settings=team.settings.model_copy(
            update={"sync_config": warehouse(tmp_path), "sync_interval_minutes": 30}
        )
    )
    handle = start_scheduler(
        container,
        config=SchedulerConfig(platforms=("console",)),
        notifiers={"console": RecordingNotifier()},
    )
    try:
        sync_job = handle.scheduler.get_job("csm-sync")
        assert sync_job is not None
        assert sync_job.func_ref == "scheduler.jobs:sync_sources"
        assert sync_job.args == (handle.key,)
        assert sync_job.trigger.interval.total_seconds() == 30 * 60
        jobs.sync_sources(handle.key)
    finally:
        handle.shutdown()
    assert rows(
        team, "SELECT external_id, name, renewal_date FROM account ORDER BY external_id"
    ) == [
        ("C-1", "Northwind", "2027-01-31"),
        ("C-2", "Contoso", None),
    ]
    assert rows(team, "SELECT source, status, dry_run FROM sync_run") == [("replica", "ok", 0)]


def test_without_a_sync_file_nothing_is_scheduled(team: Container) -> None:
    handle = start_scheduler(
        team,
        config=SchedulerConfig(platforms=("console",)),
        notifiers={"console": RecordingNotifier()},
    )
    try:
        assert handle.scheduler.get_job("csm-sync") is None
    finally:
        handle.shutdown()
