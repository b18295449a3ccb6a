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

from sqlalchemy import and_, func, insert, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain import alert_rules as rules
from domain import notify_policy as policy
from domain.health_model import HealthModels
from handlers.alerts import (
    account_briefs,
    alert_lines,
    renewal_reminder_reply,
    risk_alert_reply,
    risk_summary_reply,
    urgent_alerts_reply,
)
from handlers.reply import Reply
from scheduler.builders import deferred
from scheduler.clock import as_utc
from scheduler.config import SchedulerConfig, parse_hhmm
from scheduler.models import Alert, Delivery, JobRun
from scheduler.outbox import OutboxItem, enqueue, existing_keys
from scheduler.routing import csm_target, targets, unowned_targets
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
    fallback: bool = True,
    admin_ids: tuple[int, ...] = (),
    routes: tuple[str, ...] | None = None,
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
            fallback=fallback,
            admin_ids=admin_ids,
            routes=routes,
        ):
            out.append(OutboxItem(kind, subject, target, period, platform, reply))
    if not out and account is not None and csm_id is None:
        logger.warning(
            "%s about %s (no owner) has nowhere to go: add an admin (csm-bot people add EMAIL "
            "--name NAME --role admin) or set CSM_SCHEDULER_UNOWNED_CHANNEL_SLACK/_TEAMS",
            kind,
            account.name,
        )
    return out


def _admin_ids(session: Session) -> tuple[int, ...]:
    """The admins, who hear about accounts nobody owns when no team channel is set for them."""
    return tuple(
        session.exec(select(CSM.id).where(CSM.role == "admin").order_by(col(CSM.id))).all()
    )


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


def _hour(at: datetime) -> str:
    return at.replace(minute=0, second=0, microsecond=0).isoformat()


def _first_time(session: Session, job: str, period: str, at: datetime) -> bool:
    """Claim (job, period) inside the caller's transaction; False when it was done already.

    The claim commits with the work it guards, so a failed run leaves it unclaimed, and of two
    leaders racing for it only one gets it (ON CONFLICT DO NOTHING).
    """
    claimed = session.execute(
        _insert_stmt(session, JobRun)
        .values(job=job, period=period, started_at=at, finished_at=at)
        .on_conflict_do_nothing(index_elements=["job", "period"])
        .returning(JobRun.id)
    ).scalar()
    return claimed is not None


def _health_facts(
    session: Session,
    facts: dict[int, dict[str, Any]],
    *,
    today: date,
    at: datetime,
    thresholds: rules.AlertThresholds,
) -> date:
    """Load the snapshots the health rules compare, unless they are unchanged since last time.

    Returns the newest snapshot day (today's may not be computed yet).
    """
    day = (
        session.exec(
            select(func.max(HealthSnapshot.day)).where(col(HealthSnapshot.day) <= today)
        ).first()
        or today
    )
    w = thresholds.drop_window_days
    days = sorted(
        {day, day - timedelta(days=1), day - timedelta(days=w), day - timedelta(days=w + 1)}
    )
    # A fingerprint of the newest day's rows (past days only change by backfill) says whether
    # anything was written since the rules last looked.
    count, newest = session.execute(
        select(func.count(), func.max(HealthSnapshot.computed_at)).where(HealthSnapshot.day == day)
    ).one()
    if not _first_time(session, "alerts_health", f"{day.isoformat()}:{count}:{newest}", at):
        return day
    rows = session.execute(
        select(
            HealthSnapshot.account_id,
            HealthSnapshot.day,
            HealthSnapshot.score,
            HealthSnapshot.band,
            HealthSnapshot.forecast_red_in_days,
            HealthSnapshot.forecast_red_earliest,
            HealthSnapshot.forecast_red_latest,
            HealthSnapshot.forecast_status,
        ).where(col(HealthSnapshot.day).in_(days))
    ).all()
    for aid, d, score, band, forecast, earliest, latest, status in rows:
        facts[aid]["snapshots"][d] = rules.Snapshot(
            d, score, band, forecast, earliest, latest, status
        )
    return day


