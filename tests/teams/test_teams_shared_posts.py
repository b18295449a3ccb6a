"""Scheduled posts and Teams conversations with people of another organisation: a summary that
names many customers never goes there; the account mapped to it still gets its own reminder
(docs/access.md, "Shared channels"). Through the real TeamsNotifier and the fake Bot Connector."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fake_connector import FakeConnector
from sqlmodel import Session, select
from teams_support import TENANT
from test_teams_notifier import CHANNEL, alert, installed, notifier  # noqa: F401

from bot.container import Container
from bot.teams.notifier import TeamsNotifier
from handlers.alerts import renewal_reminder, risk_summary_reply
from handlers.context import ChatContext
from handlers.reply import Reply
from scheduler.notifier import DeliveryError
from storage.models import Account, Renewal

TEAM = "19:zFLSDFWsesfzcmKArqKJ-65aOXJz@sgf462H2wz41@thread.tacv2"  # the capture's team


def with_a_guest(connector: FakeConnector) -> None:
    """The team's roster has someone from another tenant (and a guest) in it."""
    roster = [
        {"id": "29:ours", "name": "Ours", "tenantId": TENANT, "userRole": "user"},
        {"id": "29:theirs", "name": "Theirs", "tenantId": "other-tenant", "userRole": "user"},
        {"id": "29:guest", "name": "Guest", "tenantId": TENANT, "userRole": "guest"},
    ]
    for key in (CHANNEL, TEAM):
        connector.rosters[key] = roster


def reminder_for_the_mapped_account(container: Container) -> Reply:
    with Session(container.engine) as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        acme.teams_conversation_id = CHANNEL
        session.add(acme)
        session.commit()
        renewal = session.exec(select(Renewal).where(Renewal.account_id == acme.id)).first()
        assert renewal is not None and renewal.id is not None
        ctx = ChatContext(platform="scheduler", actor=_system(), today=container.today())
        return renewal_reminder(session, ctx=ctx, renewal_id=renewal.id)


def _system():  # type: ignore[no-untyped-def]
    from handlers.access import system_actor

    return system_actor()


def test_a_list_never_reaches_a_conversation_with_outsiders(
    installed: FakeConnector,  # noqa: F811
    notifier: TeamsNotifier,  # noqa: F811
    container: Container,
) -> None:
    with_a_guest(installed)
    summary = risk_summary_reply([], at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    for reply in (summary, alert()):
        with pytest.raises(DeliveryError) as refused:
            notifier.send(CHANNEL, reply)
        assert refused.value.permanent and "another organisation" in refused.value.reason
    assert installed.sent() == []

    # The account mapped to the conversation gets its own reminder there, once the admins allow
    # answers in shared channels (by default not even that).
    with pytest.raises(DeliveryError):
        notifier.send(CHANNEL, reminder_for_the_mapped_account(container))
    container.settings.shared_channel_answers = True
    notifier.send(CHANNEL, reminder_for_the_mapped_account(container))
    [posted] = installed.sent()
    assert posted.conversation_id == CHANNEL and "Acme Corp" in posted.body["summary"]
