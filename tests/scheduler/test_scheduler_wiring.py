"""Wiring: the APScheduler jobs of `serve`, recompute after an import, and what the CLI prints."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest
from sched_factories import account, csm
from sqlmodel import select

from bot.scheduling import run_once_command
from scheduler import jobs
from scheduler.cli_support import outbox_listing, parse_instant
from scheduler.config import SchedulerConfig, load_config
from scheduler.notifier import RecordingNotifier
from scheduler.runner import recompute_after_import, start_background
from storage.models import HealthSnapshot


def test_serve_runs_stable_importable_jobs_and_shuts_down(small_container) -> None:  # type: ignore[no-untyped-def]
    rec = RecordingNotifier()
    handle = start_background(
        small_container, config=SchedulerConfig(platforms=("console",)), notifiers={"console": rec}
    )
    try:
        found = {j.id: j.func_ref for j in handle.scheduler.get_jobs()}
        assert found == {
            "csm-scheduler-tick": "scheduler.jobs:tick",
            "csm-outbox-dispatch": "scheduler.jobs:dispatch",
            "csm-health-recompute": "scheduler.jobs:nightly_recompute",
        }
        # Job arguments are primitives (the runtime key), so a persistent job store could keep them.
        assert all(j.args == (handle.key,) for j in handle.scheduler.get_jobs())
        jobs.tick(handle.key)
        jobs.dispatch(handle.key)
        with small_container.session() as s:
            a = account(s, csm(s))
            ids = [a.id]
        assert recompute_after_import(small_container, ids, as_of=date(2026, 11, 23)) == 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with small_container.session() as s:
                if s.exec(select(HealthSnapshot)).first() is not None:
                    break
            time.sleep(0.05)
        with small_container.session() as s:
            snap = s.exec(select(HealthSnapshot)).one()
        assert (snap.account_id, snap.day) == (ids[0], date(2026, 11, 23))
    finally:
        handle.shutdown()
    assert not handle.scheduler.running


def test_recompute_after_import_runs_inline_without_a_scheduler(small_container) -> None:  # type: ignore[no-untyped-def]
    with small_container.session() as s:
        ids = [account(s, None).id, account(s, None).id]
    assert recompute_after_import(small_container, ids, as_of=date(2026, 11, 23)) == 2
    assert recompute_after_import(small_container, []) == 0


def test_cli_run_once_and_outbox_listing(demo_container) -> None:  # type: ignore[no-untyped-def]
    # The demo is pinned to 2026-11-23; 09:00 may still be ahead of its clock today.
    summary = run_once_command(demo_container, "2026-11-23T09:00:00Z", backfill=True)
    assert "queued:" in summary and "risk_summary" in summary and "failed 0" in summary
    again = run_once_command(demo_container, "2026-11-23T09:00:00Z", backfill=True)
    assert "queued: nothing" in again and "sent 0" in again
    listing = outbox_listing(demo_container.engine)
    assert listing.splitlines()[0].startswith("outbox: ") and " sent" in listing
    assert "risk_summary" in listing
    assert "(no deliveries with status failed)" in outbox_listing(demo_container.engine, "failed")
    with pytest.raises(ValueError):
        outbox_listing(demo_container.engine, "lost")


def test_instants_and_settings_parse() -> None:
    assert parse_instant("2026-11-24T08:30") == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    assert parse_instant("2026-11-24T08:30:00+01:00") == datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    assert parse_instant("2026-11-24T08:30:00Z").tzinfo is not None
    with pytest.raises(ValueError):
        parse_instant("tomorrow")
    from scheduler.config import SchedulerSettings

    cfg = load_config(
        slack_enabled=True,
        env=SchedulerSettings(
            renewal_offsets="30,7,90",
            route_risk_alert="csm_dm,risk_channel",
            risk_channel_slack="C-RISK",
            drop_points=15,
        ),
    )
    assert cfg.platforms == ("slack",)
    assert cfg.renewal_offsets == (90, 30, 7)
    assert cfg.routes["risk_alert"] == ("csm_dm", "risk_channel")
    assert cfg.risk_channel == {"slack": "C-RISK"} and cfg.thresholds.drop_points == 15
    assert load_config().platforms == ("console",)
    with pytest.raises(ValueError):
        load_config(env=SchedulerSettings(route_qbr_prep="somewhere"))
    # The digest's knobs: urgent messages off (all waits for the digest), a longer batch gap.
    quiet = load_config(
        env=SchedulerSettings(
            route_urgent_alerts="none", urgent_batch_minutes=90, digest_qbr_packs=0
        )
    )
    assert quiet.routes["urgent_alerts"] == () and quiet.routes["risk_summary"] == ("risk_channel",)
    assert (quiet.urgent_batch_minutes, quiet.digest_qbr_packs) == (90, 0)
    assert load_config().routes["renewal_reminder"] == ()  # in the digest, not on its own


def test_a_pinned_business_date_shifts_the_scheduler_clock(sqlite_url) -> None:  # type: ignore[no-untyped-def]
    from bot.config import Settings
    from bot.container import Container
    from bot.scheduling import business_clock
    from scheduler.clock import system_clock

    pinned = Container(settings=Settings(database_url=sqlite_url, today="2030-01-05"))
    now = business_clock(pinned)()
    assert now.date() == date(2030, 1, 5) and now.tzinfo is not None
    # Shifted by whole days only: the time of day is the real one, so digests go out at their
    # local times on the pinned day.
    real = system_clock()
    assert abs((now - real) - (date(2030, 1, 5) - real.date())).total_seconds() < 5
    unpinned = Container(settings=Settings(database_url=sqlite_url, today=None))
    assert business_clock(unpinned) is system_clock
