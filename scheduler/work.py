"""What a scheduler run does at one instant: recompute, alerts, reminders, QBR prep and digests into the outbox."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain import alert_rules as rules
from domain.health_model import HealthModels
from handlers.alerts import account_briefs, renewal_reminder_reply, risk_alert_reply
from handlers.context import Actor, ChatContext
from handlers.digests import daily_digest, manager_digest
from handlers.qbr import qbr_prep
from handlers.reply import Reply
from scheduler.clock import as_utc
from scheduler.config import SchedulerConfig, parse_hhmm
from scheduler.models import Alert, JobRun
from scheduler.outbox import OutboxItem, enqueue, existing_keys
from scheduler.routing import targets
from storage.db import session_scope
from storage.models import (
    CSM,
    QBR,
    Account,
    Escalation,
    HealthSnapshot,
    Milestone,
    Renewal,
    SurveyResponse,
)

logger = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What one run put in the outbox (and, when it dispatched, what it sent)."""

    at: datetime
    leader: bool = True
    recomputed: int | None = None
    alerts_fired: int = 0
    alerts_suppressed: int = 0
    enqueued: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    dispatch: Any = None

    def summary(self) -> str:
        parts = [f"run at {self.at.isoformat()}"]
        if not self.leader:
            parts.append("not the leader: nothing scheduled here")
        if self.recomputed is not None:
            parts.append(f"health recomputed for {self.recomputed} accounts")
        parts.append(f"alerts fired {self.alerts_fired}, quieted {self.alerts_suppressed}")
        queued = ", ".join(f"{k} {v}" for k, v in sorted(self.enqueued.items())) or "nothing"
        parts.append(f"queued: {queued}")
        if self.dispatch is not None:
            d = self.dispatch
            parts.append(
                f"sent {d.sent}, retrying {d.retried}, failed {d.failed}, deferred {d.released}"
            )
        return "; ".join(parts)


# -- time ---------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown timezone %r; using UTC", name)
        return ZoneInfo("UTC")


def local_date(at: datetime, tz: str | None) -> date:
    return at.astimezone(zone(tz)).date()


def fire_at(day: date, at_time: time, tz: str | None) -> datetime:
    """The UTC instant of a local wall-clock time (DST-aware through zoneinfo)."""
    return datetime.combine(day, at_time, tzinfo=zone(tz)).astimezone(UTC)


def is_due(fire: datetime, at: datetime, grace: timedelta) -> bool:
    """Due from its fire time until the grace runs out; the outbox key keeps it to one post."""
    return fire <= at < fire + grace


def _scheduler_ctx(csm: CSM | None, today: date) -> ChatContext:
    actor = (
        Actor(csm_id=csm.id, name=csm.name, email=csm.email, role=csm.role)
        if csm
        else Actor(csm_id=None, name="CSM Assistant", role="admin")
    )
    return ChatContext(platform="scheduler", actor=actor, today=today)


def _items(
    kind: str,
    subject: str,
    period: str,
    reply: Reply,
    *,
    config: SchedulerConfig,
    account: Account | None = None,
    csm_id: int | None = None,
    manager_id: int | None = None,
) -> list[OutboxItem]:
    out = []
    for platform in config.platforms:
        for target in targets(
            kind,
            platform=platform,
            config=config,
            account=account,
            csm_id=csm_id,
            manager_id=manager_id,
        ):
            out.append(OutboxItem(kind, subject, target, period, platform, reply))
    return out