def _item_facts(
    session: Session,
    facts: dict[int, dict[str, Any]],
    *,
    today: date,
    thresholds: rules.AlertThresholds,
) -> None:
    oldest = today - timedelta(days=thresholds.lookback_days)
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
            col(SurveyResponse.score) <= thresholds.detractor_max,
            col(SurveyResponse.responded_on) >= oldest,
            col(SurveyResponse.responded_on) <= today,
        )
    ).all():
        facts[s.account_id]["surveys"].append(
            rules.SurveyFact(s.id or 0, s.kind, s.score, s.responded_on, s.respondent, s.comment)
        )


def evaluate_alerts(
    session: Session, *, at: datetime, config: SchedulerConfig, report: RunReport
) -> None:
    """Raise alerts for transitions on the newest snapshot day; quiet ones are kept, not posted."""
    t = config.thresholds
    today = at.date()
    facts: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"snapshots": {}, "milestones": [], "surveys": [], "escalations": []}
    )
    # Health, survey and milestone facts change with imports, the nightly recompute and chat:
    # looked at once an hour. Escalation SLAs expire by the minute: looked at on every tick.
    day = today
    if _first_time(session, "alerts_hourly", _hour(at), at):
        day = _health_facts(session, facts, today=today, at=at, thresholds=t)
        _item_facts(session, facts, today=today, thresholds=t)
    for e in session.exec(select(Escalation).where(Escalation.status != "resolved")).all():
        facts[e.account_id]["escalations"].append(
            rules.EscalationFact(
                e.id or 0,
                e.title,
                e.severity,
                e.status,
                as_utc(e.ack_due_at) if e.ack_due_at else None,
                as_utc(e.resolve_due_at) if e.resolve_due_at else None,
                opened_at=as_utc(e.opened_at) if e.opened_at else None,
            )
        )
    if not facts:
        return
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
    routing = _alert_routing(session, {e.account_id for e in events}, today=today)
    fired: list[Alert] = []
    # Most severe first, so that one event of a day can quiet its weaker siblings of the same kind.
    for event in sorted(events, key=lambda e: (-e.severity, e.event_key)):
        key = (event.account_id, event.kind)
        reason = rules.quiet_reason(event, prior[key], now=at, thresholds=t)
        owner, interrupts, renews_soon = routing.get(event.account_id, (None, None, False))
        category = policy.classify(event.kind, event.details, renews_soon=renews_soon)
        if reason:
            delivery = None
        elif owner is None:
            delivery = "team"  # nobody to tell in person: the risk channel's summary carries it
        else:
            delivery = "urgent" if policy.is_urgent_for(category, interrupts) else "digest"
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
            "category": category,
            "delivery": delivery,
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
    _risk_summary(session, fired, at=at, config=config, report=report)
    if config.routes.get("risk_alert"):
        _alert_cards(session, fired, at=at, config=config, report=report)


def _alert_routing(
    session: Session, account_ids: set[int], *, today: date
) -> dict[int, tuple[int | None, list[str] | None, bool]]:
    """Per account: its owner, the owner's interrupting classes, and whether it renews soon."""
    if not account_ids:
        return {}
    rows = session.execute(
        select(Account.id, Account.owner_id, Account.lifecycle_stage, CSM.interrupts)
        .outerjoin(CSM, col(CSM.id) == col(Account.owner_id))
        .where(col(Account.id).in_(account_ids))
    ).all()
    renewing = set(
        session.exec(
            select(Renewal.account_id).where(
                col(Renewal.account_id).in_(account_ids),
                Renewal.status == "open",
                col(Renewal.renewal_date) >= today,
                col(Renewal.renewal_date) <= today + timedelta(days=policy.RENEWAL_WINDOW_DAYS),
            )
        ).all()
    )
    return {
        aid: (owner, interrupts, aid in renewing or stage == "renewal")
        for aid, owner, stage, interrupts in rows
    }


