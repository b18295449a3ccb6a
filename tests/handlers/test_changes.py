"""Writes through handlers: milestone moves, edits, sentiment, settings, escalations — with permissions and audit."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from bot.container import Container
from handlers import escalations, plan, settings
from handlers.accounts import resolve_account
from handlers.context import Actor, ChatContext
from handlers.errors import PermissionDenied, ValidationFailed
from handlers.identity import actor_by_email, actor_for
from handlers.reply import Reply
from handlers.sentiment import set_sentiment
from storage.models import CSM, Account, AuditLog, IndicatorReading, Milestone, MilestoneEvent
from tests.conftest import DEMO_TODAY


def ctx_for(
    session: Session,
    email: str | None,
    *,
    external: bool = False,
    allowed: frozenset[int] = frozenset(),
) -> ChatContext:
    actor = actor_by_email(session, email) if email else None
    return ChatContext(
        platform="console",
        actor=actor or Actor(csm_id=None, name="stranger", role="unknown"),
        today=DEMO_TODAY,
        external=external,
        allowed_account_ids=allowed,
    )


def acme_milestone(session: Session) -> Milestone:
    acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
    return session.exec(
        select(Milestone).where(Milestone.account_id == acme.id, Milestone.status != "done")
    ).first()


def counts(session: Session) -> tuple[int, int]:
    return (
        session.exec(select(func.count(MilestoneEvent.id))).one(),
        session.exec(select(func.count(AuditLog.id))).one(),
    )


def test_owner_moves_milestone_and_it_is_audited(demo_container: Container) -> None:
    with demo_container.session() as session:
        milestone = acme_milestone(session)
        before = milestone.status
        reply = plan.set_milestone_status(
            session,
            ctx=ctx_for(session, "dana@example.com"),
            milestone_id=milestone.id,
            status="blocked",
            note="waiting on SSO",
        )
        assert reply.template == "success_plan"
        items = [
            m
            for o in reply.context["objectives"]
            for m in o["milestones"]
            if m["id"] == milestone.id
        ]
        assert items[0]["status"] == "blocked"
    with demo_container.session() as session:
        assert session.get(Milestone, milestone.id).status == "blocked"
        event = session.exec(
            select(MilestoneEvent).where(MilestoneEvent.milestone_id == milestone.id)
        ).one()
        assert (event.from_value, event.to_value, event.note) == (
            before,
            "blocked",
            "waiting on SSO",
        )
        audit = session.exec(select(AuditLog).where(AuditLog.action == "milestone.status")).one()
        assert audit.actor_label == "dana@example.com" and audit.after == {"status": "blocked"}


@pytest.mark.parametrize("email", ["marco@example.com", None])
def test_others_are_refused_and_nothing_changes(
    demo_container: Container, email: str | None
) -> None:
    with demo_container.session() as session:
        milestone = acme_milestone(session)
        status, before = milestone.status, counts(session)
        with pytest.raises(PermissionDenied) as refused:
            plan.set_milestone_status(
                session, ctx=ctx_for(session, email), milestone_id=milestone.id, status="done"
            )
        assert (
            "Nothing was changed" in refused.value.message
            or "don't know you" in refused.value.message
        )
    with demo_container.session() as session:
        assert session.get(Milestone, milestone.id).status == status
        assert counts(session) == before


def test_manager_and_admin_may_change(demo_container: Container) -> None:
    for email, status in (("alex@example.com", "at_risk"), ("admin@example.com", "in_progress")):
        with demo_container.session() as session:
            milestone = acme_milestone(session)
            plan.set_milestone_status(
                session, ctx=ctx_for(session, email), milestone_id=milestone.id, status=status
            )
        with demo_container.session() as session:
            assert session.get(Milestone, milestone.id).status == status


def test_edit_validates_every_field_and_changes_nothing_on_error(demo_container: Container) -> None:
    with demo_container.session() as session:
        milestone = acme_milestone(session)
        due = milestone.due_date
        with pytest.raises(ValidationFailed) as bad:
            plan.edit_milestone(
                session,
                ctx=ctx_for(session, "dana@example.com"),
                milestone_id=milestone.id,
                due_date="next tuesday",
                owner_email="ghost@nowhere.io",
                note="x" * 600,
            )
        assert set(bad.value.errors) == {"due_date", "owner", "note"}
    with demo_container.session() as session:
        assert session.get(Milestone, milestone.id).due_date == due


def test_edit_moves_due_date_and_owner(demo_container: Container) -> None:
    with demo_container.session() as session:
        milestone = acme_milestone(session)
        plan.edit_milestone(
            session,
            ctx=ctx_for(session, "dana@example.com"),
            milestone_id=milestone.id,
            due_date="2027-01-15",
            owner_email="Marco@Example.com",
            note="moved after kickoff",
        )
    with demo_container.session() as session:
        changed = session.get(Milestone, milestone.id)
        marco = session.exec(select(CSM).where(CSM.email == "marco@example.com")).one()
        assert changed.due_date.isoformat() == "2027-01-15" and changed.owner_id == marco.id
        fields = {
            e.field
            for e in session.exec(
                select(MilestoneEvent).where(MilestoneEvent.milestone_id == milestone.id)
            )
        }
        assert {"due_date", "owner_id", "note"} <= fields


def test_sentiment_rescores_the_card(demo_container: Container) -> None:
    with demo_container.session() as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        reply = set_sentiment(
            session,
            ctx=ctx_for(session, "dana@example.com"),
            models=demo_container.health_models,
            account_id=acme.id,
            value="red",
            reason="Champion left",
        )
        assert reply.context["sentiment"]["value"] == "red"
        assert reply.context["sentiment"]["reason"] == "Champion left"
        with pytest.raises(ValidationFailed):
            set_sentiment(
                session,
                ctx=ctx_for(session, "dana@example.com"),
                models=demo_container.health_models,
                account_id=acme.id,
                value="purple",
            )
        with pytest.raises(PermissionDenied):
            set_sentiment(
                session,
                ctx=ctx_for(session, "priya@example.com"),
                models=demo_container.health_models,
                account_id=acme.id,
                value="green",
            )
    with demo_container.session() as session:
        row = session.exec(
            select(IndicatorReading).where(
                IndicatorReading.account_id == acme.id,
                IndicatorReading.indicator_key == "csm_sentiment",
                IndicatorReading.day == DEMO_TODAY,
            )
        ).one()
        assert row.value == 1.0


def test_settings_validation(demo_container: Container) -> None:
    with demo_container.session() as session:
        ctx = ctx_for(session, "priya@example.com")
        with pytest.raises(ValidationFailed) as bad:
            settings.update_settings(session, ctx=ctx, digest_time="25:99", timezone="Mars/Olympus")
        assert set(bad.value.errors) == {"digest_time", "timezone"}
        reply = settings.update_settings(
            session, ctx=ctx, digest_time="7:05", timezone="Europe/Paris"
        )
        assert reply.context["csm"]["digest_time"] == "07:05"
        assert reply.context["csm"]["timezone"] == "Europe/Paris"


def test_escalation_lifecycle(demo_container: Container) -> None:
    with demo_container.session() as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        opened = escalations.open_escalation(
            session,
            ctx=ctx_for(session, "marco@example.com"),
            account_id=acme.id,
            severity="sev1",
            title="SSO outage",
        )
        esc_id = opened.context["escalation"]["id"]
        assert opened.context["escalation"]["status"] == "open"
        with pytest.raises(PermissionDenied):  # Marco opened it but does not own Acme
            escalations.acknowledge(
                session, ctx=ctx_for(session, "marco@example.com"), escalation_id=esc_id
            )
        escalations.acknowledge(
            session, ctx=ctx_for(session, "dana@example.com"), escalation_id=esc_id
        )
        done = escalations.resolve(
            session, ctx=ctx_for(session, "dana@example.com"), escalation_id=esc_id
        )
        assert done.context["escalation"]["status"] == "resolved"
        with pytest.raises(ValidationFailed):
            escalations.acknowledge(
                session, ctx=ctx_for(session, "dana@example.com"), escalation_id=esc_id
            )


def test_external_channel_shows_only_its_account(demo_container: Container) -> None:
    with demo_container.session() as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        ctx = ctx_for(session, "dana@example.com", external=True, allowed=frozenset({acme.id}))
        assert isinstance(
            resolve_account(session, ctx=ctx, intent="account_health", query="acme"), Account
        )
        other = resolve_account(session, ctx=ctx, intent="account_health", query="globex")
        assert isinstance(other, Reply) and other.template == "not_here"


def test_slack_identity_is_remembered_after_email_match(demo_container: Container) -> None:
    with demo_container.session() as session:
        first = actor_for(session, platform="slack", user_id="U123", email="DANA@example.com")
        assert first.known and first.email == "dana@example.com"
    with demo_container.session() as session:
        again = actor_for(session, platform="slack", user_id="U123")
        assert again.csm_id == first.csm_id
        stranger = actor_for(session, platform="slack", user_id="U999", email="x@other.org")
        assert not stranger.known
