"""SQLModel tables for the customer-success domain: people, accounts, health, plans, renewals, QBRs,
escalations, surveys, the audit log and the chat state the platforms need."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC timestamp; sqlmodel's UTCDateTime columns refuse naive datetimes."""
    return datetime.now(UTC)


class Table(SQLModel):
    """Base of the tables: pydantic builds a model's validators on first use, not at import,
    which takes a tenth off a one-shot `csm-bot ask`."""

    model_config = ConfigDict(defer_build=True)  # type: ignore[assignment]


# A viewer is internal staff who may read (design.md, "Who may see what").
ROLES = ("csm", "manager", "admin", "viewer")
LIFECYCLE_STAGES = ("onboarding", "adoption", "expansion", "renewal")
MILESTONE_STATUSES = ("not_started", "in_progress", "done", "at_risk", "blocked")
ESCALATION_SEVERITIES = ("sev1", "sev2", "sev3")
ESCALATION_STATUSES = ("open", "acknowledged", "resolved")
SURVEY_KINDS = ("nps", "csat", "ces")
STAKEHOLDER_ROLES = ("champion", "decision_maker", "sponsor", "user", "admin")
RENEWAL_STATUSES = ("open", "renewed", "churned")
# What one ARR change was (from the ARR before to the ARR after) and what caused it.
ARR_CHANGE_KINDS = ("new", "expansion", "contraction", "churn", "reactivation")
ARR_CHANGE_CAUSES = ("start", "renewal", "churn", "update")


class CSM(Table, table=True):
    """A customer success manager, team manager or admin, with their chat identities."""

    __tablename__ = "csm"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    email: str = Field(unique=True, index=True)
    role: str = Field(default="csm")
    manager_id: int | None = Field(default=None, foreign_key="csm.id")
    timezone: str = Field(default="UTC")
    digest_time: str = Field(default="08:30")
    digest_weekends: bool = Field(default=False)
    # Urgent alerts reach a person only within their working hours (local time, HH:MM); the
    # classes that interrupt them at all are ``interrupts`` (None = the defaults of
    # domain.notify_policy.ALERT_CLASSES).
    work_start: str = Field(default="09:00")
    work_end: str = Field(default="18:00")
    interrupts: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    slack_user_id: str | None = Field(default=None, unique=True, index=True)
    teams_user_id: str | None = Field(default=None, index=True)
    teams_aad_object_id: str | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Account(Table, table=True):
    """A customer: owner, segment, money, lifecycle and where its team talks about it."""

    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, index=True)
    name: str = Field(index=True)
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    owner_id: int | None = Field(default=None, foreign_key="csm.id", index=True)
    segment: str = Field(default="mid-market")
    tier: str | None = None
    arr: float = Field(default=0.0)
    lifecycle_stage: str = Field(default="adoption")
    start_date: date | None = None
    renewal_date: date | None = Field(default=None, index=True)
    churned_on: date | None = None
    licensed_seats: int | None = None
    slack_channel_id: str | None = Field(default=None, index=True)
    teams_conversation_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # Indexed: max(updated_at) is how the name index notices a rename without a table scan.
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class Stakeholder(Table, table=True):
    """A person on the customer's side (champion, decision maker, sponsor...)."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    name: str
    email: str | None = None
    title: str | None = None
    role: str = Field(default="user")


class IndicatorReading(Table, table=True):
    """One value of one health indicator for one account on one day."""

    __tablename__ = "indicator_reading"
    __table_args__ = (
        UniqueConstraint("account_id", "indicator_key", "day", name="uq_reading_day"),
        Index("ix_reading_account_key_day", "account_id", "indicator_key", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    indicator_key: str
    day: date
    value: float
    source: str = Field(default="import")
    note: str | None = None


class ArrChange(Table, table=True):
    """One change of an account's ARR: from ``day`` on, the account's ARR is ``arr``.

    Written only through storage.arr_history.record_arr_changes, which keeps one row per account
    and day, every row a real change (``previous_arr`` is the ARR the day before) and
    Account.arr equal to the newest ARR above zero.
    """

    __tablename__ = "arr_change"
    __table_args__ = (UniqueConstraint("account_id", "day", name="uq_arr_change_day"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    day: date
    arr: float
    previous_arr: float = 0.0
    kind: str  # ARR_CHANGE_KINDS, from previous_arr and arr
    cause: str = "update"  # ARR_CHANGE_CAUSES
    source: str = "import"  # the channel: import, api, demo, backfill, a sync adapter...
    renewal_id: int | None = Field(default=None, foreign_key="renewal.id")
    note: str | None = None
    recorded_at: datetime = Field(default_factory=utcnow)


class HealthSnapshot(Table, table=True):
    """The health of an account as computed for one day (score None means insufficient data)."""

    __tablename__ = "health_snapshot"
    __table_args__ = (UniqueConstraint("account_id", "day", name="uq_snapshot_day"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    day: date = Field(index=True)
    score: float | None = None
    band: str = Field(index=True)
    coverage: float = 0.0
    model_name: str = "default"
    indicator_scores: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    drivers: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    forecast_red_in_days: int | None = None
    # The forecast's range (earliest/latest red day) and its status (red, no_red, no_trend...).
    forecast_red_earliest: int | None = None
    forecast_red_latest: int | None = None
    forecast_status: str | None = None
    computed_at: datetime = Field(default_factory=utcnow)


class SuccessPlan(Table, table=True):
    """An account's success plan: the outcomes the customer bought the product for."""

    __tablename__ = "success_plan"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    title: str
    created_at: datetime = Field(default_factory=utcnow)


