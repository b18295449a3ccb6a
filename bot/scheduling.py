"""Wiring of the scheduler: its platform notifiers, the business clock, and the run-once / outbox commands."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from bot.container import Container
from bot.render import render_text
from handlers.reply import Reply
from scheduler.cli_support import backfill_refusal, parse_instant, preview
from scheduler.clock import Clock, system_clock
from scheduler.config import SchedulerConfig, load_config
from scheduler.notifier import Notifier
from scheduler.runner import SchedulerHandle, SyncSchedule, run_once, start_background

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
    """One notifier per configured platform."""
    notifiers: dict[str, Notifier] = {}
    for platform in config.platforms:
        if platform == "slack":
            from bot.slack.notifier import SlackNotifier

            notifiers["slack"] = SlackNotifier(container)
        elif platform == "teams":
            from bot.teams.notifier import TeamsNotifier

            notifiers["teams"] = TeamsNotifier(container)
        else:
            notifiers[platform] = LogNotifier(platform)
    return notifiers


def start_scheduler(
    container: Container,
    *,
    config: SchedulerConfig | None = None,
    notifiers: Mapping[str, Notifier] | None = None,
) -> SchedulerHandle:
    """The scheduler of `csm-bot serve`, with this process's notifiers and business clock."""
    config = config or config_for(container)
    chosen = notifiers if notifiers is not None else build_notifiers(container, config)
    settings = container.settings
    sync = (
        SyncSchedule(settings.sync_config, settings.sync_interval_minutes)
        if settings.sync_config
        else None
    )
    return start_background(
        container, config=config, notifiers=chosen, clock=business_clock(container), sync=sync
    )


def run_once_command(
    container: Container,
    at: str | datetime,
    *,
    backfill: bool = False,
    dry_run: bool = False,
    notifiers: Mapping[str, Notifier] | None = None,
) -> str:
    """`csm-bot scheduler run-once --at ISO-8601 [--backfill] [--dry-run]`; returns what to print.

    Raises ValueError (one line) for an instant outside the catch-up window without --backfill.
    """
    instant = parse_instant(at)
    config = config_for(container)
    if dry_run:
        return preview(container, instant, config)
    if not backfill:
        reason = backfill_refusal(instant, business_clock(container)(), config)
        if reason:
            raise ValueError(reason)
    chosen = notifiers if notifiers is not None else build_notifiers(container, config)
    return run_once(container, instant, config=config, notifiers=chosen).summary()