def _risk_summary(
    session: Session,
    fired: list[Alert],
    *,
    at: datetime,
    config: SchedulerConfig,
    report: RunReport,
) -> None:
    """One post in the risk channel for everything this run raised, worst first."""
    reply = risk_summary_reply(alert_lines(session, fired, at.date()), at=at)
    # Keyed by the run's first alert: two leaders racing never share a key, so neither summary
    # can swallow the other's alerts.
    subject = f"alerts:{min(a.id or 0 for a in fired)}"
    items = _items(
        "risk_summary", subject, at.date().isoformat(), reply, config=config, fallback=False
    )
    report.enqueued["risk_summary"] += enqueue(session, items, now=at)
    # Alerts on accounts nobody owns reach no one in person: whoever picks up unowned accounts
    # (their team channel, or the admins) gets the same summary of just those.
    unowned = [a for a in fired if a.delivery == "team"]
    if unowned:
        reply = risk_summary_reply(alert_lines(session, unowned, at.date()), at=at, unowned=True)
        admins = _admin_ids(session)
        unowned_items = [
            OutboxItem(
                "risk_summary",
                f"unowned:{min(a.id or 0 for a in unowned)}",
                target,
                at.date().isoformat(),
                platform,
                reply,
            )
            for platform in config.platforms
            for target in unowned_targets(platform=platform, config=config, admin_ids=admins)
        ]
        report.enqueued["risk_summary"] += enqueue(session, unowned_items, now=at)


def _alert_cards(
    session: Session,
    fired: list[Alert],
    *,
    at: datetime,
    config: SchedulerConfig,
    report: RunReport,
) -> None:
    """One card per alert, where CSM_SCHEDULER_ROUTE_RISK_ALERT asks for them (off by default)."""
    briefs = account_briefs(session, {a.account_id for a in fired}, at.date())
    accounts = {
        a.id: a
        for a in session.exec(
            select(Account).where(col(Account.id).in_({a.account_id for a in fired}))
        ).all()
    }
    admins = _admin_ids(session)
    items: list[OutboxItem] = []
    for alert in fired:
        account = accounts[alert.account_id]
        reply = risk_alert_reply(alert, briefs[alert.account_id])
        items += _items(
            "risk_alert",
            f"alert:{alert.id}",
            at.date().isoformat(),
            reply,
            config=config,
            account=account,
            csm_id=account.owner_id,
            fallback=False,
            admin_ids=admins if account.owner_id is None else (),
        )
    report.enqueued["risk_alert"] += enqueue(session, items, now=at)


# -- urgent alerts --------------------------------------------------------------------------