def _insert_stmt(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert(model)
    if dialect == "sqlite":
        return sqlite_insert(model)
    return insert(model)


# -- health recompute -----------------------------------------------------------------------


def recompute_if_due(
    engine: Engine, *, at: datetime, config: SchedulerConfig, models: HealthModels
) -> int | None:
    """The nightly recompute of today's snapshots, once a day after ``recompute_time`` UTC."""
    day = at.date()
    if at < fire_at(day, config.recompute_time, "UTC"):
        return None
    with session_scope(engine) as session:
        done = session.exec(
            select(JobRun).where(JobRun.job == "health_recompute", JobRun.period == day.isoformat())
        ).first()
    if done is not None:
        return None
    summary = recompute_accounts(engine, as_of=day, models=models)
    # Recorded after the work: a crash mid-way recomputes again (it upserts), never skips.
    with session_scope(engine) as session:
        session.execute(
            _insert_stmt(session, JobRun)
            .values(
                job="health_recompute",
                period=day.isoformat(),
                started_at=at,
                finished_at=at,
                detail=f"{summary} accounts",
            )
            .on_conflict_do_nothing(index_elements=["job", "period"])
        )
    return summary


def recompute_accounts(
    engine: Engine, *, as_of: date, models: HealthModels, account_ids: Iterable[int] | None = None
) -> int:
    """Recompute snapshots (all accounts, or those an import touched); returns how many."""
    from handlers.recompute import recompute_health

    ids = None if account_ids is None else sorted(set(account_ids))
    return recompute_health(engine, as_of=as_of, models=models, account_ids=ids).accounts


# -- risk alerts ------------------------------------------------------------------------------


def evaluate_alerts(
    session: Session, *, at: datetime, config: SchedulerConfig, report: RunReport
) -> None:
    """Raise alerts for transitions on the newest snapshot day; quiet ones are kept, not posted."""
    t = config.thresholds
    today = at.date()
    # Health rules read the newest snapshot day (today's may not be computed yet); item rules
    # (surveys, milestones, escalations) read today.
    day = (
        session.exec(
            select(func.max(HealthSnapshot.day)).where(col(HealthSnapshot.day) <= today)
        ).first()
        or today
    )
    w = t.drop_window_days
    days = sorted(
        {day, day - timedelta(days=1), day - timedelta(days=w), day - timedelta(days=w + 1)}
    )
    facts: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"snapshots": {}, "milestones": [], "surveys": [], "escalations": []}
    )
    rows = session.execute(
        select(
            HealthSnapshot.account_id,
            HealthSnapshot.day,
            HealthSnapshot.score,
            HealthSnapshot.band,
            HealthSnapshot.forecast_red_in_days,
        ).where(col(HealthSnapshot.day).in_(days))
    ).all()
    for aid, d, score, band, forecast in rows:
        facts[aid]["snapshots"][d] = rules.Snapshot(d, score, band, forecast)
    oldest = today - timedelta(days=t.lookback_days)
    for m in session.exec(
        select(Milestone).where(
            col(Milestone.due_date) >= oldest - timedelta(days=1),
            col(Milestone.due_date) < today,
            Milestone.status != "done",
        )
    ).all():
        facts[m.account_id]["milestones"].append(
            rules.MilestoneFact(m.id or 0, m.title, m.due_date, m.status)
        )
    for s in session.exec(
        select(SurveyResponse).where(
            SurveyResponse.kind == "nps",
            col(SurveyResponse.score) <= t.detractor_max,
            col(SurveyResponse.responded_on) >= oldest,
            col(SurveyResponse.responded_on) <= today,
        )
    ).all():
        facts[s.account_id]["surveys"].append(
            rules.SurveyFact(s.id or 0, s.kind, s.score, s.responded_on, s.respondent, s.comment)
        )
    for e in session.exec(select(Escalation).where(Escalation.status != "resolved")).all():
        facts[e.account_id]["escalations"].append(
            rules.EscalationFact(
                e.id or 0,
                e.title,
                e.severity,
                e.status,
                as_utc(e.ack_due_at) if e.ack_due_at else None,
                as_utc(e.resolve_due_at) if e.resolve_due_at else None,
            )
        )
    churned = set(
        session.exec(select(Account.id).where(col(Account.churned_on).is_not(None))).all()
    )
    events: list[rules.AlertEvent] = []
    for aid, f in facts.items():
        if aid in churned:
            continue
        events += rules.evaluate(
            rules.AccountFacts(
                aid, f["snapshots"], f["milestones"], f["surveys"], f["escalations"]
            ),
            day=day,
            now=at,
            thresholds=t,
            today=today,
        )
    if not events:
        return
    known = set(
        session.exec(
            select(Alert.event_key).where(col(Alert.event_key).in_([e.event_key for e in events]))
        ).all()
    )
    events = [e for e in events if e.event_key not in known]
    if not events:
        return
    # Everything that can quiet a new alert is at most this old.
    horizon = max([*t.cooldown_days.values(), t.ack_quiet_days, 90])
    prior: dict[tuple[int, str], list[rules.PriorAlert]] = defaultdict(list)
    for a in session.exec(
        select(Alert).where(
            col(Alert.account_id).in_({e.account_id for e in events}),
            Alert.status != "suppressed",
            col(Alert.fired_at) >= at - timedelta(days=horizon),
        )
    ).all():
        prior[(a.account_id, a.kind)].append(
            rules.PriorAlert(
                a.severity,
                as_utc(a.fired_at),
                as_utc(a.acknowledged_at) if a.acknowledged_at else None,
                as_utc(a.snoozed_until) if a.snoozed_until else None,
            )
        )
    fired: list[Alert] = []
    # Most severe first, so that one event of a day can quiet its weaker siblings of the same kind.
    for event in sorted(events, key=lambda e: (-e.severity, e.event_key)):
        key = (event.account_id, event.kind)
        reason = rules.quiet_reason(event, prior[key], now=at, thresholds=t)
        values = {
            "account_id": event.account_id,
            "kind": event.kind,
            "event_key": event.event_key,
            "severity": event.severity,
            "title": event.title,
            "details": event.details,
            "status": "suppressed" if reason else "open",
            "suppressed_reason": reason,
            "fired_at": at,
        }
        new_id = session.execute(
            _insert_stmt(session, Alert)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["event_key"])
            .returning(Alert.id)
        ).scalar()
        if new_id is None:
            continue  # another leader judged this event in the meantime
        if reason:
            report.alerts_suppressed += 1
            continue
        prior[key].append(rules.PriorAlert(event.severity, at))
        fired.append(Alert(id=new_id, **values))
    if not fired:
        return
    report.alerts_fired += len(fired)
    briefs = account_briefs(session, {a.account_id for a in fired}, at.date())
    accounts = {
        a.id: a
        for a in session.exec(
            select(Account).where(col(Account.id).in_({a.account_id for a in fired}))
        ).all()
    }
    items: list[OutboxItem] = []
    for alert in fired:
        account = accounts[alert.account_id]
        reply = risk_alert_reply(alert, briefs[alert.account_id])
        items += _items(
            "risk_alert",
            f"alert:{alert.id}",
            today.isoformat(),
            reply,
            config=config,
            account=account,
            csm_id=account.owner_id,
        )
    report.enqueued["risk_alert"] += enqueue(session, items, now=at)


