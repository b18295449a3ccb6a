"""Scheduler settings: offsets, local times, routes per kind, channels and alert thresholds (env CSM_SCHEDULER_*)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta

from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.alert_rules import AlertThresholds
from domain.notify_policy import URGENT_BATCH_MINUTES
from scheduler.pacing import DEFAULT_PACING, SLACK_LOOKUP_WINDOWS, Pacing

# Where each kind goes by default. Routes: account_channel, csm_dm, risk_channel, manager_dm.
# A digest, not a firehose (docs/notifications.md): alerts reach their owner once, urgent ones in
# an hourly batch ("urgent_alerts") and the rest in the daily digest, which also carries renewal
# reminders, QBR prep and overdue milestones; the risk channel gets one summary per run. The kinds
# routed nowhere ("risk_alert", "renewal_reminder", "qbr_prep") can be posted on their own as
# well, e.g. CSM_SCHEDULER_ROUTE_RENEWAL_REMINDER=account_channel for the account team.
DEFAULT_ROUTES: dict[str, tuple[str, ...]] = {
    "urgent_alerts": ("csm_dm",),
    "risk_summary": ("risk_channel",),
    "daily_digest": ("csm_dm",),
    "manager_digest": ("manager_dm",),
    "risk_alert": (),
    "renewal_reminder": (),
    "qbr_prep": (),
}
ROUTE_NAMES = ("account_channel", "csm_dm", "risk_channel", "manager_dm")


def parse_hhmm(value: str) -> time:
    hours, minutes = value.strip().split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class SchedulerConfig:
    """What the scheduler sends, when and where.

    Attributes:
        platforms: where posts go ("slack", "teams"; "console" logs them).
        renewal_offsets / qbr_offsets: days before the date that a reminder / prep is due.
        notice_time: local time (the owner CSM's zone) reminders and QBR prep are posted.
        catchup_days: a reminder missed while the scheduler was down still goes out this many
            days late, never older ones (no flood after an outage or on first install).
        digest_grace_hours: same for the daily digest.
        recompute_time: UTC time of the nightly health recompute.
        manager_digest_weekday: 0 = Monday.
        routes: per kind, the routes it is posted to; an empty tuple switches the kind off
            (env: CSM_SCHEDULER_ROUTE_<KIND>=none). Renewal reminders, QBR prep and alerts are
            in the daily digest whatever their own routes say.
        urgent_batch_minutes: at most one urgent-alerts message per person this often.
        digest_lookback_days: a digest covers the days since the person's previous one, at
            most this many (after a long outage or holiday it does not list a month).
        digest_qbr_packs: the draft decks of QBRs reaching their first notice that follow one
            digest, nearest first (none when QBR prep is posted on its own: those carry them).
        risk_channel / admin_channel: per platform, the team risk channel and the admin channel
            that hears about deliveries that failed for good (one report per cause per hour)
            and about a workspace that paused posting.
        unowned_channel: per platform, where posts about accounts without an owner go (reminders,
            alerts, QBR prep); unset: to every admin's DM.
        deadlines: per kind, how long after it was queued a post is still worth making; past
            it, the post fails as "expired" (outages never make a post fail sooner).
        dispatch_concurrency: posts in flight at once per replica (the platforms answer in
            ~100-300 ms, so one at a time cannot reach their rate limits).
        lease_seconds: how long a claim lasts without renewal (a replica renews while it works;
            a dead one's claims pass on after this; keep it well above the HTTP timeout).
        probe_seconds: how often a paused workspace is tried again (Slack: auth.test).
        redis_url: keep the shared pacing in this Redis instead of the database.
    """

    platforms: tuple[str, ...] = ("console",)
    renewal_offsets: tuple[int, ...] = (120, 90, 60, 30, 7)
    qbr_offsets: tuple[int, ...] = (14, 3)
    notice_time: time = time(9, 0)
    catchup_days: int = 1
    digest_grace_hours: float = 6.0
    recompute_time: time = time(2, 0)
    manager_digest_weekday: int = 0
    routes: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ROUTES))
    risk_channel: dict[str, str] = field(default_factory=dict)
    admin_channel: dict[str, str] = field(default_factory=dict)
    unowned_channel: dict[str, str] = field(default_factory=dict)
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    pacing: dict[str, Pacing] = field(default_factory=lambda: dict(DEFAULT_PACING))
    deadlines: dict[str, timedelta] = field(default_factory=dict)
    dispatch_concurrency: int = 4
    lease_seconds: float = 30.0
    probe_seconds: float = 60.0
    redis_url: str | None = None
    tick_seconds: int = 60
    dispatch_seconds: int = 5
    urgent_batch_minutes: int = URGENT_BATCH_MINUTES
    digest_lookback_days: int = 7
    digest_qbr_packs: int = 3


class SchedulerSettings(BaseSettings):
    """Environment overrides, e.g. CSM_SCHEDULER_RENEWAL_OFFSETS=120,90,60,30,7."""

    model_config = SettingsConfigDict(env_prefix="CSM_SCHEDULER_", env_file=".env", extra="ignore")

    platforms: str | None = None
    renewal_offsets: str = "120,90,60,30,7"
    qbr_offsets: str = "14,3"
    notice_time: str = "09:00"
    catchup_days: int = 1
    digest_grace_hours: float = 6.0
    recompute_time: str = "02:00"
    manager_digest_weekday: int = 0
    # Routes per kind, e.g. CSM_SCHEDULER_ROUTE_RISK_ALERT=csm_dm,risk_channel
    route_risk_alert: str | None = None
    route_renewal_reminder: str | None = None
    route_qbr_prep: str | None = None
    route_daily_digest: str | None = None
    route_manager_digest: str | None = None
    route_urgent_alerts: str | None = None
    route_risk_summary: str | None = None
    urgent_batch_minutes: int = URGENT_BATCH_MINUTES
    digest_qbr_packs: int = 3
    risk_channel_slack: str | None = None
    risk_channel_teams: str | None = None
    admin_channel_slack: str | None = None
    admin_channel_teams: str | None = None
    # Accounts without an owner: their reminders and alerts go here (else to the admins).
    unowned_channel_slack: str | None = None
    unowned_channel_teams: str | None = None
    slack_workspace_rate: float = 10.0
    # e.g. CSM_SCHEDULER_DEADLINES=daily_digest=12h,renewal_reminder=5d,risk_alert=72h
    deadlines: str = ""
    dispatch_concurrency: int = 4
    lease_seconds: float = 30.0
    probe_seconds: float = 60.0
    redis_url: str | None = None
    drop_points: float = 10.0
    drop_window_days: int = 7
    forecast_days: int = 14
    lookback_days: int = 3


def _ints(value: str) -> tuple[int, ...]:
    return tuple(sorted({int(v) for v in value.split(",") if v.strip()}, reverse=True))


def _names(value: str) -> tuple[str, ...]:
    if value.strip().lower() == "none":
        return ()  # the kind is switched off
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in ROUTE_NAMES]
    if unknown:
        raise ValueError(f"unknown route(s) {unknown}; use {', '.join(ROUTE_NAMES)}")
    return names


_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_deadlines(value: str) -> dict[str, timedelta]:
    """``kind=12h,kind=5d`` (m, h or d) into a mapping; a bad entry raises ValueError."""
    out: dict[str, timedelta] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        kind, _, amount = part.partition("=")
        amount = amount.strip().lower()
        unit = _UNITS.get(amount[-1:]) if amount else None
        try:
            number = float(amount[:-1]) if unit else float("nan")
        except ValueError:
            number = float("nan")
        if not kind.strip() or unit is None or not number > 0:
            raise ValueError(f"bad deadline {part!r}; write kind=12h (m, h or d)")
        out[kind.strip()] = timedelta(seconds=number * unit)
    return out


def load_config(
    *,
    slack_enabled: bool = False,
    teams_enabled: bool = False,
    env: SchedulerSettings | None = None,
) -> SchedulerConfig:
    """Read CSM_SCHEDULER_* settings; platforms default to those with credentials, else console."""
    s = env or SchedulerSettings()
    if s.platforms:
        platforms = tuple(p.strip() for p in s.platforms.split(",") if p.strip())
    else:
        platforms = tuple(
            p for p, on in (("slack", slack_enabled), ("teams", teams_enabled)) if on
        ) or ("console",)
    routes = dict(DEFAULT_ROUTES)
    for kind in DEFAULT_ROUTES:
        override = getattr(s, f"route_{kind}")
        if override:
            routes[kind] = _names(override)
    pacing = dict(DEFAULT_PACING)
    pacing["slack"] = Pacing(
        per_target_interval=1.0,
        global_rate=s.slack_workspace_rate,
        lookup_windows=SLACK_LOOKUP_WINDOWS,
    )
    return SchedulerConfig(
        platforms=platforms,
        renewal_offsets=_ints(s.renewal_offsets),
        qbr_offsets=_ints(s.qbr_offsets),
        notice_time=parse_hhmm(s.notice_time),
        catchup_days=s.catchup_days,
        digest_grace_hours=s.digest_grace_hours,
        recompute_time=parse_hhmm(s.recompute_time),
        manager_digest_weekday=s.manager_digest_weekday,
        routes=routes,
        risk_channel={
            k: v for k, v in (("slack", s.risk_channel_slack), ("teams", s.risk_channel_teams)) if v
        },
        admin_channel={
            k: v
            for k, v in (("slack", s.admin_channel_slack), ("teams", s.admin_channel_teams))
            if v
        },
        unowned_channel={
            k: v
            for k, v in (("slack", s.unowned_channel_slack), ("teams", s.unowned_channel_teams))
            if v
        },
        thresholds=AlertThresholds(
            drop_points=s.drop_points,
            drop_window_days=s.drop_window_days,
            forecast_days=s.forecast_days,
            lookback_days=s.lookback_days,
        ),
        pacing=pacing,
        deadlines=parse_deadlines(s.deadlines),
        dispatch_concurrency=max(1, s.dispatch_concurrency),
        lease_seconds=max(15.0, s.lease_seconds),
        probe_seconds=max(5.0, s.probe_seconds),
        redis_url=s.redis_url or None,
        urgent_batch_minutes=max(1, s.urgent_batch_minutes),
        digest_qbr_packs=max(0, s.digest_qbr_packs),
    )