def _working_hours(session: Session, ids: Iterable[int]) -> dict[int, policy.WorkingHours]:
    """Each person's working hours (the columns only: this runs on every tick with news)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(CSM.id, CSM.work_start, CSM.work_end, CSM.timezone, CSM.digest_weekends).where(
            col(CSM.id).in_(wanted)
        )
    ).all()
    return {
        csm_id: policy.working_hours(start, end, tz, weekends)
        for csm_id, start, end, tz, weekends in rows
    }


def _stamp(session: Session, alert_ids: Iterable[int], carrier: str) -> list[int]:
    """Mark alerts as carried by ``carrier``; returns those this call got (another leader may
    have taken some in the meantime), so every alert reaches its owner once."""
    ids = sorted(set(alert_ids))
    if not ids:
        return []
    taken = session.execute(
        update(Alert)
        .where(col(Alert.id).in_(ids), col(Alert.delivered_in).is_(None))
        .values(delivered_in=carrier)
        .returning(Alert.id)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(r[0] for r in taken)


def urgent_batches(
    session: Session, *, at: datetime, config: SchedulerConfig, report: RunReport
) -> None:
    """Urgent alerts to their owner at once, one message per person per ``urgent_batch_minutes``,
    only within their working hours; outside them they wait (or ride in the digest, if it comes
    first: see daily_digests)."""
    routes = config.routes.get("urgent_alerts", ("csm_dm",))
    if not routes:
        return
    pending = session.execute(
        select(Alert.id, Account.owner_id)
        .join(Account, col(Account.id) == col(Alert.account_id))
        .where(
            col(Alert.delivered_in).is_(None),
            Alert.delivery == "urgent",
            Alert.status == "open",
            col(Account.owner_id).is_not(None),
        )
    ).all()
    if not pending:
        return
    by_owner: dict[int, list[int]] = defaultdict(list)
    for alert_id, owner in pending:
        by_owner[owner].append(alert_id)
    hours = _working_hours(session, by_owner)
    awake = [o for o in by_owner if o in hours and hours[o].contains(at)]
    if not awake:
        return
    last = dict(
        session.execute(
            select(Delivery.target, func.max(Delivery.created_at))
            .where(
                Delivery.kind == "urgent_alerts",
                col(Delivery.target).in_([csm_target(o) for o in awake]),
            )
            .group_by(Delivery.target)
        ).all()
    )
    gap = timedelta(minutes=config.urgent_batch_minutes)
    items: list[OutboxItem] = []
    for owner in awake:
        previous = last.get(csm_target(owner))
        if previous is not None and as_utc(previous) + gap > at:
            continue  # this hour's message went out already: these wait for the next one
        first = min(by_owner[owner])
        period = f"{at.strftime('%Y-%m-%dT%H:%MZ')}#{first}"
        taken = _stamp(session, by_owner[owner], f"urgent_alerts:{period}")
        if not taken:
            continue
        alerts = session.exec(select(Alert).where(col(Alert.id).in_(taken))).all()
        reply = urgent_alerts_reply(alert_lines(session, list(alerts), at.date()))
        items += _items("urgent_alerts", f"csm:{owner}", period, reply, config=config, csm_id=owner)
    if items:
        report.enqueued["urgent_alerts"] += enqueue(session, items, now=at)


# -- renewal reminders and QBR prep ---------------------------------------------------------

# Where a reminder or a QBR prep about an account nobody owns goes when the kind is not posted on
# its own (no owner's digest can carry it): the account's channel, and the unowned route of
# scheduler.routing (the team's channel for unowned accounts, or the admins).
UNOWNED_ROUTES = ("account_channel",)


def _near_offsets(
    column: Any,
    at: datetime,
    grace: timedelta,
    offsets: Iterable[int],
    *,
    instants: bool = False,
) -> Any:
    """Dates (or instants) whose reminder at some offset could be due at ``at``.

    A reminder fires on (date - offset) at a local time and stays due for ``grace``; a day of
    slack on each side covers every timezone. Only these rows are read on each tick.
    """
    low = (at - grace).date() - timedelta(days=1)
    high = at.date() + timedelta(days=1)
    ranges = []
    for offset in offsets:
        first, last = low + timedelta(days=offset), high + timedelta(days=offset)
        if instants:
            ranges.append(
                and_(
                    column >= datetime.combine(first, time(0), tzinfo=UTC) - timedelta(days=1),
                    column < datetime.combine(last, time(0), tzinfo=UTC) + timedelta(days=2),
                )
            )
        else:
            ranges.append(and_(column >= first, column <= last))
    return or_(*ranges)


def _notice_key(session: Session, at: datetime, notice_time: time) -> str:
    """The newest instant at or before ``at`` when something new can fall due: the notice time
    in some owner's zone, or else the top of the hour (data that changed since; a late run).

    Reminders are only looked for when this changes, not on every tick.
    """
    zones = set(session.exec(select(CSM.timezone).distinct()).all()) | {"UTC"}
    latest = datetime.fromisoformat(_hour(at))
    for tz in zones:
        local = local_date(at, tz)
        for d in (local, local - timedelta(days=1)):
            fire = fire_at(d, notice_time, tz)
            if fire <= at:
                latest = max(latest, fire)
                break
    return latest.isoformat()


def _zones(session: Session, owner_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in owner_ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(CSM.id, CSM.timezone).where(col(CSM.id).in_(ids))).all())


def renewal_reminders(
    session: Session, *, at: datetime, config: SchedulerConfig, report: RunReport
) -> None:
    """Reminders N days before each open renewal, at ``notice_time`` in the owner's zone.

    An owner's digest carries them; they are posted on their own where
    CSM_SCHEDULER_ROUTE_RENEWAL_REMINDER asks, and always for accounts nobody owns (no digest
    carries those: the team's channel for them or the admins pick them up).
    """
    own_posts = bool(config.routes.get("renewal_reminder"))
    if not config.renewal_offsets or not _first_time(
        session, "renewal_reminders", _notice_key(session, at, config.notice_time), at
    ):
        return
    grace = timedelta(days=config.catchup_days)
    # Light columns first: most ticks find every candidate already queued.
    stmt = (
        select(Renewal.id, Renewal.renewal_date, Account.owner_id)
        .join(Account, col(Account.id) == col(Renewal.account_id))
        .where(
            Renewal.status == "open",
            _near_offsets(col(Renewal.renewal_date), at, grace, config.renewal_offsets),
            col(Account.churned_on).is_(None),
        )
    )
    if not own_posts:
        stmt = stmt.where(col(Account.owner_id).is_(None))
    rows = session.execute(stmt).all()
    zones = _zones(session, (owner for _, _, owner in rows))
    due: dict[tuple[int, int], date] = {}
    for rid, renewal_date, owner in rows:
        tz = zones.get(owner, "UTC") if owner is not None else "UTC"
        for offset in config.renewal_offsets:
            fire = fire_at(renewal_date - timedelta(days=offset), config.notice_time, tz)
            if is_due(fire, at, grace):
                due[(rid, offset)] = local_date(at, tz)
    if not due:
        return
    sent = {
        (k[1], k[3])
        for k in existing_keys(
            session, "renewal_reminder", subjects=[f"renewal:{rid}" for rid, _ in due]
        )
    }
    due = {k: v for k, v in due.items() if (f"renewal:{k[0]}", f"{k[1]}d") not in sent}
    if not due:
        return
    loaded = {
        r.id: (r, a)
        for r, a in session.exec(
            select(Renewal, Account)
            .join(Account, col(Account.id) == col(Renewal.account_id))
            .where(col(Renewal.id).in_({rid for rid, _ in due}))
        ).all()
    }
    briefs = account_briefs(session, {a.id or 0 for _, a in loaded.values()}, at.date())
    admins = _admin_ids(session)
    items: list[OutboxItem] = []
    for (rid, offset), today in due.items():
        renewal, account = loaded[rid]
        reply = renewal_reminder_reply(renewal, briefs[account.id or 0], today=today, offset=offset)
        items += _items(
            "renewal_reminder",
            f"renewal:{rid}",
            f"{offset}d",
            reply,
            config=config,
            account=account,
            csm_id=account.owner_id,
            fallback=False,
            admin_ids=admins if account.owner_id is None else (),
            routes=None if own_posts else UNOWNED_ROUTES,
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
    """QBR prep digests N days before each scheduled QBR, at ``notice_time`` for the owner.

    Queued as a recipe (scheduler.builders): the prep itself is composed when it is sent. The
    owner's digest lists every prep due with a button that opens it; a prep is posted on its own
    where CSM_SCHEDULER_ROUTE_QBR_PREP asks, and always for accounts nobody owns.
    """
    own_posts = bool(config.routes.get("qbr_prep"))
    if not config.qbr_offsets:
        return
    if not _first_time(session, "qbr_preps", _notice_key(session, at, config.notice_time), at):
        return
    grace = timedelta(days=config.catchup_days)
    stmt = (
        select(QBR.id, QBR.scheduled_for, Account.id, Account.owner_id, Account.name)
        .join(Account, col(Account.id) == col(QBR.account_id))
        .where(
            QBR.status == "scheduled",
            col(Account.churned_on).is_(None),
            _near_offsets(col(QBR.scheduled_for), at, grace, config.qbr_offsets, instants=True),
        )
    )
    if not own_posts:
        stmt = stmt.where(col(Account.owner_id).is_(None))
    rows = session.execute(stmt).all()
    if not rows:
        return
    zones = _zones(session, (r[3] for r in rows))
    due = []
    for qid, scheduled_for, aid, owner, name in rows:
        tz = zones.get(owner, "UTC") if owner is not None else "UTC"
        meeting_day = as_utc(scheduled_for).astimezone(zone(tz)).date()
        for offset in config.qbr_offsets:
            fire = fire_at(meeting_day - timedelta(days=offset), config.notice_time, tz)
            if is_due(fire, at, grace):
                due.append((qid, aid, owner, name, offset, local_date(at, tz)))
    if not due:
        return
    sent = {
        (k[1], k[3])
        for k in existing_keys(session, "qbr_prep", subjects=[f"qbr:{d[0]}" for d in due])
    }
    due = [d for d in due if (f"qbr:{d[0]}", f"{d[4]}d") not in sent]
    if not due:
        return
    accounts = {
        a.id: a
        for a in session.exec(select(Account).where(col(Account.id).in_({d[1] for d in due})))
    }
    admins = _admin_ids(session)
    items: list[OutboxItem] = []
    # The first notice (14 days out by default) carries the draft deck; later ones remind.
    first_notice = max(config.qbr_offsets)
    for qid, aid, owner, name, offset, today in due:
        spec = {"kind": "qbr_prep", "account_id": aid, "csm_id": owner, "today": today.isoformat()}
        if offset == first_notice:
            spec["attach"] = "qbr_pack"
        reply = deferred("qbr_prep", spec, f"QBR prep for {name} ({offset} days before the QBR)")
        items += _items(
            "qbr_prep",
            f"qbr:{qid}",
            f"{offset}d",
            reply,
            config=config,
            account=accounts.get(aid),
            csm_id=owner,
            fallback=False,
            admin_ids=admins if owner is None else (),
            routes=None if own_posts else UNOWNED_ROUTES,
        )
    if items:
        report.enqueued["qbr_prep"] += enqueue(session, items, now=at)


# -- digests ---------------------------------------------------------------------------------


def _digest_time(value: str | None) -> time:
    try:
        return parse_hhmm(value or "08:30")
    except ValueError:
        return time(8, 30)


def daily_digests(
    session: Session, *, at: datetime, config: SchedulerConfig, report: RunReport
) -> None:
    """One digest per CSM at their local digest time, weekdays unless they asked for weekends."""
    grace = timedelta(hours=config.digest_grace_hours)
    people = session.execute(
        select(CSM.id, CSM.name, CSM.role, CSM.timezone, CSM.digest_time, CSM.digest_weekends)
    ).all()
    due: list[tuple[int, str, str, date]] = []
    latest = datetime.fromisoformat(_hour(at))
    for csm_id, name, role, tz, digest_time, weekends in people:
        today = local_date(at, tz)
        for day in (today, today - timedelta(days=1)):
            if day.weekday() >= 5 and not weekends:
                continue
            fire = fire_at(day, _digest_time(digest_time), tz)
            if is_due(fire, at, grace):
                due.append((csm_id, name, role, day))
                latest = max(latest, fire)
    # Looked at when a digest time has just passed (or once an hour for late changes).
    if not due or not _first_time(session, "daily_digests", latest.isoformat(), at):
        return
    others = [d[0] for d in due if d[2] != "csm"]
    owners = (
        set(
            session.exec(
                select(Account.owner_id).where(col(Account.owner_id).in_(others)).distinct()
            ).all()
        )
        if others
        else set()
    )
    # Managers and admins get one only if they own accounts themselves.
    due = [d for d in due if d[2] == "csm" or d[0] in owners]
    sent = {
        (k[1], k[3])
        for k in existing_keys(session, "daily_digest", subjects=[f"csm:{d[0]}" for d in due])
    }
    due = [d for d in due if (f"csm:{d[0]}", d[3].isoformat()) not in sent]
    if not due or not config.routes.get("daily_digest", ("csm_dm",)):
        return
    previous = _previous_digests(session, [d[0] for d in due])
    waiting = _undelivered_alerts(session, [d[0] for d in due])
    items: list[OutboxItem] = []
    for csm_id, name, _role, day in due:
        last = previous.get(csm_id)
        earliest = day - timedelta(days=max(config.digest_lookback_days, 1) - 1)
        # Everything since the previous digest (a Monday covers the weekend), never older.
        since = day if last is None else min(day, max(earliest, last + timedelta(days=1)))
        period = day.isoformat()
        alert_ids = _stamp(session, waiting.get(csm_id, []), f"daily_digest:{period}")
        reply = deferred(
            "daily_digest",
            {
                "kind": "daily_digest",
                "csm_id": csm_id,
                "today": period,
                "since": since.isoformat(),
                "alerts": alert_ids,
                "renewal_offsets": list(config.renewal_offsets),
                "qbr_offsets": list(config.qbr_offsets),
                # QBR prep posted on its own carries the deck; else the digest brings a few.
                "qbr_packs": 0 if config.routes.get("qbr_prep") else config.digest_qbr_packs,
            },
            f"Daily digest for {name} ({period})",
        )
        items += _items(
            "daily_digest", f"csm:{csm_id}", period, reply, config=config, csm_id=csm_id
        )
    if items:
        report.enqueued["daily_digest"] += enqueue(session, items, now=at)


def _previous_digests(session: Session, csm_ids: list[int]) -> dict[int, date]:
    """The day of each person's newest digest already in the outbox."""
    rows = session.execute(
        select(Delivery.subject, func.max(Delivery.period))
        .where(
            Delivery.kind == "daily_digest",
            col(Delivery.subject).in_([f"csm:{i}" for i in csm_ids]),
        )
        .group_by(Delivery.subject)
    ).all()
    out: dict[int, date] = {}
    for subject, period in rows:
        try:
            out[int(subject.split(":", 1)[1])] = date.fromisoformat(period)
        except ValueError:
            continue
    return out


def _undelivered_alerts(session: Session, csm_ids: list[int]) -> dict[int, list[int]]:
    """Alerts not yet carried to their owner: the digest's ones, and urgent ones still waiting
    (quiet hours, or the hourly slot was used): the digest takes them if it goes first."""
    rows = session.execute(
        select(Alert.id, Account.owner_id)
        .join(Account, col(Account.id) == col(Alert.account_id))
        .where(
            col(Alert.delivered_in).is_(None),
            col(Alert.delivery).in_(("digest", "urgent")),
            col(Account.owner_id).in_(csm_ids),
        )
    ).all()
    out: dict[int, list[int]] = defaultdict(list)
    for alert_id, owner in rows:
        out[owner].append(alert_id)
    return out


def manager_digests(
    session: Session, *, at: datetime, config: SchedulerConfig, report: RunReport
) -> None:
    """The weekly team digest, on ``manager_digest_weekday`` at each manager's digest time."""
    people = session.execute(
        select(CSM.id, CSM.name, CSM.role, CSM.timezone, CSM.digest_time, CSM.manager_id)
    ).all()
    with_reports = {p[5] for p in people if p[5] is not None}
    due: list[tuple[int, str, date, str]] = []
    latest = datetime.fromisoformat(_hour(at))
    for csm_id, name, role, tz, digest_time, _boss in people:
        if role != "manager" and csm_id not in with_reports:
            continue
        today = local_date(at, tz)
        day = today - timedelta(days=(today.weekday() - config.manager_digest_weekday) % 7)
        fire = fire_at(day, _digest_time(digest_time), tz)
        if is_due(fire, at, timedelta(days=1)):
            iso = day.isocalendar()
            due.append((csm_id, name, day, f"{iso.year}-W{iso.week:02d}"))
            latest = max(latest, fire)
    if not due or not _first_time(session, "manager_digests", latest.isoformat(), at):
        return
    sent = {
        (k[1], k[3])
        for k in existing_keys(session, "manager_digest", subjects=[f"manager:{d[0]}" for d in due])
    }
    items: list[OutboxItem] = []
    for manager_id, name, day, period in due:
        if (f"manager:{manager_id}", period) in sent:
            continue
        reply = deferred(
            "manager_digest",
            {"kind": "manager_digest", "csm_id": manager_id, "today": day.isoformat()},
            f"Weekly team digest for {name} ({period})",
        )
        items += _items(
            "manager_digest",
            f"manager:{manager_id}",
            period,
            reply,
            config=config,
            csm_id=manager_id,
            manager_id=manager_id,
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
    # After the digests: an urgent alert that waited through the night rides in the morning
    # digest when that comes first, rather than in a second message minutes later.
    with session_scope(engine) as session:
        urgent_batches(session, at=at, config=config, report=report)
    with session_scope(engine) as session:
        manager_digests(session, at=at, config=config, report=report)
    logger.info("%s", report.summary())
    return report
