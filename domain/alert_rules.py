"""Risk alert rules: which events deserve an alert, and whether cooldown, snooze or ack keeps it quiet."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from domain.forecast import describe
from domain.numbers import format_score, round_half_away

BAND_RANK = {"green": 0, "insufficient": 0, "amber": 1, "red": 2}

# Kinds, in the words the alert cards use.
BAND_CHANGE = "band_change"
SCORE_DROP = "score_drop"
FORECAST_RED = "forecast_red"
NPS_DETRACTOR = "nps_detractor"
MILESTONE_OVERDUE = "milestone_overdue"
ESCALATION_SLA = "escalation_sla"
ESCALATION_OPENED = "escalation_opened"
KINDS = (
    BAND_CHANGE,
    SCORE_DROP,
    FORECAST_RED,
    NPS_DETRACTOR,
    MILESTONE_OVERDUE,
    ESCALATION_SLA,
    ESCALATION_OPENED,
)
# Escalations of this severity are news the moment they are opened, not only when an SLA lapses.
OPENED_ALERT_SEVERITIES = frozenset({"sev1"})
# Kinds about the account as a whole: an acknowledgement covers the next ones too. Item kinds
# (one survey answer, one milestone, one escalation) are separate news each time.
ACCOUNT_KINDS = frozenset({BAND_CHANGE, SCORE_DROP, FORECAST_RED})


@dataclass(frozen=True)
class AlertThresholds:
    """Everything a team may tune. Cooldowns are per account and kind, in days.

    Attributes:
        drop_points: a fall of at least this many points ...
        drop_window_days: ... within this many days raises a score-drop alert.
        forecast_days: a forecast to turn red within this many days raises an alert.
        detractor_max: NPS answers at or below this are detractors (0-6 by the formula).
        lookback_days: events older than this are history, not news (no floods on first run).
        cooldown_days: per kind; a new alert of the same kind and no higher severity waits this long.
        ack_quiet_days: after an acknowledgement, same-or-lower severity stays quiet this long.
    """

    drop_points: float = 10.0
    drop_window_days: int = 7
    forecast_days: int = 14
    detractor_max: int = 6
    lookback_days: int = 3
    cooldown_days: dict[str, float] = field(
        default_factory=lambda: {
            BAND_CHANGE: 3,
            SCORE_DROP: 7,
            FORECAST_RED: 7,
            NPS_DETRACTOR: 0,
            MILESTONE_OVERDUE: 0,
            ESCALATION_SLA: 0,
            ESCALATION_OPENED: 0,
        }
    )
    ack_quiet_days: float = 14


@dataclass(frozen=True)
class Snapshot:
    day: date
    score: float | None
    band: str
    forecast_red_in_days: int | None = None
    forecast_red_earliest: int | None = None
    forecast_red_latest: int | None = None
    forecast_status: str | None = None


@dataclass(frozen=True)
class MilestoneFact:
    id: int
    title: str
    due_date: date | None
    status: str


@dataclass(frozen=True)
class SurveyFact:
    id: int
    kind: str
    score: int
    responded_on: date
    respondent: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class EscalationFact:
    id: int
    title: str
    severity: str
    status: str
    ack_due_at: datetime | None
    resolve_due_at: datetime | None
    opened_at: datetime | None = None


@dataclass(frozen=True)
class AccountFacts:
    """What the rules may look at for one account; snapshots keyed by day."""

    account_id: int
    snapshots: dict[date, Snapshot] = field(default_factory=dict)
    milestones: Sequence[MilestoneFact] = ()
    surveys: Sequence[SurveyFact] = ()
    escalations: Sequence[EscalationFact] = ()


@dataclass(frozen=True)
class AlertEvent:
    """Something that happened to an account; event_key names it uniquely and forever."""

    account_id: int
    kind: str
    event_key: str
    severity: int
    title: str
    details: dict[str, Any]


@dataclass(frozen=True)
class PriorAlert:
    """An alert already raised for the same account and kind (suppressed ones excluded)."""

    severity: int
    fired_at: datetime
    acknowledged_at: datetime | None = None
    snoozed_until: datetime | None = None


def _drop(facts: AccountFacts, day: date, window: int) -> float | None:
    now = facts.snapshots.get(day)
    past = facts.snapshots.get(day - timedelta(days=window))
    if now is None or past is None or now.score is None or past.score is None:
        return None
    return now.score - past.score


def _forecast_hit(snap: Snapshot | None, days: int) -> bool:
    return (
        snap is not None
        and snap.band != "red"
        and snap.forecast_red_in_days is not None
        and snap.forecast_red_in_days <= days
    )


def evaluate(
    facts: AccountFacts,
    *,
    day: date,
    now: datetime,
    thresholds: AlertThresholds,
    today: date | None = None,
) -> list[AlertEvent]:
    """The events of one account on ``day`` (the newest snapshot day), each a transition.

    Health rules compare ``day`` with the day before, so a state that merely persists raises
    nothing. Item rules (surveys, milestones, escalations) raise one event per item, and only for
    items that turned bad within ``lookback_days`` of ``today`` (default: ``day``).
    """
    events: list[AlertEvent] = []
    aid = facts.account_id
    latest = facts.snapshots.get(day)
    previous = facts.snapshots.get(day - timedelta(days=1))
    t = thresholds

    if latest is not None and previous is not None:
        rank_now, rank_before = BAND_RANK.get(latest.band, 0), BAND_RANK.get(previous.band, 0)
        if rank_now > rank_before and latest.band in ("amber", "red"):
            events.append(
                AlertEvent(
                    aid,
                    BAND_CHANGE,
                    f"{BAND_CHANGE}:{aid}:{day.isoformat()}",
                    severity=2 if latest.band == "amber" else 3,
                    title=f"Health turned {latest.band}",
                    details={
                        "from_band": previous.band,
                        "to_band": latest.band,
                        "from_score": previous.score,
                        "to_score": latest.score,
                    },
                )
            )

    if latest is not None:
        drop_now = _drop(facts, day, t.drop_window_days)
        drop_before = _drop(facts, day - timedelta(days=1), t.drop_window_days)
        if (
            drop_now is not None
            and drop_now <= -t.drop_points
            and not (drop_before is not None and drop_before <= -t.drop_points)
        ):
            events.append(
                AlertEvent(
                    aid,
                    SCORE_DROP,
                    f"{SCORE_DROP}:{aid}:{day.isoformat()}",
                    severity=2,
                    title=f"Health fell {format_score(abs(drop_now))} points in "
                    f"{t.drop_window_days} days",
                    details={"change": round_half_away(drop_now), "days": t.drop_window_days},
                )
            )

        if _forecast_hit(latest, t.forecast_days) and not _forecast_hit(previous, t.forecast_days):
            events.append(
                AlertEvent(
                    aid,
                    FORECAST_RED,
                    f"{FORECAST_RED}:{aid}:{day.isoformat()}",
                    severity=2,
                    # The same phrase as the card: a range when the trend is uncertain.
                    title=describe(
                        latest.forecast_status,
                        latest.forecast_red_in_days,
                        latest.forecast_red_earliest,
                        latest.forecast_red_latest,
                    ).capitalize(),
                    details={
                        "days": latest.forecast_red_in_days,
                        "earliest": latest.forecast_red_earliest,
                        "latest": latest.forecast_red_latest,
                        "band": latest.band,
                    },
                )
            )

    today = today or day
    oldest = today - timedelta(days=t.lookback_days)
    for s in facts.surveys:
        if s.kind == "nps" and s.score <= t.detractor_max and oldest <= s.responded_on <= today:
            events.append(
                AlertEvent(
                    aid,
                    NPS_DETRACTOR,
                    f"{NPS_DETRACTOR}:{s.id}",
                    severity=2,
                    title=f"NPS detractor: {s.score}/10",
                    details={
                        "score": s.score,
                        "respondent": s.respondent,
                        "comment": s.comment,
                        "responded_on": s.responded_on.isoformat(),
                    },
                )
            )

    for m in facts.milestones:
        # Overdue from the day after its due date; a moved due date is a new event.
        if m.due_date is None or m.status == "done":
            continue
        if oldest <= m.due_date + timedelta(days=1) <= today:
            events.append(
                AlertEvent(
                    aid,
                    MILESTONE_OVERDUE,
                    f"{MILESTONE_OVERDUE}:{m.id}:{m.due_date.isoformat()}",
                    severity=1,
                    title=f"Milestone overdue: {m.title}",
                    details={
                        "milestone_id": m.id,
                        "milestone": m.title,
                        "due_date": m.due_date.isoformat(),
                        "status": m.status,
                    },
                )
            )

    since = now - timedelta(days=t.lookback_days)
    for e in facts.escalations:
        if (
            e.severity in OPENED_ALERT_SEVERITIES
            and e.opened_at is not None
            and since <= e.opened_at <= now
        ):
            events.append(
                AlertEvent(
                    aid,
                    ESCALATION_OPENED,
                    f"{ESCALATION_OPENED}:{e.id}",
                    severity=3,
                    title=f"{e.severity.capitalize()} escalation opened: {e.title}",
                    details={
                        "escalation_id": e.id,
                        "escalation": e.title,
                        "severity": e.severity,
                        "opened_at": e.opened_at.isoformat(),
                    },
                )
            )
        breaches = []
        if e.status == "open" and e.ack_due_at is not None:
            breaches.append(("ack", e.ack_due_at))
        if e.status != "resolved" and e.resolve_due_at is not None:
            breaches.append(("resolve", e.resolve_due_at))
        for which, due in breaches:
            if since <= due < now:
                events.append(
                    AlertEvent(
                        aid,
                        ESCALATION_SLA,
                        f"{ESCALATION_SLA}:{e.id}:{which}",
                        severity=3,
                        title=f"Escalation past its {which} SLA: {e.title}",
                        details={
                            "escalation_id": e.id,
                            "escalation": e.title,
                            "severity": e.severity,
                            "sla": which,
                            "due_at": due.isoformat(),
                        },
                    )
                )
    return events


def quiet_reason(
    event: AlertEvent,
    prior: Iterable[PriorAlert],
    *,
    now: datetime,
    thresholds: AlertThresholds,
) -> str | None:
    """Why this event should stay quiet ("snoozed", "acknowledged", "cooldown"), or None to fire.

    A more severe event than anything recent always fires: amber->red must not wait for the amber
    alert's cooldown.
    """
    cooldown = timedelta(days=thresholds.cooldown_days.get(event.kind, 0))
    ack_quiet = timedelta(days=thresholds.ack_quiet_days)
    reasons: list[str] = []
    for p in prior:
        if p.snoozed_until is not None and now < p.snoozed_until:
            return "snoozed"
        if event.severity > p.severity:
            continue
        if (
            event.kind in ACCOUNT_KINDS
            and p.acknowledged_at is not None
            and now < p.acknowledged_at + ack_quiet
        ):
            reasons.append("acknowledged")
        elif cooldown and now < p.fired_at + cooldown:
            reasons.append("cooldown")
    return reasons[0] if reasons else None
