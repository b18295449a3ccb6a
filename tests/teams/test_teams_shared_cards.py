"""Risk-alert cards the scheduler posts are shared: a click edits every posted copy for everyone
(update_activity on the stored activity ids), and per-person views (refresh) show the buttons only
to those who may use them; a second clicker gets the card as it is now."""

from __future__ import annotations

from typing import Any

import pytest
from fake_connector import FakeConnector
from sqlmodel import Session, select
from starlette.testclient import TestClient
from teams_support import (
    CARD,
    CHANNEL,
    buttons,
    card_of,
    in_channel_thread,
    install_in_team,
    invoke,
    link,
    shown,
    teams_app,
)

from bot.container import Container
from bot.teams.notifier import TeamsNotifier
from handlers.alerts import account_briefs, risk_alert_reply
from scheduler.config import DEFAULT_ROUTES, SchedulerConfig
from scheduler.dispatcher import Dispatcher
from scheduler.models import Alert, Delivery
from scheduler.outbox import OutboxItem, enqueue
from scheduler.routing import targets
from storage.models import Account, AuditLog

DANA, ALEX, MARCO = "29:dana", "29:alex", "29:marco"


@pytest.fixture
def posted(client: TestClient, connector: FakeConnector, container: Container) -> dict[str, Any]:
    """A risk alert for Acme (mapped to CHANNEL) went out to the channel and to Dana's chat."""
    install_in_team(client, connector)
    dana_id = link(container, "dana@example.com", DANA)
    link(container, "alex@example.com", ALEX)
    link(container, "marco@example.com", MARCO)
    with Session(container.engine) as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        acme.teams_conversation_id = CHANNEL
        alert = Alert(
            account_id=acme.id or 0,
            kind="band_change",
            event_key="test:acme:band",
            title="Acme Corp turned red",
            severity=3,
        )
        session.add_all([acme, alert])
        session.commit()
        reply = risk_alert_reply(
            alert, account_briefs(session, [acme.id or 0], container.today())[acme.id or 0]
        )
        # Alert cards posted on their own (opt-in; by default alerts ride digests and batches).
        config = SchedulerConfig(
            platforms=("teams",),
            routes={**DEFAULT_ROUTES, "risk_alert": ("account_channel", "csm_dm", "risk_channel")},
        )
        where = targets("risk_alert", platform="teams", config=config, account=acme, csm_id=dana_id)
        items = [
            OutboxItem("risk_alert", f"alert:{alert.id}", t, "2026-11-23", "teams", reply)
            for t in where
        ]
        enqueue(session, items)
        session.commit()
        alert_id = alert.id
    assert where == [CHANNEL, f"csm:{dana_id}"]
    connector.calls.clear()
    notifier = TeamsNotifier(container, app=teams_app(container, connector))
    report = Dispatcher(container.engine, {"teams": notifier}, sleep=lambda _: None).dispatch_due()
    assert report.sent == 2, report
    with Session(container.engine) as session:
        ids = {
            d.target: d.message_id
            for d in session.exec(select(Delivery).where(Delivery.kind == "risk_alert")).all()
        }
    return {"alert_id": alert_id, "channel_card": ids[CHANNEL], "dm": f"csm:{dana_id}", "ids": ids}


def act(
    client: TestClient, connector: FakeConnector, verb: str, user: str, posted: dict[str, Any]
) -> dict[str, Any]:
    card_id = posted["channel_card"]
    body = invoke(
        connector,
        verb,
        {"alert_id": posted["alert_id"], "days": 7},
        user,
        conversation=in_channel_thread(card_id),
        reply_to=card_id,
    )
    answer = client.post("/api/messages", json=body).json()
    assert answer["statusCode"] == 200 and answer["type"] == CARD, answer
    return answer["value"]


def test_the_posted_alert_leaves_its_buttons_to_those_who_may_use_them(
    connector: FakeConnector, posted: dict[str, Any]
) -> None:
    channel_post = next(c for c in connector.calls if c.conversation_id == CHANNEL)
    card = card_of(channel_post)

    assert card["refresh"]["action"] == {
        "type": "Action.Execute",
        "title": "Refresh",
        "verb": "alert.view",
        "data": {"alert_id": posted["alert_id"]},
    }
    assert card["refresh"]["userIds"][:2] == [DANA, ALEX]  # the owner, then her manager
    assert MARCO not in card["refresh"]["userIds"]
    assert not buttons(card)


def test_per_person_views_show_buttons_only_to_those_who_may_act(
    client: TestClient, connector: FakeConnector, posted: dict[str, Any]
) -> None:
    dana = act(client, connector, "alert.view", DANA, posted)
    marco = act(client, connector, "alert.view", MARCO, posted)

    assert {"alert.acknowledge", "alert.snooze"} <= buttons(dana)
    assert not buttons(marco)
    assert "Only Dana Whitfield (the owner), their manager or an admin can" in shown(marco)


def test_two_clickers_one_change_every_copy_updated_for_everyone(
    client: TestClient, connector: FakeConnector, container: Container, posted: dict[str, Any]
) -> None:
    connector.calls.clear()

    first = act(client, connector, "alert.acknowledge", DANA, posted)
    edits = connector.updates()
    second = act(client, connector, "alert.acknowledge", ALEX, posted)

    # Every copy the scheduler posted (channel and Dana's chat) now says it, for everyone.
    assert {c.activity_id for c in edits} == set(posted["ids"].values())
    for call in edits:
        assert "Acknowledged by Dana Whitfield" in shown(card_of(call))
        assert not buttons(card_of(call))
    assert "Acknowledged by Dana Whitfield" in shown(first)
    # Alex clicked a second later: he sees who did it, not a bare notice, and nothing changes.
    assert "Acknowledged by Dana Whitfield" in shown(second) and "Acme Corp" in shown(second)
    assert "Acknowledged by Alex" not in shown(second)
    with Session(container.engine) as session:
        alert = session.get(Alert, posted["alert_id"])
        assert alert.status == "acknowledged"
        audits = session.exec(select(AuditLog).where(AuditLog.action == "alert.acknowledge")).all()
        assert len(audits) == 1 and audits[0].source == "teams"


def test_someone_we_do_not_know_cannot_read_an_alert_through_a_refresh(
    client: TestClient, connector: FakeConnector, posted: dict[str, Any]
) -> None:
    stranger = act(client, connector, "alert.view", "29:stranger", posted)

    assert "I can't show this alert here" in shown(stranger)
    assert "Acme" not in shown(stranger)
