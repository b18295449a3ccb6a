"""Runs the scheduler: once at a given instant (CLI, tests, backfills) or in the background of `serve`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bot.render import render_text
from handlers.reply import Reply
from scheduler.builders import build_reply
from scheduler.clock import Clock, Sleep, as_utc, system_clock, system_sleep
from scheduler.config import SchedulerConfig, load_config
from scheduler.dispatcher import Dispatcher
from scheduler.leader import Leadership
from scheduler.notifier import Notifier
from scheduler.work import RunReport, fill_outbox, recompute_accounts

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.container import Container

logger = logging.getLogger(__name__)


class LogNotifier:
    """The console platform: posts become log lines (a local install with no chat configured)."""

    def __init__(self, platform: str = "console") -> None:
        self.platform = platform
        self.count = 0

    def send(self, target: str, reply: Reply) -> str:
        self.count += 1
        logger.info("[%s → %s]\n%s", self.platform, target, render_text(reply))
        return f"{self.platform}-{self.count}"


def business_clock(container: Container) -> Clock:
    """The real clock, shifted to the pinned business date when CSM_TODAY is set (the demo).

    `csm-bot serve` on a demo pinned to 2026-11-23 then posts that day's digests at their local
    times, as if it were that day; time still flows, so tomorrow comes after midnight.
    """
    if not container.settings.today:
        return system_clock
    shift = container.today() - system_clock().date()

    def clock() -> datetime:
        return system_clock() + shift

    return clock


def config_for(container: Container) -> SchedulerConfig:
    s = container.settings
    return load_config(
        slack_enabled=bool(s.slack_bot_token), teams_enabled=bool(s.microsoft_app_id)
    )


def build_notifiers(container: Container, config: SchedulerConfig) -> dict[str, Notifier]:
    """One notifier per configured platform (Slack and Teams engineers' implementations)."""
    notifiers: dict[str, Notifier] = {}
    for platform in config.platforms:
        if platform == "slack":
            from bot.slack.notifier import SlackNotifier  # type: ignore[import-not-found]

            notifiers["slack"] = SlackNotifier(container)
        elif platform == "teams":
            from bot.teams.notifier import TeamsNotifier

            notifiers["teams"] = TeamsNotifier(container)
        else:
            notifiers[platform] = LogNotifier(platform)
    return notifiers


def make_dispatcher(
    container: Container,
    config: SchedulerConfig,
    notifiers: Mapping[str, Notifier],
    *,
    clock: Clock = system_clock,
    sleep: Sleep = system_sleep,
    **options: Any,
) -> Dispatcher:
    engine = container.engine

    def builder(spec: dict[str, Any]) -> Reply:
        return build_reply(engine, container.health_models, spec)

    return Dispatcher(
        engine,
        notifiers,
        clock=clock,
        sleep=sleep,
        pacing=config.pacing,
        admin_targets=config.admin_channel,
        builder=builder,
        **options,
    )


def run_once(
    container: Container,
    at: datetime,
    *,
    config: SchedulerConfig | None = None,
    notifiers: Mapping[str, Notifier] | None = None,
    dispatch: bool = True,
    clock: Clock | None = None,
    sleep: Sleep = system_sleep,
    max_wait: float = 120.0,
    recompute: bool = True,
    leadership: Leadership | None = None,
    dispatcher_options: Mapping[str, Any] | None = None,
) -> RunReport:
    """Run every job due at ``at``, then (by default) send what is pending.

    Safe to repeat: the outbox keys make a second run at the same instant queue nothing new.
    With ``clock`` unset the dispatcher's clock is pinned to ``at`` plus the time it slept, so a
    backfill paces and retries as if it ran then.
    """
    at = as_utc(at)
    config = config or config_for(container)
    own_lock = leadership is None
    leadership = leadership or Leadership(container.engine)
    try:
        if leadership.check():
            report = fill_outbox(
                container.engine,
                at=at,
                config=config,
                models=container.health_models,
                recompute=recompute,
            )
        else:
            report = RunReport(at=at, leader=False)
    finally:
        if own_lock:
            # A one-off run must not keep the lock (and its connection) after it returns.
            leadership.release()
    if dispatch:
        if clock is None:
            from scheduler.clock import SimulatedClock

            simulated = SimulatedClock(at)
            real_sleep = sleep

            def paced_sleep(seconds: float) -> None:
                real_sleep(seconds)
                simulated.sleep(seconds)

            clock, sleep = simulated.now, paced_sleep
        chosen = notifiers if notifiers is not None else build_notifiers(container, config)
        dispatcher = make_dispatcher(
            container, config, chosen, clock=clock, sleep=sleep, **(dispatcher_options or {})
        )
        report.dispatch = dispatcher.drain(max_wait=max_wait)
    return report


def recompute_after_import(
    container: Container, account_ids: Iterable[int], *, as_of: date | None = None
) -> int:
    """Recompute today's health of the accounts an import or ingest touched.

    With the background scheduler running, it becomes a one-off job (the import returns at
    once); otherwise it runs here. Alerts follow on the next tick, like any other change.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return 0
    day = as_of or container.today()
    handle = _RUNNING.get(id(container))
    if handle is not None:
        handle.scheduler.add_job(
            "scheduler.jobs:recompute_accounts_job",
            trigger="date",
            args=[handle.key, ids, day.isoformat()],
            id=f"csm-recompute-import-{day.isoformat()}-{hash(tuple(ids)) & 0xFFFFFFFF:x}",
            replace_existing=True,
            misfire_grace_time=3600,
        )
        return len(ids)
    return recompute_accounts(
        container.engine, as_of=day, models=container.health_models, account_ids=ids
    )


# -- background ------------------------------------------------------------------------------


@dataclass
class Runtime:
    """What the APScheduler job functions need, found by key (jobs take ids, never objects)."""

    container: Container
    config: SchedulerConfig
    leadership: Leadership
    dispatcher: Dispatcher
    clock: Clock = system_clock
    lock: threading.Lock = field(default_factory=threading.Lock)


_RUNTIMES: dict[str, Runtime] = {}
_RUNNING: dict[int, SchedulerHandle] = {}


def runtime(key: str) -> Runtime:
    return _RUNTIMES[key]


@dataclass
class SchedulerHandle:
    key: str
    scheduler: BackgroundScheduler
    runtime: Runtime

    def shutdown(self, wait: bool = True) -> None:
        self.scheduler.shutdown(wait=wait)
        self.runtime.leadership.release()
        _RUNTIMES.pop(self.key, None)
        _RUNNING.pop(id(self.runtime.container), None)


def start_background(
    container: Container,
    *,
    config: SchedulerConfig | None = None,
    notifiers: Mapping[str, Notifier] | None = None,
) -> SchedulerHandle:
    """Start the scheduler thread of `csm-bot serve`: tick every minute (leader only), dispatch
    every few seconds (every replica), nightly recompute. Returns a handle with ``shutdown()``."""
    from apscheduler.schedulers.background import BackgroundScheduler

    config = config or config_for(container)
    chosen = notifiers if notifiers is not None else build_notifiers(container, config)
    clock = business_clock(container)
    rt = Runtime(
        container=container,
        config=config,
        leadership=Leadership(container.engine),
        dispatcher=make_dispatcher(container, config, chosen, clock=clock),
        clock=clock,
    )
    key = rt.dispatcher.worker_id
    _RUNTIMES[key] = rt
    scheduler = BackgroundScheduler(timezone="UTC")
    common: dict[str, Any] = {
        "args": [key],
        "replace_existing": True,
        "coalesce": True,
        "max_instances": 1,
    }
    scheduler.add_job(
        "scheduler.jobs:tick",
        trigger="interval",
        seconds=config.tick_seconds,
        id="csm-scheduler-tick",
        next_run_time=system_clock(),
        **common,
    )
    scheduler.add_job(
        "scheduler.jobs:dispatch",
        trigger="interval",
        seconds=config.dispatch_seconds,
        id="csm-outbox-dispatch",
        **common,
    )
    scheduler.add_job(
        "scheduler.jobs:nightly_recompute",
        trigger="cron",
        hour=config.recompute_time.hour,
        minute=config.recompute_time.minute,
        id="csm-health-recompute",
        misfire_grace_time=6 * 3600,
        **common,
    )
    if container.settings.sync_config:
        scheduler.add_job(
            "scheduler.jobs:sync_sources",
            trigger="interval",
            minutes=container.settings.sync_interval_minutes,
            id="csm-sync",
            **common,
        )
    scheduler.start()
    handle = SchedulerHandle(key=key, scheduler=scheduler, runtime=rt)
    _RUNNING[id(container)] = handle
    logger.info("scheduler started (%s)", ", ".join(config.platforms))
    return handle
