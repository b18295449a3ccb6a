"""Changes asked for in words ask first: what will change, a confirm (once), the same rights as the buttons."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.console import ConsoleChat
from handlers import actions
from handlers.context import Actor, ChatContext
from handlers.errors import PermissionDenied
from storage.models import CSM, Account, Escalation, Milestone

DANA, MARCO = "dana@example.com", "marco@example.com"


def ctx_of(session: Session, email: str, thread: str = "t1") -> ChatContext:
    from datetime import date

    csm = session.exec(select(CSM).where(CSM.email == email)).one()
    actor = Actor(csm_id=csm.id, name=csm.name, email=csm.email, role=csm.role)
    return ChatContext(platform="console", actor=actor, today=date(2026, 11, 23), thread_key=thread)


def acme_milestone(session: Session) -> Milestone:
    acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
    return session.exec(
        select(Milestone)
        .where(Milestone.account_id == acme.id, Milestone.status != "done")
        .order_by(Milestone.id)
    ).first()


def test_mark_a_milestone_done_shows_the_change_then_does_it_once(demo_container) -> None:
    with Session(demo_container.engine) as session:
        milestone = acme_milestone(session)
        title, before = milestone.title, milestone.status
    chat = ConsoleChat(demo_container, DANA)
    asked = chat.ask_json(f"mark the acme {title.lower()} done")
    assert asked["intent"] == "success_plan"
    assert asked["reply"]["template"] == "action_confirm"
    assert asked["rendered"].startswith(f"Mark “{title}” (Acme Corp) done?")
    changes = {c["label"]: c["value"] for c in asked["reply"]["context"]["changes"]}
    assert changes["Status"].endswith("→ Done")
    with Session(demo_container.engine) as session:
        assert session.get(Milestone, milestone.id).status == before  # nothing yet
    done = chat.ask_json("yes")
    assert done["reply"]["template"] == "success_plan"
    with Session(demo_container.engine) as session:
        assert session.get(Milestone, milestone.id).status == "done"


def test_a_confirm_runs_once_however_often_it_is_clicked(demo_container) -> None:
    engine = demo_container.engine
    with Session(engine) as session:
        ctx = ctx_of(session, DANA)
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        asked = actions.draft_escalation(
            session, ctx=ctx, account_id=acme.id, severity="sev2", title="Exports failing"
        )
        key = asked.context["key"]
        before = len(session.exec(select(Escalation)).all())
        session.commit()
    for _ in range(3):
        with Session(engine) as session:
            reply = actions.confirm(session, ctx=ctx_of(session, DANA), key=key)
            session.commit()
    with Session(engine) as session:
        assert len(session.exec(select(Escalation)).all()) == before + 1
    assert reply.template == "notice" and "Already done" in reply.text


def test_someone_who_may_not_change_it_is_refused_before_any_confirm(demo_container) -> None:
    with Session(demo_container.engine) as session:
        dana_escalation = session.exec(
            select(Escalation)
            .join(Account)
            .where(Account.name == "Acme Corp", Escalation.status == "open")
        ).first()
        assert dana_escalation is not None
        try:
            actions.escalation_change(
                session,
                ctx=ctx_of(session, MARCO),
                escalation_id=dana_escalation.id,
                to="acknowledged",
            )
        except PermissionDenied as refused:
            assert "Only Dana Whitfield" in refused.message
        else:
            raise AssertionError("Marco may not acknowledge Dana's escalation")
    out = ConsoleChat(demo_container, MARCO).ask_json(f"ack escalation {dana_escalation.id}")
    assert out["reply"]["template"] == "error" and "Only Dana Whitfield" in out["rendered"]


def test_a_confirm_clicked_by_someone_else_uses_their_rights(demo_container) -> None:
    with Session(demo_container.engine) as session:
        escalation = session.exec(
            select(Escalation)
            .join(Account)
            .where(Account.name == "Acme Corp", Escalation.status == "open")
        ).first()
        escalation_id = escalation.id
        asked = actions.escalation_change(
            session, ctx=ctx_of(session, DANA), escalation_id=escalation_id, to="acknowledged"
        )
        session.commit()
    with Session(demo_container.engine) as session:
        try:
            actions.confirm(session, ctx=ctx_of(session, MARCO), key=asked.context["key"])
        except PermissionDenied:
            session.rollback()  # the unit of work rolls back: the claim too
        else:
            raise AssertionError("the existing handler's rule applies to whoever confirms")
    with Session(demo_container.engine) as session:
        assert session.get(Escalation, escalation_id).status == "open"
        reply = actions.confirm(session, ctx=ctx_of(session, DANA), key=asked.context["key"])
        session.commit()
        assert reply.template == "escalation"
        assert session.get(Escalation, escalation_id).status == "acknowledged"


def test_ack_and_resolve_in_words(demo_container) -> None:
    with Session(demo_container.engine) as session:
        escalation = session.exec(
            select(Escalation)
            .join(Account)
            .where(Account.name == "Acme Corp", Escalation.status == "open")
        ).first()
    chat = ConsoleChat(demo_container, DANA)
    asked = chat.ask_json(f"ack escalation {escalation.id}")
    assert asked["intent"] == "escalate" and asked["reply"]["template"] == "action_confirm"
    assert "open → acknowledged" in asked["rendered"]
    assert chat.ask_json("yes")["reply"]["template"] == "escalation"
    again = chat.ask_json(f"ack escalation {escalation.id}")
    assert "already acknowledged" in again["rendered"]
    resolve = chat.ask_json(f"resolve escalation {escalation.id}")
    assert "acknowledged → resolved" in resolve["rendered"]
    assert chat.ask_json("cancel")["rendered"].startswith("Cancelled")
    with Session(demo_container.engine) as session:
        assert session.get(Escalation, escalation.id).status == "acknowledged"


def test_an_unknown_escalation_number_is_said_plainly(demo_container) -> None:
    out = ConsoleChat(demo_container, DANA).ask_json("resolve escalation 999")
    assert out["reply"]["template"] == "error" and "no escalation #999" in out["rendered"]


def test_an_expired_or_unknown_confirmation_changes_nothing(demo_container) -> None:
    with Session(demo_container.engine) as session:
        reply = actions.confirm(session, ctx=ctx_of(session, DANA), key="action:doesnotexist")
        assert reply.template == "notice" and "expired" in reply.text
        assert (
            actions.confirm(session, ctx=ctx_of(session, DANA), key="garbage").template == "notice"
        )
