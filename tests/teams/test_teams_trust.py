"""Teams, as a careful admin would test it: identities linked once, shared channels, duplicate
deliveries, malformed card actions and oversized bodies, all through the real /api/messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fake_connector import FakeConnector
from sqlmodel import Session, func, select
from starlette.testclient import TestClient
from teams_support import (
    DANA_AAD,
    DANA_TEAMS_ID,
    activity,
    client_for,
    dana_member,
    make_container,
    personal_message,
)

from bot.container import Container
from storage.models import CSM, Account, AuditLog, Escalation
from storage.platform_models import TeamsConversation

CHANNEL = "19:6848757105754c8981c67612732d9aa7@thread.tacv2"


def shown(call: Any) -> str:
    return json.dumps(call.body, ensure_ascii=False)


def escalations(container: Container) -> int:
    with Session(container.engine) as session:
        return session.exec(select(func.count(Escalation.id))).one()


def dana(container: Container) -> CSM:
    with Session(container.engine) as session:
        return session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()


# -- identities ------------------------------------------------------------------------------------
def test_an_email_alone_never_moves_a_link_to_another_teams_user(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    connector.members[DANA_TEAMS_ID] = dana_member()
    assert (
        client.post("/api/messages", json=personal_message(connector, "plan acme")).status_code
        == 200
    )
    assert dana(container).teams_aad_object_id == DANA_AAD
    # Someone else in our tenant whose roster entry carries Dana's email (a renamed account, a
    # mistyped directory entry): not Dana.
    connector.members["29:impostor"] = {
        **dana_member(),
        "id": "29:impostor",
        "aadObjectId": "aad-impostor",
    }
    data = personal_message(
        connector,
        "health acme",
        user_id="29:impostor",
        aad="aad-impostor",
        conversation_id="a:personal-impostor",
    )

    assert client.post("/api/messages", json=data).status_code == 200

    [reply] = [c for c in connector.sent() if c.conversation_id == "a:personal-impostor"]
    assert "Acme" not in shown(reply) and "I don't know you yet" in shown(reply)
    after = dana(container)
    assert (after.teams_user_id, after.teams_aad_object_id) == (DANA_TEAMS_ID, DANA_AAD)
    with Session(container.engine) as session:
        chat = session.exec(
            select(TeamsConversation).where(
                TeamsConversation.conversation_id == "a:personal-impostor"
            )
        ).one()
    assert chat.csm_id is None  # her digests keep going to her own chat


def test_the_local_development_mode_links_nobody(db_url: str, connector: FakeConnector) -> None:
    container = make_container(db_url, microsoft_app_id=None, teams_dev_no_auth=True)
    client = client_for(container, connector)
    connector.members[DANA_TEAMS_ID] = dana_member()

    response = client.post("/api/messages", json=personal_message(connector, "health acme"))

    assert response.status_code == 200
    assert "Acme Corp" in shown(connector.sent()[0])  # matched by email for the developer
    after = dana(container)
    assert after.teams_user_id is None and after.teams_aad_object_id is None  # nothing remembered


def test_a_member_of_another_tenant_in_our_conversation_sees_nothing(
    client: TestClient, connector: FakeConnector
) -> None:
    connector.members["29:partner"] = {
        **dana_member(),
        "id": "29:partner",
        "tenantId": "another-tenant",
        "aadObjectId": "aad-partner",
    }
    data = personal_message(connector, "risks", user_id="29:partner", aad="aad-partner")

    assert client.post("/api/messages", json=data).status_code == 200

    answer = shown(connector.sent()[0])
    assert "another organisation" in answer and "at risk" not in answer


# -- shared channels ---------------------------------------------------------------------------------
def channel_message(connector: FakeConnector, text: str, **channel: Any) -> dict[str, Any]:
    data = activity("message_channel_mention.json", connector)
    data["text"] = f"<at>ridotest</at> {text}"
    data["channelData"]["channel"] = {"id": CHANNEL, **channel}
    connector.members[data["from"]["id"]] = {**dana_member(), "id": data["from"]["id"]}
    return data


def map_globex_to_the_channel(container: Container) -> None:
    with Session(container.engine) as session:
        globex = session.exec(select(Account).where(Account.name == "Globex")).one()
        globex.teams_conversation_id = CHANNEL
        session.add(globex)
        session.commit()


@pytest.mark.parametrize("text", ["renewals in the next 365 days", "risks", "my accounts"])
def test_a_shared_channel_gets_no_lists(
    client: TestClient, connector: FakeConnector, text: str
) -> None:
    data = channel_message(connector, text, membershipType="shared")

    assert client.post("/api/messages", json=data).status_code == 200

    [reply] = connector.sent()
    assert "shared with another organisation" in shown(reply)
    assert "Acme" not in shown(reply) and "$" + "1" not in shown(reply)


def test_a_shared_channel_shows_its_account_and_names_no_other(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    map_globex_to_the_channel(container)
    container.settings.shared_channel_answers = True  # the admins allowed the mapped account

    texts = ("health globex", "health acme", "health umbrella", "plan initech", "health zzqx")
    for i, text in enumerate(texts):
        data = channel_message(connector, text, membershipType="shared")
        data["id"] = f"shared-{i}"
        assert client.post("/api/messages", json=data).status_code == 200

    globex, *others = connector.sent()
    assert "Globex" in shown(globex)
    with Session(container.engine) as session:
        names = [n for n in session.exec(select(Account.name)).all() if n != "Globex"]
    for reply in others:
        assert "shared with another organisation" in shown(reply)
        # Not one other customer's name, not even in "which one did you mean" or "did you mean".
        assert not [n for n in names if n in shown(reply)]


def test_a_shared_channel_shows_not_even_its_account_unless_the_admins_allow_it(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    """design.md: only the mapped account, "and only when configured" (off by default)."""
    map_globex_to_the_channel(container)
    data = channel_message(connector, "health globex", membershipType="shared")

    assert client.post("/api/messages", json=data).status_code == 200

    [reply] = connector.sent()
    assert "shared with another organisation" in shown(reply) and "Globex" not in shown(reply)


def test_a_team_with_a_member_of_another_tenant_counts_as_shared(
    client: TestClient, connector: FakeConnector
) -> None:
    data = channel_message(connector, "renewals in the next 365 days")
    team = data["channelData"]["team"]["id"]
    connector.rosters[team] = [
        {**dana_member(), "id": data["from"]["id"]},
        {
            "id": "29:partner",
            "name": "Pat Partner",
            "tenantId": "another-tenant",
            "userRole": "user",
        },
    ]

    assert client.post("/api/messages", json=data).status_code == 200

    [reply] = connector.sent()
    assert "shared with another organisation" in shown(reply)


# -- delivered twice ---------------------------------------------------------------------------------
def test_the_same_activity_delivered_twice_opens_one_escalation(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    """Asked for in words an escalation is confirmed first (issue 10); the question and the "yes"
    delivered twice each are answered once, and one escalation opens."""
    connector.members[DANA_TEAMS_ID] = dana_member()
    data = personal_message(connector, "escalate acme sev2 SSO is down")
    before = escalations(container)

    for _ in range(2):
        assert client.post("/api/messages", json=data).status_code == 200
    assert escalations(container) == before and len(connector.sent()) == 1

    yes = personal_message(connector, "yes")
    for _ in range(2):
        assert client.post("/api/messages", json=yes).status_code == 200

    assert escalations(container) == before + 1
    assert len(connector.sent()) == 2


# -- malformed card actions ------------------------------------------------------------------------
def card_action(connector: FakeConnector, value: Any) -> dict[str, Any]:
    body = activity("invoke_adaptive_card_action.json", connector)
    if value is None:
        body.pop("value", None)
    else:
        body["value"] = value
    return body


@pytest.mark.parametrize(
    "value",
    [
        None,
        "garbage",
        {"action": {"type": "Action.Submit", "data": {"x": 1}}},
        {"action": "not an object"},
        [1, 2, 3],
    ],
    ids=["no-value", "string-value", "action-submit", "action-string", "list-value"],
)
def test_malformed_card_actions_get_http_200_with_an_error_invoke_response(
    client: TestClient, connector: FakeConnector, container: Container, value: Any
) -> None:
    response = client.post("/api/messages", json=card_action(connector, value))

    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "application/vnd.microsoft.error"
    assert 400 <= body["statusCode"] < 500 and body["value"]["message"]
    with Session(container.engine) as session:
        assert session.exec(select(AuditLog)).all() == []
    assert connector.sent() == []


# -- size --------------------------------------------------------------------------------------------
def test_a_body_over_the_cap_is_refused_before_it_is_read(
    client: TestClient, connector: FakeConnector
) -> None:
    def chunks() -> Any:
        for _ in range(3):
            yield b" " * (512 * 1024)

    response = client.post(
        "/api/messages",
        content=chunks(),
        headers={"content-type": "application/json", "Authorization": "Bearer x"},
    )

    assert response.status_code == 413
    assert connector.calls == []