class Objective(Table, table=True):
    """One objective of a success plan, optionally tied to a KPI target."""

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="success_plan.id", index=True)
    title: str
    kpi: str | None = None
    kpi_baseline: float | None = None
    kpi_target: float | None = None
    kpi_current: float | None = None
    kpi_unit: str | None = None
    position: int = 0


class Milestone(Table, table=True):
    """A dated step towards an objective, owned by someone, moved along with buttons."""

    id: int | None = Field(default=None, primary_key=True)
    objective_id: int = Field(foreign_key="objective.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    external_id: str | None = Field(default=None, unique=True, index=True)
    title: str
    owner_id: int | None = Field(default=None, foreign_key="csm.id")
    owner_name: str | None = None  # customer-side owners are not CSMs
    due_date: date | None = Field(default=None, index=True)
    status: str = Field(default="not_started", index=True)
    completed_on: date | None = None
    note: str | None = None
    position: int = 0
    # The objective's KPI value this milestone should reach by its due date (a "hurdle").
    kpi_target: float | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class KpiReading(Table, table=True):
    """One measurement of an objective's KPI on a day: the actuals a success plan is judged by."""

    __tablename__ = "kpi_reading"
    __table_args__ = (UniqueConstraint("objective_id", "day", name="uq_kpi_reading_day"),)

    id: int | None = Field(default=None, primary_key=True)
    objective_id: int = Field(foreign_key="objective.id", index=True)
    day: date
    value: float
    source: str = Field(default="import")


class MilestoneEvent(Table, table=True):
    """One change to a milestone: who, when, which field, from and to, and why."""

    __tablename__ = "milestone_event"

    id: int | None = Field(default=None, primary_key=True)
    milestone_id: int = Field(foreign_key="milestone.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="csm.id")
    actor_label: str = ""
    at: datetime = Field(default_factory=utcnow)
    field: str
    from_value: str | None = None
    to_value: str | None = None
    note: str | None = None


class Renewal(Table, table=True):
    """A contract end: when, for how much, how likely, and how it ended."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    external_id: str | None = Field(default=None, unique=True, index=True)
    renewal_date: date = Field(index=True)
    arr: float = 0.0
    likelihood: float | None = None  # 0..1
    status: str = Field(default="open", index=True)
    renewed_arr: float | None = None
    closed_on: date | None = None


class QBR(Table, table=True):
    """A scheduled quarterly business review."""

    __tablename__ = "qbr"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    scheduled_for: datetime = Field(index=True)
    title: str = "Quarterly business review"
    status: str = Field(default="scheduled")
    attendees: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )


class Escalation(Table, table=True):
    """A customer escalation, run as a thread, with SLA timers."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    title: str
    description: str | None = None
    severity: str = Field(default="sev2")
    status: str = Field(default="open", index=True)
    owner_id: int | None = Field(default=None, foreign_key="csm.id")
    opened_by_id: int | None = Field(default=None, foreign_key="csm.id")
    opened_at: datetime = Field(default_factory=utcnow)
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    ack_due_at: datetime | None = None
    resolve_due_at: datetime | None = None
    slack_channel_id: str | None = None
    slack_thread_ts: str | None = None
    # Teams: the conversation the card was posted in (a channel thread "<channel>;messageid=<root>"
    # or a chat) and the card's own activity id, so every update edits that card for everyone.
    teams_conversation_id: str | None = None
    teams_activity_id: str | None = None
    # The platform's own id of the request that opened it (Slack view/trigger/event id, Teams
    # activity): a retried or resubmitted request finds this row instead of opening a second one.
    origin_key: str | None = Field(default=None, unique=True, max_length=200)


class EscalationEvent(Table, table=True):
    """One update to an escalation (acknowledged, assigned, note, resolved)."""

    __tablename__ = "escalation_event"

    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalation.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="csm.id")
    actor_label: str = ""
    at: datetime = Field(default_factory=utcnow)
    kind: str
    from_value: str | None = None
    to_value: str | None = None
    note: str | None = None
    # As Escalation.origin_key: a resubmitted note modal adds its note once.
    origin_key: str | None = Field(default=None, unique=True, max_length=200)


class SurveyResponse(Table, table=True):
    """An NPS (0-10), CSAT (1-5) or CES (1-7) answer from someone at an account."""

    __tablename__ = "survey_response"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    external_id: str | None = Field(default=None, unique=True, index=True)
    kind: str = Field(index=True)
    score: int
    respondent: str | None = None
    responded_on: date = Field(index=True)
    comment: str | None = None


class AuditLog(Table, table=True):
    """Who changed what, when, from where: every write made through chat, API or import."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="csm.id")
    actor_label: str = ""
    source: str = "console"
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class ConversationState(Table, table=True):
    """What the last turn of a thread or DM was about, so follow-ups can use it; expires."""

    __tablename__ = "conversation_state"

    key: str = Field(primary_key=True)  # platform:channel:thread
    intent: str | None = None
    account_id: int | None = None
    entities: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
