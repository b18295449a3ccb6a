"""Escalations on Teams, as on Slack: an open form with inline errors, a card that starts a thread in
the escalation channel, assign / note / resolve-with-note, every update edited into the card for
everyone and replied in its thread; two people clicking the same card."""

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
    client_for,
    in_channel_thread,
    inputs,
    install_in_team,
    invoke,
    link,
    make_container,
    personal_message,
    shown,
)

from bot.container import Container
from storage.models import CSM, AuditLog, Escalation, EscalationEvent

DANA = "29:dana-teams-id"  # personal_message's sender
ALEX = "29:alex"  # Dana's manager
MARCO = "29:marco"  # another CSM: may read, may not change Acme's escalations


@pytest.fixture
def container(db_url: str) -> Container:
    return make_container(db_url, teams_escalation_channel=CHANNEL)


@pytest.fixture
def team(client: TestClient, connector: FakeConnector, container: Container) -> FakeConnector:
    """The bot is in the escalation channel's team; Dana, Alex and Marco are known on Teams."""
    install_in_team(client, connector)
    link(container, "dana@example.com", DANA)
    link(container, "alex@example.com", ALEX)
    link(container, "marco@example.com", MARCO)
    connector.calls.clear()
    # These tests post a thread's updates faster than people click; Teams' per-thread limits
    # are the pacing tests' business (tests/scheduler/test_shared_pacing.py, bench_delivery).
    connector.enforce_limits = False
    return connector


def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/messages", json=body)
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


DEMO_ESCALATIONS = 5  # the demo portfolio comes with five


def escalations(container: Container) -> list[Escalation]:
    """Escalations opened during the test (the demo data has some of its own)."""
    with Session(container.engine) as session:
        return list(
            session.exec(
                select(Escalation).where(Escalation.id > DEMO_ESCALATIONS).order_by(Escalation.id)  # type: ignore[operator]
            ).all()
        )


def open_form(client: TestClient, connector: FakeConnector) -> str:
    """Dana says "escalate" in her chat with the bot; returns the id of the form message."""
    post(client, personal_message(connector, "escalate"))
    [form] = connector.sent()
    assert {"account", "severity", "title", "description"} <= set(inputs(card_of(form)))
    assert "escalation.open" in buttons(card_of(form))
    connector.calls.clear()
    return next(iter(connector.activities["a:personal-dana"]))


def submit(
    client: TestClient, connector: FakeConnector, form_id: str, **fields: str
) -> dict[str, Any]:
    body = invoke(
        connector,
        "escalation.open",
        fields,
        DANA,
        conversation={"id": "a:personal-dana", "conversationType": "personal"},
        reply_to=form_id,
    )
    answer = post(client, body)
    assert answer["statusCode"] == 200 and answer["type"] == CARD
    return answer["value"]


