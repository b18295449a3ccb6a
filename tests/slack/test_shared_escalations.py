"""Escalations are internal (severity, owner, notes, SLA): a Slack Connect channel never shows them,
not even those of the account mapped to it, and a click there cannot change one or make the
channel its thread (docs/access.md, "Shared channels")."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from bot.slack.app import SlackEdge
from storage.models import Account, Escalation, EscalationEvent, utcnow
from tests.slack.conftest import (
    ALEX,
    DANA,
    ack_json,
    block_actions_body,
    command_body,
    dispatch,
    event_body,
)
from tests.slack.fake_slack import FakeSlack

SECRET_TITLE = "Legal threatens to terminate over the outage"


@pytest.fixture
def escalation(edge: SlackEdge, fake: FakeSlack) -> int:
    """Globex is mapped to a Slack Connect channel and has an open, internal escalation."""
    fake.add_channel("CEXT", ext_shared=True)
    with Session(edge.services.container.engine) as session:
        globex = session.exec(select(Account).where(Account.name == "Globex")).one()
        globex.slack_channel_id = "CEXT"
        opened = Escalation(
            account_id=globex.id or 0,
            title=SECRET_TITLE,
            severity="sev1",
            status="open",
            owner_id=globex.owner_id,
            opened_at=utcnow(),
        )
        session.add_all([globex, opened])
        session.commit()
        return opened.id or 0


@pytest.mark.parametrize("text", ["open escalations for globex", "what changed at globex"])
def test_a_slack_connect_channel_shows_no_escalation(
    edge: SlackEdge, fake: FakeSlack, escalation: int, text: str
) -> None:
    mention = event_body("app_mention.json", channel="CEXT", text=f"<@U1> {text}", user=DANA)
    assert dispatch(edge, mention, "application/json").status == 200
    [post] = fake.calls_to("chat.postMessage")  # answered in the thread, for everyone there
    command = ack_json(dispatch(edge, command_body("/csm", text, user=DANA, channel="CEXT")))

    for answer in (json.dumps(post.args), json.dumps(command)):
        assert SECRET_TITLE not in answer and "sev1" not in answer, answer[:400]


def test_a_click_in_a_slack_connect_channel_changes_no_escalation(
    edge: SlackEdge, fake: FakeSlack, escalation: int
) -> None:
    # Alex may change Globex's escalations; the button is clicked in the shared channel.
    body = block_actions_body(
        {"type": "button", "action_id": "escalation_acknowledge", "value": str(escalation)},
        user=ALEX,
        channel="CEXT",
        response_url=fake.response_url(),
        ephemeral=False,
    )
    assert dispatch(edge, body).status == 200

    [refusal] = fake.wait_for("webhook:r1")
    assert "shared with another organisation" in refusal.args["text"]
    assert fake.calls_to("chat.postMessage") == [] and fake.calls_to("chat.update") == []
    with Session(edge.services.container.engine) as session:
        stored = session.get(Escalation, escalation)
        assert stored is not None and stored.status == "open" and stored.slack_channel_id is None
        events = session.exec(
            select(EscalationEvent).where(EscalationEvent.escalation_id == escalation)
        ).all()
        assert events == []
