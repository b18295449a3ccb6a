"""Small builders for hand-made portfolios, so each scheduler test states exactly the data it needs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import count
from typing import Any

from sqlmodel import Session

from storage.models import (
    CSM,
    QBR,
    Account,
    Escalation,
    HealthSnapshot,
    Milestone,
    Objective,
    Renewal,
    SuccessPlan,
    SurveyResponse,
)

_seq = count(1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def csm(session: Session, **kw: Any) -> CSM:
    n = next(_seq)
    row = CSM(name=kw.pop("name", f"Casey {n}"), email=kw.pop("email", f"c{n}@example.com"), **kw)
    row.created_at = utc(2026, 1, 1)
    session.add(row)
    session.flush()
    return row


def account(session: Session, owner: CSM | None, **kw: Any) -> Account:
    n = next(_seq)
    row = Account(
        external_id=kw.pop("external_id", f"T-{n}"),
        name=kw.pop("name", f"Account {n}"),
        owner_id=owner.id if owner else None,
        arr=kw.pop("arr", 100_000.0),
        **kw,
    )
    row.created_at = row.updated_at = utc(2026, 1, 1)
    session.add(row)
    session.flush()
    return row


def snapshot(
    session: Session,
    acct: Account,
    day: date,
    score: float | None,
    band: str,
    forecast: int | None = None,
) -> HealthSnapshot:
    row = HealthSnapshot(
        account_id=acct.id or 0,
        day=day,
        score=score,
        band=band,
        coverage=1.0,
        forecast_red_in_days=forecast,
        computed_at=utc(2026, 1, 1),
    )
    session.add(row)
    session.flush()
    return row


def renewal(session: Session, acct: Account, when: date, **kw: Any) -> Renewal:
    row = Renewal(account_id=acct.id or 0, renewal_date=when, arr=kw.pop("arr", acct.arr), **kw)
    session.add(row)
    session.flush()
    return row


def qbr(session: Session, acct: Account, when: datetime) -> QBR:
    row = QBR(account_id=acct.id or 0, scheduled_for=when)
    session.add(row)
    session.flush()
    return row


def milestone(session: Session, acct: Account, due: date, status: str = "in_progress") -> Milestone:
    plan = SuccessPlan(account_id=acct.id or 0, title="Plan", created_at=utc(2026, 1, 1))
    session.add(plan)
    session.flush()
    obj = Objective(plan_id=plan.id or 0, title="Objective")
    session.add(obj)
    session.flush()
    row = Milestone(
        objective_id=obj.id or 0,
        account_id=acct.id or 0,
        title=f"Milestone due {due.isoformat()}",
        due_date=due,
        status=status,
        updated_at=utc(2026, 1, 1),
    )
    session.add(row)
    session.flush()
    return row


def survey(session: Session, acct: Account, day: date, score: int) -> SurveyResponse:
    row = SurveyResponse(
        account_id=acct.id or 0, kind="nps", score=score, responded_on=day, respondent="Pat"
    )
    session.add(row)
    session.flush()
    return row


def escalation(session: Session, acct: Account, **kw: Any) -> Escalation:
    row = Escalation(account_id=acct.id or 0, title=kw.pop("title", "Outage"), **kw)
    row.opened_at = kw.get("opened_at") or utc(2026, 11, 20)
    session.add(row)
    session.flush()
    return row