def escalate_in_chat(
    client: TestClient,
    connector: FakeConnector,
    text: str,
    failures: list[tuple[int, dict[str, Any]]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """Dana asks in words; the bot shows what it will open; she confirms (``failures``: what the
    connector answers next). Returns the confirm's answer."""
    post(client, personal_message(connector, text))
    [question] = connector.sent()
    card = card_of(question)
    [key] = [a["data"]["key"] for a in card["actions"] if a.get("verb") == "action.confirm"]
    question_id = list(connector.activities["a:personal-dana"])[-1]
    connector.calls.clear()
    connector.failures.extend(failures)
    answer = post(
        client,
        invoke(
            connector,
            "action.confirm",
            {"key": key},
            DANA,
            conversation={"id": "a:personal-dana", "conversationType": "personal"},
            reply_to=question_id,
        ),
    )
    assert answer["statusCode"] == 200 and answer["type"] == CARD, answer
    return answer["value"]


def click(
    client: TestClient,
    connector: FakeConnector,
    verb: str,
    data: dict[str, Any],
    user: str,
    card_id: str,
) -> dict[str, Any]:
    """Someone acts on the escalation card in its channel thread; returns their invoke answer."""
    answer = post(
        client,
        invoke(
            connector, verb, data, user, conversation=in_channel_thread(card_id), reply_to=card_id
        ),
    )
    assert answer["statusCode"] == 200 and answer["type"] == CARD, answer
    return answer["value"]


def test_the_open_form_shows_every_error_next_to_its_field_and_opens_nothing(
    client: TestClient, team: FakeConnector, container: Container
) -> None:
    form_id = open_form(client, team)

    card = submit(
        client, team, form_id, account="qqzzxx", severity="sev9", title="", description="x"
    )

    fields = inputs(card)
    assert fields["account"]["value"] == "qqzzxx"  # what was typed stays in the form
    text = shown(card)
    assert "Choose sev1, sev2 or sev3" in text
    assert "Say in a few words what is wrong" in text
    assert "qqzzxx" in text  # the account error names what was not found
    assert escalations(container) == []
    assert team.sent() == []  # nothing posted, nothing edited


def test_a_new_escalation_gets_a_thread_in_the_escalation_channel_where_every_update_lands(
    client: TestClient, team: FakeConnector, container: Container
) -> None:
    form_id = open_form(client, team)

    confirmation = submit(
        client,
        team,
        form_id,
        account="Acme Corp",
        severity="sev1",
        title="SSO is down for all users",
        description="Since 09:00 UTC",
    )

    [escalation] = escalations(container)
    posted, form_edit = team.sent()
    # The card is a new post in the escalation channel: its own thread.
    assert posted.method == "POST" and posted.conversation_id == CHANNEL
    card_id = escalation.teams_activity_id
    assert card_id and escalation.teams_conversation_id == f"{CHANNEL};messageid={card_id}"
    card = card_of(posted)
    assert "SSO is down for all users" in shown(card) and "Acme Corp" in shown(card)
    # Dana's form no longer offers to open it again: it says where the escalation went.
    assert form_edit.method == "PUT" and form_edit.activity_id == form_id
    assert "escalation.open" not in buttons(card_of(form_edit))
    assert f"Escalation #{escalation.id} opened" in shown(confirmation)

    team.calls.clear()
    data = {"escalation_id": escalation.id}
    acknowledged = click(client, team, "escalation.acknowledge", data, DANA, card_id)
    before = len(team.sent())
    assign_form = click(client, team, "escalation.form", {**data, "form": "assign"}, DANA, card_id)
    assert "owner" in inputs(assign_form)
    assert len(team.sent()) == before  # a form is for the clicker only: nothing posted or edited
    click(client, team, "escalation.assign", {**data, "owner": "marco@example.com"}, DANA, card_id)
    click(client, team, "escalation.note", {**data, "note": "Customer called back"}, DANA, card_id)
    resolved = click(
        client,
        team,
        "escalation.resolve",
        {**data, "note": "IdP certificate renewed"},
        DANA,
        card_id,
    )

    edits = [c for c in team.sent() if c.method == "PUT"]
    replies = [c for c in team.sent() if c.method == "POST"]
    # Every change edits the one card (for everyone) and replies in its thread.
    assert {c.activity_id for c in edits} == {card_id} and len(edits) == 4
    assert {c.conversation_id for c in replies} == {f"{CHANNEL};messageid={card_id}"}
    said = [shown(card_of(c)) for c in replies]
    assert "Acknowledged by Dana Whitfield" in said[0]
    assert "Assigned to Marco" in said[1] and "by Dana Whitfield" in said[1]
    assert "Note from Dana Whitfield" in said[2] and "Customer called back" in said[2]
    assert "Resolved by Dana Whitfield" in said[3] and "IdP certificate renewed" in said[3]
    now = team.card_of(CHANNEL, card_id)
    assert "resolved" in shown(now) and "Marco" in shown(now)
    assert "escalation.acknowledge" not in buttons(now)
    assert "escalation.acknowledge" not in buttons(acknowledged)
    assert "resolved" in shown(resolved)
    with Session(container.engine) as session:
        stored = session.get(Escalation, escalation.id)
        marco = session.exec(select(CSM).where(CSM.email == "marco@example.com")).one()
        assert stored.status == "resolved" and stored.owner_id == marco.id
        kinds = [
            (e.kind, e.note)
            for e in session.exec(
                select(EscalationEvent)
                .where(EscalationEvent.escalation_id == escalation.id)
                .order_by(EscalationEvent.id)
            ).all()
        ]
        assert kinds == [
            ("opened", None),
            ("acknowledged", None),
            ("assigned", None),
            ("note", "Customer called back"),
            ("resolved", "IdP certificate renewed"),
        ]
        audited = {a.action for a in session.exec(select(AuditLog)).all() if a.source == "teams"}
        assert {"escalation.open", "escalation.acknowledged", "escalation.resolved"} <= audited


def test_two_people_clicking_the_same_channel_card(
    client: TestClient, team: FakeConnector, container: Container
) -> None:
    escalate_in_chat(client, team, "escalate acme sev1 SSO is down")
    [escalation] = escalations(container)
    card_id = escalation.teams_activity_id
    [posted, confirmation] = team.sent()
    assert posted.conversation_id == CHANNEL and confirmation.conversation_id == "a:personal-dana"
    base = card_of(posted)
    # The card everyone sees leaves the buttons to per-person views of those who may act.
    assert set(base["refresh"]["userIds"]) >= {DANA, ALEX}
    assert MARCO not in base["refresh"]["userIds"]
    assert base["refresh"]["action"]["verb"] == "escalation.view" and not buttons(base)
    team.calls.clear()
    data = {"escalation_id": escalation.id}

    first = click(client, team, "escalation.acknowledge", data, DANA, card_id)
    second = click(client, team, "escalation.acknowledge", data, ALEX, card_id)

    # Dana's click acknowledged it and edited the card for everyone, once.
    [edit] = [c for c in team.sent() if c.method == "PUT"]
    assert edit.activity_id == card_id and "acknowledged" in shown(card_of(edit))
    assert "escalation.acknowledge" not in buttons(card_of(edit))
    assert "escalation.acknowledge" not in buttons(first)
    # Alex, a second late, gets the card as it is now (with what he may still do), not a bare notice.
    assert "is already acknowledged" in shown(second)
    assert f"Escalation #{escalation.id}" in shown(second) and "acknowledged" in shown(second)
    assert "escalation.acknowledge" not in buttons(second)
    assert {"escalation.form"} <= buttons(second)
    assert len([c for c in team.sent() if c.method == "POST"]) == 1  # one thread reply, Dana's
    # Marco's own view (a refresh) says who may act, and offers nothing he would be refused.
    marco = click(client, team, "escalation.view", data, MARCO, card_id)
    assert not buttons(marco)
    assert "Only Dana Whitfield (the owner), their manager or an admin can change" in shown(marco)


def test_an_escalation_channel_the_bot_is_not_in_refuses_before_anything_is_opened(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", DANA)  # the bot was never added to CHANNEL's team

    post(client, personal_message(connector, "escalate acme sev1 SSO is down"))

    [answer] = connector.sent()
    assert "add me to its team" in (answer.body.get("text") or shown(card_of(answer)))
    assert escalations(container) == []


def test_without_an_escalation_channel_the_card_starts_the_thread_where_it_was_asked(
    db_url: str, connector: FakeConnector
) -> None:
    container = make_container(db_url)
    client = client_for(container, connector)
    link(container, "dana@example.com", DANA)
    chat = {"id": "a:personal-dana", "conversationType": "personal"}
    post(client, personal_message(connector, "escalate"))
    [form] = connector.sent()
    form_id = next(iter(connector.activities["a:personal-dana"]))
    connector.calls.clear()

    answer = post(
        client,
        invoke(
            connector,
            "escalation.open",
            {"account": "Acme Corp", "severity": "sev2", "title": "Exports fail"},
            DANA,
            conversation=chat,
            reply_to=form_id,
        ),
    )

    [escalation] = escalations(container)
    # The form itself became the escalation's card, for everyone in the conversation.
    [edit] = connector.sent()
    assert edit.method == "PUT" and edit.activity_id == form_id
    assert escalation.teams_conversation_id == "a:personal-dana"
    assert escalation.teams_activity_id == form_id
    assert "Exports fail" in shown(answer["value"])
    assert "escalation.acknowledge" in buttons(
        answer["value"]
    )  # Dana owns Acme: she gets the buttons
    assert form.body["attachments"]


def test_someone_we_do_not_know_cannot_read_an_escalation_through_a_refresh(
    client: TestClient, team: FakeConnector, container: Container
) -> None:
    escalate_in_chat(client, team, "escalate acme sev1 SSO is down")
    [escalation] = escalations(container)

    answer = post(
        client,
        invoke(team, "escalation.view", {"escalation_id": escalation.id}, "29:stranger"),
    )

    assert answer["statusCode"] == 200
    text = shown(answer["value"])
    assert "I don't know you yet" in text
    assert "SSO is down" not in text and "Acme" not in text


def test_a_card_teams_refuses_leaves_the_escalation_saved_and_says_why(
    client: TestClient, team: FakeConnector, container: Container
) -> None:
    # The post to the escalation channel is refused.
    escalate_in_chat(client, team, "escalate acme sev2 Exports fail", failures=[(403, {})])

    [escalation] = escalations(container)
    assert escalation.teams_activity_id is None
    refused, told = team.sent()
    assert refused.conversation_id == CHANNEL and told.conversation_id == "a:personal-dana"
    said = shown(card_of(told))
    assert f"Escalation #{escalation.id} opened" in said and "http_403" in said
