"""Who sees what on Slack: Slack Connect channels name no other customer, guests and outsiders see
nothing, and an email never moves a link to another Slack user."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from bot.slack.app import SlackEdge
from storage.models import CSM, Account
from tests.slack.conftest import (
    DANA,
    ack_json,
    command_body,
    dispatch,
    event_body,
)
from tests.slack.fake_slack import FakeSlack


def run(
    edge: SlackEdge, command: str, text: str, *, user: str = DANA, channel: str = "C111"
) -> str:
    body = command_body(command, text, user=user, channel=channel)
    return json.dumps(ack_json(dispatch(edge, body)), ensure_ascii=False)


def other_names(edge: SlackEdge, *, besides: str) -> list[str]:
    with Session(edge.services.container.engine) as session:
        return [n for n in session.exec(select(Account.name)).all() if n != besides]


@pytest.fixture
def connect_channel(edge: SlackEdge, fake: FakeSlack) -> str:
    """A Slack Connect channel mapped to Globex."""
    fake.add_channel("CEXT", ext_shared=True)
    with Session(edge.services.container.engine) as session:
        globex = session.exec(select(Account).where(Account.name == "Globex")).one()
        globex.slack_channel_id = "CEXT"
        session.add(globex)
        session.commit()
    return "CEXT"


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("/health", "corp"),  # in an internal channel: "which account do you mean", with names
        ("/health", "umbrella"),
        ("/health", "acme"),
        ("/health", "zzqx"),  # "did you mean"
        ("/plan", "initech"),
        ("/csm", "how is corp doing?"),
        ("/escalate", "corp sev1 down"),
    ],
)
def test_a_slack_connect_channel_names_no_other_customer(
    edge: SlackEdge, connect_channel: str, command: str, text: str
) -> None:
    answer = run(edge, command, text, channel=connect_channel)

    leaked = [n for n in other_names(edge, besides="Globex") if n in answer]
    assert leaked == [], answer[:400]


def test_a_mention_in_a_slack_connect_channel_names_no_other_customer(
    edge: SlackEdge, fake: FakeSlack, connect_channel: str
) -> None:
    body = event_body(
        "app_mention.json", channel=connect_channel, text="<@U1> how is corp doing?", user=DANA
    )
    assert dispatch(edge, body, "application/json").status == 200
    [post] = fake.calls_to("chat.postMessage")

    answer = json.dumps(post.args)
    assert [n for n in other_names(edge, besides="Globex") if n in answer] == []


def test_the_mapped_account_is_shown_in_its_slack_connect_channel(
    edge: SlackEdge, connect_channel: str
) -> None:
    assert "Globex — " not in run(edge, "/health", "globex", channel=connect_channel)
    edge.services.container.settings.shared_channel_answers = True  # the admins allowed it
    assert "Globex — " in run(edge, "/health", "globex", channel=connect_channel)


@pytest.mark.parametrize(
    "flags",
    [
        {"is_restricted": True},
        {"is_ultra_restricted": True},
        {"is_stranger": True},
        {"team_id": "T999"},
    ],
    ids=["guest", "single-channel-guest", "stranger", "slack-connect-member"],
)
def test_guests_and_outsiders_with_a_persons_email_see_nothing(
    edge: SlackEdge, fake: FakeSlack, flags: dict[str, object]
) -> None:
    fake.add_user("UOUTSIDER", "dana@example.com", "Dana's lookalike", **flags)

    for command, text in (("/health", "acme"), ("/risks", "team"), ("/renewals", "365")):
        answer = run(edge, command, text, user="UOUTSIDER")
        assert "Acme" not in answer and "Renewals" not in answer, answer[:300]
        assert "Robin Admin" in answer
    with Session(edge.services.container.engine) as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
    assert dana.slack_user_id != "UOUTSIDER"


def test_a_guest_gets_no_app_home(edge: SlackEdge, fake: FakeSlack) -> None:
    fake.add_user("UGUEST", "alex@example.com", "Guest", is_restricted=True)
    body = event_body(
        "message_im.json",
        event_id="EvGuestHome",
        type="app_home_opened",
        tab="home",
        user="UGUEST",
        channel="D9",
    )
    assert dispatch(edge, body, "application/json").status == 200

    [published] = fake.calls_to("views.publish")
    view = json.dumps(published.args["view"])
    assert "Guest accounts can't see customer data" in view
    assert "Acme" not in view and "Red and amber" not in view


def test_an_email_alone_never_moves_a_link_to_another_slack_user(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    assert "Acme Corp — " in run(edge, "/health", "acme", user=DANA)  # Dana is linked now
    # Another member whose profile shows Dana's email (a second account, a renamed user).
    fake.add_user("UIMPOSTOR", "dana@example.com", "Not Dana")

    answer = run(edge, "/plan", "acme", user="UIMPOSTOR")

    assert "Acme" not in answer and "I don't know you yet" in answer
    with Session(edge.services.container.engine) as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
    assert dana.slack_user_id == DANA
