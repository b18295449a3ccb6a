"""Messages through the real POST /api/messages: mentions stripped, handlers answer, cards reach the connector."""

from __future__ import annotations

from typing import Any

import pytest
from fake_connector import FakeConnector
from sqlmodel import Session, select
from starlette.testclient import TestClient
from teams_support import (
    DANA_AAD,
    DANA_TEAMS_ID,
    TENANT,
    SignedClient,
    activity,
    dana_member,
    personal_message,
    teams_app,
)

from bot.container import Container
from storage.models import CSM
from storage.platform_models import TeamsConversation

CARD = "application/vnd.microsoft.card.adaptive"


def card_of(call: Any) -> dict[str, Any]:
    attachments = call.body.get("attachments") or []
    assert len(attachments) == 1 and attachments[0]["contentType"] == CARD, call.body
    card = attachments[0]["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    return card


def texts(node: Any) -> list[str]:
    """Every piece of visible text in a card (TextBlock, TextRun, facts, button titles)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key in ("text", "title", "value"):
            if isinstance(node.get(key), str):
                found.append(node[key])
        for value in node.values():
            found.extend(texts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(texts(item))
    return found


def test_personal_message_answers_with_a_health_card_and_remembers_the_user(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    connector.members[DANA_TEAMS_ID] = dana_member()

    data = personal_message(connector, "health acme")
    response = client.post("/api/messages", json=data)

    assert response.status_code == 200
    [reply] = connector.sent()
    assert reply.method == "POST"
    assert reply.conversation_id == "a:personal-dana"
    assert reply.activity_id == data["id"]  # a reply to the user's message
    card = card_of(reply)
    assert "Acme Corp" in texts(card)
    assert "Dana Whitfield" in texts(card)
    # Dana owns Acme: the sentiment control is there.
    assert any(a.get("title") == "Set sentiment" for a in card["actions"])
    with Session(container.engine) as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
        assert dana.teams_user_id == DANA_TEAMS_ID
        assert dana.teams_aad_object_id == DANA_AAD
        stored = session.exec(select(TeamsConversation)).one()
    assert stored.conversation_id == "a:personal-dana"
    assert stored.csm_id == dana.id
    assert stored.tenant_id == TENANT
    assert stored.service_url == connector.service_url
    assert stored.reference["conversation"]["id"] == "a:personal-dana"
    assert "activityId" not in stored.reference  # proactive sends must not reply to an old message


def test_the_roster_is_asked_once_then_the_stored_id_is_used(
    client: TestClient, connector: FakeConnector
) -> None:
    connector.members[DANA_TEAMS_ID] = dana_member()

    for text in ("health acme", "plan acme", "risks"):
        assert (
            client.post("/api/messages", json=personal_message(connector, text)).status_code == 200
        )

    roster_calls = [c for c in connector.calls if c.method == "GET" and "/members/" in c.path]
    assert len(roster_calls) == 1
    assert len(connector.sent()) == 3


def test_channel_mention_is_stripped_and_the_reply_goes_to_the_thread(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    data = activity("message_channel_mention.json", connector)
    data["text"] = "<at>ridotest</at> plan acme"
    connector.members[data["from"]["id"]] = {**dana_member(), "id": data["from"]["id"]}

    response = client.post("/api/messages", json=data)

    assert response.status_code == 200
    [reply] = connector.sent()
    assert (
        reply.conversation_id
        == "19:6848757105754c8981c67612732d9aa7@thread.tacv2;messageid=1759881511856"
    )
    assert reply.activity_id == "1759944781430"
    card = card_of(reply)
    assert "Acme Corp" in texts(card)
    assert any(a.get("verb") == "milestone.status" for a in _actions(card))
    with Session(container.engine) as session:
        stored = session.exec(select(TeamsConversation)).one()
    # One row per channel: proactive posts start a new post, not a reply in someone's thread.
    assert stored.conversation_id == "19:6848757105754c8981c67612732d9aa7@thread.tacv2"
    assert stored.conversation_type == "channel"
    assert stored.team_id == "19:66P469zibfbsGI-_a0aN_toLTZpyzS6u7CT3TsXdgPw1@thread.tacv2"
    assert stored.csm_id is None


def test_channel_message_without_a_mention_is_not_answered(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    data = activity("message_channel_mention.json", connector, text="plan acme", entities=[])

    assert client.post("/api/messages", json=data).status_code == 200

    assert connector.sent() == []
    with Session(container.engine) as session:
        assert session.exec(select(TeamsConversation)).one().conversation_type == "channel"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("renewals 60", "renewal"),
        ("risks", "at risk"),
        ("help", "Here is what I can do:"),
        ("", "Here is what I can do:"),
        ("health zzqqxx", "couldn't find an account"),
    ],
)
def test_commands_go_through_the_conversational_handler(
    client: TestClient, connector: FakeConnector, text: str, expected: str
) -> None:
    connector.members[DANA_TEAMS_ID] = dana_member()

    assert client.post("/api/messages", json=personal_message(connector, text)).status_code == 200

    [reply] = connector.sent()
    assert any(expected in t for t in texts(card_of(reply))), texts(card_of(reply))


def test_a_guest_from_another_tenant_gets_no_account_data(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    # Even with Dana's email in the roster, another tenant's user is never matched to a CSM.
    connector.members["29:guest"] = {**dana_member(), "id": "29:guest"}
    data = personal_message(
        connector, "health acme", user_id="29:guest", aad=None, tenant="other-tenant"
    )

    # A single-tenant bot refuses another tenant's activity outright: nothing runs or is sent.
    assert client.post("/api/messages", json=data).status_code == 403

    assert connector.sent() == []
    assert not [c for c in connector.calls if "/members/" in c.path]
    with Session(container.engine) as session:
        assert session.exec(select(CSM).where(CSM.teams_user_id == "29:guest")).first() is None


def test_an_entra_guest_in_our_tenant_gets_no_account_data(
    client: TestClient, connector: FakeConnector
) -> None:
    connector.members["29:b2b"] = {
        **dana_member(),
        "id": "29:b2b",
        "email": "someone@partner.com",
        "userRole": "guest",
    }
    data = personal_message(connector, "risks", user_id="29:b2b", aad="b2b-aad")

    assert client.post("/api/messages", json=data).status_code == 200

    shown = " ".join(texts(card_of(connector.sent()[0])))
    assert "Guest accounts can't see customer data" in shown
    assert "at risk" not in shown and "$" not in shown


def test_bad_requests_are_rejected_before_anything_runs(
    client: TestClient, connector: FakeConnector
) -> None:
    assert client.post("/api/messages", content=b"{not json").status_code == 400
    assert client.post("/api/messages", json={"text": "no type"}).status_code == 400
    assert client.post("/api/messages", json=[1, 2]).status_code == 400
    assert connector.calls == []


def _actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Action."):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def test_a_long_success_plan_fits_the_teams_size_rule_measured_in_utf16(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    """Teams measures the whole message in UTF-16 (~100 KB); a plan under 80 KB of UTF-8 may not fit."""
    from fake_connector import utf16_size

    from storage.models import Account, Milestone, Objective, SuccessPlan

    with Session(container.engine) as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        plan = session.exec(select(SuccessPlan).where(SuccessPlan.account_id == acme.id)).one()
        objective = session.exec(select(Objective).where(Objective.plan_id == plan.id)).first()
        for n in range(40):
            title = (
                f"Milestone {n:02d}: " + "roll out the new reporting workspace to a region " * 10
            )
            session.add(
                Milestone(
                    objective_id=objective.id,
                    account_id=acme.id or 0,
                    title=title,
                    position=100 + n,
                )
            )
        session.commit()
    connector.members[DANA_TEAMS_ID] = dana_member()

    client.post("/api/messages", json=personal_message(connector, "plan acme"))

    [reply] = connector.sent()
    card = card_of(reply)  # a card, accepted by the connector (not a 413, not a text fallback)
    assert utf16_size(reply.body) <= 80_000  # our margin under Teams' ~100 KB
    shown = " ".join(texts(card))
    assert "… and " in shown and "more milestones" in shown
    assert "Milestone 00" in shown


def test_api_messages_is_counted_in_metrics(connector: FakeConnector, container: Container) -> None:
    from bot.server import create_app

    teams = teams_app(container, connector)
    app = SignedClient(create_app(container, with_slack=False, teams_app=teams))
    before = _metric(
        app.get("/metrics").text, 'csm_http_requests_total{route="/api/messages",status="200"}'
    )

    assert app.post("/api/messages", json=personal_message(connector, "help")).status_code == 200
    assert app.post("/api/messages", json={"type": ""}).status_code == 400

    text = app.get("/metrics").text
    assert (
        _metric(text, 'csm_http_requests_total{route="/api/messages",status="200"}') == before + 1
    )
    assert _metric(text, 'csm_http_requests_total{route="/api/messages",status="400"}') >= 1
    assert 'csm_http_request_duration_seconds_count{route="/api/messages"}' in text
    assert _metric(text, 'csm_teams_activities_total{kind="message"}') >= 1
    assert _metric(text, 'csm_teams_refused_total{reason="malformed"}') >= 1


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
