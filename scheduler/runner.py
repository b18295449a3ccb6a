"""Runs the scheduler: once at a given instant (CLI, tests, backfills) or in the background of `serve`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Engine

from domain.health_model import HealthModels
from handlers.reply import Reply
from scheduler.builders import build_reply
from scheduler.clock import Clock, SimulatedClock, Sleep, as_utc, system_clock, system_sleep
from scheduler.config import SchedulerConfig
from scheduler.dispatcher import Dispatcher
from scheduler.leader import Leadership
from scheduler.notifier import Notifier
from scheduler.work import RunReport, fill_outbox, recompute_accounts

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

logger = logging.getLogger(__name__)


class Services(Protocol):
    """What the scheduler needs from the process that runs it (bot.container.Container has it).

    The wiring that starts the process (bot/) hands it over with the platform notifiers, so the
    scheduler imports nothing from bot/.
    """

    @property
    def engine(self) -> Engine: ...

    @property
    def health_models(self) -> HealthModels: ...

    def today(self) -> date: ...


def make_dispatcher(
    services: Services,
    config: SchedulerConfig,
    notifiers: Mapping[str, Notifier],
    *,
    clock: Clock = system_clock,
    sleep: Sleep = system_sleep,
    **options: Any,
) -> Dispatcher:
    engine = services.engine

    def builder(spec: dict[str, Any]) -> Reply:
        return build_reply(engine, services.health_models, spec)

    settings: dict[str, Any] = {
        "pacing": config.pacing,
        "admin_targets": config.admin_channel,
        "deadlines": config.deadlines,
        "concurrency": config.dispatch_concurrency,
        "lease_seconds": config.lease_seconds,
        "probe_seconds": config.probe_seconds,
    }
    if config.redis_url:
        from scheduler.redis_pacing import RedisPacer

        settings["pacer"] = RedisPacer(config.redis_url)
    settings.update(options)
    return Dispatcher(engine, notifiers, clock=clock, sleep=sleep, builder=builder, **settings)


def run_once(
    services: Services,
    at: datetime,
    *,
    config: SchedulerConfig,
    notifiers: Mapping[str, Notifier] | None = None,
    dispatch: bool = True,
    clock: Clock | None = None,
    sleep: Sleep = system_sleep,
    max_wait: float = 120.0,
    recompute: bool = True,
    leadership: Leadership | None = None,
    dispatcher_options: Mapping[str, Any] | None = None,
) -> RunReport:
    """Run every job due at the business instant ``at``, then (by default) send what is pending.

    Safe to repeat: the outbox keys make a second run at the same instant queue nothing new.
    ``at`` only decides what is due; the outbox itself runs on the wall clock (rows created now,
    sent now, ``sent_at`` the real time). A caller that fakes ``sleep`` (tests) gets a clock that
    starts at the real time and moves by the time it slept: right for one process only, since
    replicas share leases and pacing and so must share the wall clock (pass ``clock``). Whether an instant far from now may
    be run at all is the command line's call (``--backfill``).
    """
    at = as_utc(at)
    own_lock = leadership is None
    leadership = leadership or Leadership(services.engine)
    try:
        if leadership.check():
            report = fill_outbox(
                services.engine,
                at=at,
                config=config,
                models=services.health_models,
                recompute=recompute,
            )
        else:
            report = RunReport(at=at, leader=False)
    finally:
        if own_lock:
            # A one-off run must not keep the lock (and its connection) after it returns.
            leadership.release()
    if dispatch:
        if notifiers is None:
            raise ValueError("dispatching needs the platform notifiers (the wiring passes them)")
        if clock is None and sleep is not system_sleep:
            simulated = SimulatedClock(system_clock())
            given_sleep = sleep

            def paced_sleep(seconds: float) -> None:
                given_sleep(seconds)
                simulated.sleep(seconds)

            clock, sleep = simulated.now, paced_sleep
        dispatcher = make_dispatcher(
            services,
            config,
            notifiers,
            clock=clock or system_clock,
            sleep=sleep,
            **(dispatcher_options or {}),
        )
        report.dispatch = dispatcher.drain(max_wait=max_wait)
    return report


def recompute_after_import(
    services: Services, account_ids: Iterable[int], *, as_of: date | None = None
) -> int:
    """Recompute today's health of the accounts an import or ingest touched.

    With the background scheduler running, it becomes a one-off job (the import returns at
    once); otherwise it runs here. Alerts follow on the next tick, like any other change.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return 0
    day = as_of or services.today()
    handle = _RUNNING.get(id(services))
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
        services.engine, as_of=day, models=services.health_models, account_ids=ids
    )


# -- background ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncSchedule:
    """The sync file (CSM_SYNC_CONFIG) and how often the leader runs it."""

    config: Path
    interval_minutes: int


@dataclass
class Runtime:
    """What the APScheduler job functions need, found by key (jobs take ids, never objects)."""

    container: Services
    config: SchedulerConfig
    leadership: Leadership
    dispatcher: Dispatcher
    clock: Clock = system_clock
    sync: SyncSchedule | None = None
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
    _stopped: bool = False

    def shutdown(self, wait: bool = True) -> None:
        """Graceful stop (SIGTERM, Ctrl-C): posts in flight finish, nothing new starts, and every
        claim this replica holds goes back to the queue at once (not after its lease).
        Safe to call twice (the server's shutdown hook and its ``finally``)."""
        if self._stopped:
            return
        self._stopped = True
        self.runtime.dispatcher.stop()
        self.scheduler.shutdown(wait=wait)
        self.runtime.dispatcher.release_claims()
        self.runtime.leadership.release()
        _RUNTIMES.pop(self.key, None)
        _RUNNING.pop(id(self.runtime.container), None)


def start_background(
    services: Services,
    *,
    config: SchedulerConfig,
    notifiers: Mapping[str, Notifier],
    clock: Clock = system_clock,
    sync: SyncSchedule | None = None,
) -> SchedulerHandle:
    """Start the scheduler thread of `csm-bot serve`: tick every minute (leader only), dispatch
    every few seconds (every replica), nightly recompute. Returns a handle with ``shutdown()``.

    ``clock`` is the business clock (demos pin the date); the outbox runs on the wall clock.
    ``sync``: pull the sources of a sync file on the leader every so often.
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    rt = Runtime(
        container=services,
        config=config,
        leadership=Leadership(services.engine),
        dispatcher=make_dispatcher(services, config, notifiers),
        clock=clock,
        sync=sync,
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
    if sync is not None:
        scheduler.add_job(
            "scheduler.jobs:sync_sources",
            trigger="interval",
            minutes=sync.interval_minutes,
            id="csm-sync",
            **common,
        )
    scheduler.start()
    handle = SchedulerHandle(key=key, scheduler=scheduler, runtime=rt)
    _RUNNING[id(services)] = handle
    logger.info("scheduler started (%s)", ", ".join(config.platforms))
    return handle
