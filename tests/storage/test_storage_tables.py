"""Every table round-trips through the models, with its constraints enforced, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from storage.bulk import wipe_all
from storage.models import (
    CSM,
    QBR,
    Account,
    AuditLog,
    ConversationState,
    Escalation,
    EscalationEvent,
    HealthSnapshot,
    IndicatorReading,
    Milestone,
    MilestoneEvent,
    Objective,
    Renewal,
    Stakeholder,
    SuccessPlan,
    SurveyResponse,
)

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
TODAY = date(2026, 11, 23)


def _csm(email: str = "dana@example.com", **extra: object) -> CSM:
    return CSM(name="Dana Whitfield", email=email, created_at=AT, **extra)


def _account(owner_id: int | None, external_id: str = "ACC-1", **extra: object) -> Account:
    return Account(
        external_id=external_id,
        name="Acme Corp",
        aliases=["Acme", "ACME Corporation"],
        owner_id=owner_id,
        created_at=AT,
        updated_at=AT,
        **extra,
    )


def _seed(engine: Engine) -> tuple[int, int]:
    """A CSM and an account; returns their ids."""
    with Session(engine) as s:
        csm = _csm(timezone="America/New_York", slack_user_id="U123")
        s.add(csm)
        s.flush()
        acc = _account(
            csm.id,
            segment="enterprise",
            arr=480_000.0,
            renewal_date=date(2027, 2, 6),
            licensed_seats=1200,
        )
        s.add(acc)
        s.commit()
        assert csm.id is not None and acc.id is not None
        return csm.id, acc.id


def test_people_accounts_and_stakeholders_round_trip(any_engine: Engine) -> None:
    csm_id, acc_id = _seed(any_engine)
    with Session(any_engine) as s:
        s.add(Stakeholder(account_id=acc_id, name="Kara Jensen", role="champion", title="COO"))
        s.commit()
    with Session(any_engine) as s:
        csm = s.get(CSM, csm_id)
        acc = s.get(Account, acc_id)
        assert csm is not None and acc is not None
        assert (csm.email, csm.timezone, csm.slack_user_id, csm.role) == (
            "dana@example.com",
            "America/New_York",
            "U123",
            "csm",
        )
        assert csm.created_at == AT
        assert acc.aliases == ["Acme", "ACME Corporation"]
        assert (acc.segment, acc.arr, acc.renewal_date, acc.licensed_seats) == (
            "enterprise",
            480_000.0,
            date(2027, 2, 6),
            1200,
        )
        people = s.exec(select(Stakeholder).where(Stakeholder.account_id == acc_id)).all()
        assert [(p.name, p.role, p.title) for p in people] == [("Kara Jensen", "champion", "COO")]


def test_readings_snapshots_and_json_columns_round_trip(any_engine: Engine) -> None:
    _, acc_id = _seed(any_engine)
    scores = {"product_usage": {"score": 61.2, "status": "fresh", "day": "2026-11-23"}}
    drivers = [{"key": "product_usage", "impact": 969.5, "label": "Active seats %"}]
    with Session(any_engine) as s:
        s.add(IndicatorReading(account_id=acc_id, indicator_key="nps", day=TODAY, value=-12.5))
        s.add(
            HealthSnapshot(
                account_id=acc_id,
                day=TODAY,
                score=64.3,
                band="amber",
                coverage=1.0,
                indicator_scores=scores,
                drivers=drivers,
                forecast_red_in_days=24,
                computed_at=AT,
            )
        )
        s.commit()
    with Session(any_engine) as s:
        reading = s.exec(select(IndicatorReading)).one()
        assert (reading.indicator_key, reading.day, reading.value, reading.source) == (
            "nps",
            TODAY,
            -12.5,
            "import",
        )
        snap = s.exec(select(HealthSnapshot)).one()
        assert snap.indicator_scores == scores
        assert snap.drivers == drivers
        assert (snap.score, snap.band, snap.forecast_red_in_days) == (64.3, "amber", 24)


def test_plans_renewals_qbrs_escalations_surveys_audit_round_trip(any_engine: Engine) -> None:
    csm_id, acc_id = _seed(any_engine)
    with Session(any_engine) as s:
        plan = SuccessPlan(account_id=acc_id, title="Acme success plan", created_at=AT)
        s.add(plan)
        s.flush()
        objective = Objective(
            plan_id=plan.id, title="Adoption", kpi="WAU", kpi_baseline=30, kpi_target=70
        )
        s.add(objective)
        s.flush()
        milestone = Milestone(
            objective_id=objective.id,
            account_id=acc_id,
            external_id="MS-1",
            title="Admin training",
            owner_id=csm_id,
            due_date=date(2026, 11, 2),
            status="at_risk",
            updated_at=AT,
        )
        s.add(milestone)
        s.flush()
        s.add(
            MilestoneEvent(
                milestone_id=milestone.id,
                actor_id=csm_id,
                at=AT,
                field="status",
                from_value="in_progress",
                to_value="at_risk",
            )
        )
        s.add(Renewal(account_id=acc_id, external_id="R-1", renewal_date=TODAY, arr=1.5e5))
        attendees = [{"name": "Kara Jensen", "role": "decision_maker"}]
        s.add(QBR(account_id=acc_id, scheduled_for=AT, attendees=attendees))
        esc = Escalation(account_id=acc_id, title="Exports fail", severity="sev1", opened_at=AT)
        s.add(esc)
        s.flush()
        s.add(EscalationEvent(escalation_id=esc.id, at=AT, kind="opened", to_value="open"))
        s.add(
            SurveyResponse(
                account_id=acc_id, external_id="S-1", kind="nps", score=9, responded_on=TODAY
            )
        )
        s.add(
            AuditLog(
                at=AT,
                action="import",
                entity="accounts",
                entity_id="accounts.csv",
                after={"inserted": 3, "nested": {"ok": True}},
            )
        )
        s.add(
            ConversationState(
                key="slack:C1:1700.1",
                intent="account_health",
                entities={"account": "acme"},
                updated_at=AT,
                expires_at=AT,
            )
        )
        s.commit()
    with Session(any_engine) as s:
        ms = s.exec(select(Milestone)).one()
        assert (ms.status, ms.due_date, ms.owner_id) == ("at_risk", date(2026, 11, 2), csm_id)
        event = s.exec(select(MilestoneEvent)).one()
        assert (event.from_value, event.to_value, event.at) == ("in_progress", "at_risk", AT)
        assert s.exec(select(Objective)).one().kpi_target == 70
        assert s.exec(select(Renewal)).one().status == "open"
        assert s.exec(select(QBR)).one().attendees == attendees
        assert s.exec(select(Escalation)).one().status == "open"
        assert s.exec(select(EscalationEvent)).one().kind == "opened"
        assert s.exec(select(SurveyResponse)).one().score == 9
        assert s.exec(select(AuditLog)).one().after == {"inserted": 3, "nested": {"ok": True}}
        state = s.get(ConversationState, "slack:C1:1700.1")
        assert state is not None and state.entities == {"account": "acme"}


def test_unique_constraints(any_engine: Engine) -> None:
    csm_id, acc_id = _seed(any_engine)
    with Session(any_engine) as s:
        plan = SuccessPlan(account_id=acc_id, title="p", created_at=AT)
        s.add(plan)
        s.flush()
        obj = Objective(plan_id=plan.id, title="o")
        s.add(obj)
        s.commit()
        objective_id = obj.id

    makers = {
        "one reading per account, indicator and day": lambda: IndicatorReading(
            account_id=acc_id, indicator_key="nps", day=TODAY, value=1
        ),
        "one snapshot per account and day": lambda: HealthSnapshot(
            account_id=acc_id, day=TODAY, band="green", computed_at=AT
        ),
        "csm email": lambda: _csm("marco@example.com"),
        "account external id": lambda: _account(csm_id, external_id="ACC-2"),
        "milestone external id": lambda: Milestone(
            objective_id=objective_id,
            account_id=acc_id,
            external_id="MS-9",
            title="m",
            updated_at=AT,
        ),
    }
    for what, make in makers.items():
        with Session(any_engine) as s:
            s.add(make())
            s.commit()
        with Session(any_engine) as s:
            s.add(make())
            with pytest.raises(IntegrityError):
                s.commit()
                pytest.fail(f"a second row was accepted: {what}")


def test_foreign_keys_are_enforced(any_engine: Engine) -> None:
    csm_id, acc_id = _seed(any_engine)
    cases = [
        IndicatorReading(account_id=acc_id + 100, indicator_key="nps", day=TODAY, value=1),
        _account(csm_id + 100, external_id="ACC-X"),
        HealthSnapshot(account_id=acc_id + 100, day=TODAY, band="red", computed_at=AT),
        Milestone(objective_id=999, account_id=acc_id, title="orphan", updated_at=AT),
    ]
    for row in cases:
        with Session(any_engine) as s:
            s.add(row)
            with pytest.raises(IntegrityError):
                s.commit()


def test_wipe_all_empties_every_table_and_restarts_ids(any_engine: Engine) -> None:
    _seed(any_engine)
    with any_engine.begin() as conn:
        wipe_all(conn)
    csm_id, acc_id = _seed(any_engine)
    # Ids restart, so a reseeded demo hands out the same ids (Dana is always CSM 1).
    assert (csm_id, acc_id) == (1, 1)
