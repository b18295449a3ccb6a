"""The same Teams card action delivered twice (a client retry, a double submit that reached us
twice): the escalation or note is made once, and its card or thread reply is posted once."""

from __future__ import annotations

import logging

import pytest
from fake_connector import FakeConnector
from sqlmodel import Session, select
from starlette.testclient import TestClient
from test_teams_escalations import (  # noqa: F401
    CHANNEL,
    DANA,
    container,
    escalations,
    in_channel_thread,
    invoke,
    open_form,
    post,
    submit,
    team,
)

from bot.container import Container
from storage.models import EscalationEvent


def test_an_open_form_submitted_twice_posts_one_card(
    client: TestClient,
    team: FakeConnector,  # noqa: F811
    container: Container,  # noqa: F811
) -> None:
    form_id = open_form(client, team)
    body = invoke(
        team,
        "escalation.open",
        {"account": "Acme Corp", "severity": "sev1", "title": "SSO is down"},
        DANA,
        conversation={"id": "a:personal-dana", "conversationType": "personal"},
        reply_to=form_id,
    )

    first, again = post(client, body), post(client, body)

    assert len(escalations(container)) == 1
    posted = [c for c in team.sent() if c.method == "POST" and c.conversation_id == CHANNEL]
    assert len(posted) == 1, [(c.method, c.conversation_id) for c in team.sent()]
    assert first["statusCode"] == again["statusCode"] == 200
    assert "already open" in str(again["value"])


def test_a_note_submitted_twice_is_replied_once(
    client: TestClient,
    team: FakeConnector,  # noqa: F811
    container: Container,  # noqa: F811
) -> None:
    form_id = open_form(client, team)
    submit(client, team, form_id, account="Acme Corp", severity="sev1", title="SSO is down")
    [escalation] = escalations(container)
    card_id = escalation.teams_activity_id
    assert card_id
    team.calls.clear()
    body = invoke(
        team,
        "escalation.note",
        {"escalation_id": escalation.id, "note": "Customer called back"},
        DANA,
        conversation=in_channel_thread(card_id),
        reply_to=card_id,
    )

    post(client, body)
    post(client, body)

    with Session(container.engine) as session:
        notes = session.exec(select(EscalationEvent).where(EscalationEvent.kind == "note")).all()
    assert len(notes) == 1
    replies = [c for c in team.sent() if c.method == "POST"]
    assert len(replies) == 1, [(c.method, c.conversation_id) for c in team.sent()]


def test_a_bad_card_action_is_logged_without_what_the_user_typed(
    client: TestClient,
    team: FakeConnector,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = invoke(
        team,
        "escalation.note",
        {"escalation_id": "not-a-number", "note": "Jane Roe's SSN is 078-05-1120"},
        DANA,
    )

    answer = post(client, body)

    assert answer["type"] == "application/vnd.microsoft.error"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "escalation.note" in logged and "078-05-1120" not in logged