# -- renewal reminders and QBR prep ---------------------------------------------------------


def _owners(session: Session, owner_ids: Iterable[int | None]) -> dict[int, CSM]:
    ids = {i for i in owner_ids if i is not None}
    if not ids:
        return {}
    return {c.id or 0: c for c in session.exec(select(CSM).where(col(CSM.id).in_(ids))).all()}


def renewal_reminders(
    session: Session, *, at: datetime, config: SchedulerConfig, report: RunReport
) -> None:
    """Reminders N days before each open renewal, at ``notice_time`` in the owner's zone."""
    if not config.renewal_offsets:
        return
    grace = timedelta(days=config.catchup_days)
    first = at.date() - timedelta(days=2)
    last = at.date() + timedelta(days=max(config.renewal_offsets) + 2)
    rows = session.exec(
        select(Renewal, Account)
        .join(Account, col(Account.id) == col(Renewal.account_id))
        .where(
            Renewal.status == "open",
            col(Renewal.renewal_date) >= first,
            col(Renewal.renewal_date) <= last,
            col(Account.churned_on).is_(None),
        )
    ).all()
    owners = _owners(session, (a.owner_id for _, a in rows))
    due: list[tuple[Renewal, Account, int, date]] = []
    for renewal, account in rows:
        owner = owners.get(account.owner_id or -1)
        tz = owner.timezone if owner else "UTC"
        for offset in config.renewal_offsets:
            fire = fire_at(renewal.renewal_date - timedelta(days=offset), config.notice_time, tz)
            if is_due(fire, at, grace):
                due.append((renewal, account, offset, local_date(at, tz)))
    if not due:
        return
    periods = sorted({f"{o}d" for _, _, o, _ in due})
    sent = {(k[1], k[3]) for k in existing_keys(session, "renewal_reminder", periods)}
    due = [d for d in due if (f"renewal:{d[0].id}", f"{d[2]}d") not in sent]
    briefs = account_briefs(session, {a.id or 0 for _, a, _, _ in due}, at.date())
    items: list[OutboxItem] = []
    for renewal, account, offset, today in due:
        reply = renewal_reminder_reply(renewal, briefs[account.id or 0], today=today, offset=offset)
        items += _items(
            "renewal_reminder",
            f"renewal:{renewal.id}",
            f"{offset}d",
            reply,
            config=config,
            account=account,
            csm_id=account.owner_id,
        )
    report.enqueued["renewal_reminder"] += enqueue(session, items, now=at)


def qbr_preps(
    session: Session,
    *,
    at: datetime,
    config: SchedulerConfig,
    models: HealthModels,
    report: RunReport,
) -> None:
    """QBR prep digests N days before each scheduled QBR, at ``notice_time`` for the owner."""
    if not config.qbr_offsets:
        return
    grace = timedelta(days=config.catchup_days)
    first = at - timedelta(days=2)
    last = at + timedelta(days=max(config.qbr_offsets) + 2)
    rows = session.exec(
        select(QBR, Account)
        .join(Account, col(Account.id) == col(QBR.account_id))
        .where(
            QBR.status == "scheduled",
            col(QBR.scheduled_for) >= first,
            col(QBR.scheduled_for) <= last,
        )
    ).all()
    owners = _owners(session, (a.owner_id for _, a in rows))
    sent = {(k[1], k[3]) for k in existing_keys(session, "qbr_prep")}
    items: list[OutboxItem] = []
    for qbr, account in rows:
        owner = owners.get(account.owner_id or -1)
        tz = owner.timezone if owner else "UTC"
        meeting_day = as_utc(qbr.scheduled_for).astimezone(zone(tz)).date()
        for offset in config.qbr_offsets:
            fire = fire_at(meeting_day - timedelta(days=offset), config.notice_time, tz)
            if not is_due(fire, at, grace) or (f"qbr:{qbr.id}", f"{offset}d") in sent:
                continue
            ctx = _scheduler_ctx(owner, local_date(at, tz))
            reply = qbr_prep(session, ctx=ctx, models=models, account_id=account.id)
            items += _items(
                "qbr_prep",
                f"qbr:{qbr.id}",
                f"{offset}d",
                reply,
                config=config,
                account=account,
                csm_id=account.owner_id,
            )
    if items:
        report.enqueued["qbr_prep"] += enqueue(session, items, now=at)


# -- digests ---------------------------------------------------------------------------------


def daily_digests(
    session: Session, *, at: datetime, config: SchedulerConfig, report: RunReport
) -> None:
    """One digest per CSM at their local digest time, weekdays unless they asked for weekends."""
    grace = timedelta(hours=config.digest_grace_hours)
    owners = set(
        session.exec(
            select(Account.owner_id).where(col(Account.owner_id).is_not(None)).distinct()
        ).all()
    )
    csms = [
        c
        for c in session.exec(select(CSM).order_by(col(CSM.id))).all()
        if c.role == "csm" or c.id in owners
    ]
    due: list[tuple[CSM, date]] = []
    for csm in csms:
        today = local_date(at, csm.timezone)
        try:
            digest_time = parse_hhmm(csm.digest_time or "08:30")
        except ValueError:
            digest_time = time(8, 30)
        for day in (today, today - timedelta(days=1)):
            if day.weekday() >= 5 and not csm.digest_weekends:
                continue
            if is_due(fire_at(day, digest_time, csm.timezone), at, grace):
                due.append((csm, day))
    if not due:
        return
    sent = {
        (k[1], k[3])
        for k in existing_keys(session, "daily_digest", sorted({d.isoformat() for _, d in due}))
    }
    items: list[OutboxItem] = []
    for csm, day in due:
        if (f"csm:{csm.id}", day.isoformat()) in sent:
            continue
        reply = daily_digest(session, ctx=_scheduler_ctx(csm, day), csm_id=csm.id)
        items += _items(
            "daily_digest", f"csm:{csm.id}", day.isoformat(), reply, config=config, csm_id=csm.id
        )
    if items:
        report.enqueued["daily_digest"] += enqueue(session, items, now=at)


def manager_digests(
    session: Session, *, at: datetime, config: SchedulerConfig, report: RunReport
) -> None:
    """The weekly team digest, on ``manager_digest_weekday`` at each manager's digest time."""
    managers_with_reports = set(
        session.exec(select(CSM.manager_id).where(col(CSM.manager_id).is_not(None))).all()
    )
    managers = [
        c
        for c in session.exec(select(CSM).order_by(col(CSM.id))).all()
        if c.role == "manager" or c.id in managers_with_reports
    ]
    items: list[OutboxItem] = []
    sent = {(k[1], k[3]) for k in existing_keys(session, "manager_digest")}
    for manager in managers:
        today = local_date(at, manager.timezone)
        day = today - timedelta(days=(today.weekday() - config.manager_digest_weekday) % 7)
        try:
            digest_time = parse_hhmm(manager.digest_time or "08:30")
        except ValueError:
            digest_time = time(8, 30)
        if not is_due(fire_at(day, digest_time, manager.timezone), at, timedelta(days=1)):
            continue
        iso = day.isocalendar()
        period = f"{iso.year}-W{iso.week:02d}"
        if (f"manager:{manager.id}", period) in sent:
            continue
        reply = manager_digest(session, ctx=_scheduler_ctx(manager, day), manager_id=manager.id)
        items += _items(
            "manager_digest",
            f"manager:{manager.id}",
            period,
            reply,
            config=config,
            csm_id=manager.id,
            manager_id=manager.id,
        )
    if items:
        report.enqueued["manager_digest"] += enqueue(session, items, now=at)


# -- one run ---------------------------------------------------------------------------------


def fill_outbox(
    engine: Engine,
    *,
    at: datetime,
    config: SchedulerConfig,
    models: HealthModels,
    recompute: bool = True,
) -> RunReport:
    """Everything due at ``at``: safe to repeat and to run concurrently (the outbox keys decide).

    Each kind commits on its own, so a crash part-way keeps what was done and a re-run adds the
    rest; alerts and their deliveries commit together, so an alert is never judged without its
    posts being queued.
    """
    at = as_utc(at)
    report = RunReport(at=at)
    if recompute:
        report.recomputed = recompute_if_due(engine, at=at, config=config, models=models)
    with session_scope(engine) as session:
        evaluate_alerts(session, at=at, config=config, report=report)
    with session_scope(engine) as session:
        renewal_reminders(session, at=at, config=config, report=report)
    with session_scope(engine) as session:
        qbr_preps(session, at=at, config=config, models=models, report=report)
    with session_scope(engine) as session:
        daily_digests(session, at=at, config=config, report=report)
    with session_scope(engine) as session:
        manager_digests(session, at=at, config=config, report=report)
    logger.info("%s", report.summary())
    return report
