"""Helpers for the Teams tests: settings, the HTTP client, and activities from tests/fixtures."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

from fake_connector import FakeConnector
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.config import Settings
from bot.container import Container

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TODAY = date(2026, 11, 23)
TENANT = "50612dbb-0237-4969-b378-8d42590f9c00"  # the tenant of message_channel_mention.json
DANA_TEAMS_ID = "29:dana-teams-id"
DANA_AAD = "b15a9416-0ad3-4172-9210-7beb711d3f70"


def make_container(db_url: str, **settings: Any) -> Container:
    values: dict[str, Any] = {
        "database_url": db_url,
        "today": TODAY.isoformat(),
        "microsoft_app_id": None,
        "microsoft_app_password": None,
        "microsoft_app_tenant_id": TENANT,
    }
    values.update(settings)
    return Container(settings=Settings(**values))


def client_for(container: Container, **app_options: Any) -> TestClient:
    """The real /api/messages route in a Starlette app, as bot/server.py mounts it."""
    from bot.teams.app import TeamsApp
    from bot.teams.http import routes

    app = TeamsApp(container, **app_options)
    return TestClient(Starlette(routes=routes(container, teams_app=app)))


def activity(name: str, connector: FakeConnector | None = None, **changes: Any) -> dict[str, Any]:
    """A Microsoft-written activity from tests/fixtures/teams/, with serviceUrl on the fake."""
    data = json.loads((FIXTURES / "teams" / name).read_text())
    data = copy.deepcopy(data)
    if connector is not None:
        data["serviceUrl"] = connector.service_url
    for key, value in changes.items():
        data[key] = value
    return data


def dana_member() -> dict[str, Any]:
    """What the Teams roster answers for Dana (the owner of Acme Corp in the demo data)."""
    return {
        "id": DANA_TEAMS_ID,
        "name": "Dana Whitfield",
        "email": "dana@example.com",
        "userPrincipalName": "dana@example.com",
        "tenantId": TENANT,
        "userRole": "user",
        "aadObjectId": DANA_AAD,
    }


def personal_message(
    connector: FakeConnector,
    text: str,
    *,
    user_id: str = DANA_TEAMS_ID,
    aad: str | None = DANA_AAD,
    conversation_id: str = "a:personal-dana",
    tenant: str = TENANT,
) -> dict[str, Any]:
    """A 1:1 message, built from the channel capture by moving it into a personal conversation."""
    data = activity("message_channel_mention.json", connector)
    data.update(
        text=text,
        id="1759944781999",
        entities=[e for e in data["entities"] if e["type"] != "mention"],
        attachments=[],
        conversation={"id": conversation_id, "conversationType": "personal", "tenantId": tenant},
        channelData={"tenant": {"id": tenant}},
    )
    data["from"] = {"id": user_id, "name": "Dana Whitfield", "aadObjectId": aad}
    return data


CHANNEL = "19:0b7f32667e064dd9b25d7969801541f4@thread.tacv2"  # the team capture's channel
TEAM = "19:zFLSDFWsesfzcmKArqKJ-65aOXJz@sgf462H2wz41@thread.tacv2"
CARD = "application/vnd.microsoft.card.adaptive"


def link(container: Container, email: str, teams_id: str) -> int:
    """Give a CSM a Teams id, as a first message (or a team roster) would have."""
    from sqlmodel import Session, select

    from storage.models import CSM

    with Session(container.engine) as session:
        csm = session.exec(select(CSM).where(CSM.email == email)).one()
        csm.teams_user_id = teams_id
        session.add(csm)
        session.commit()
        return csm.id or 0


def install_in_team(client: TestClient, connector: FakeConnector) -> None:
    """The bot is added to a team in our tenant (Microsoft's capture, moved into TENANT)."""
    team = activity("conversation_update_members_added_team.json", connector)
    team["conversation"]["tenantId"] = TENANT
    team["channelData"]["tenant"]["id"] = TENANT
    assert client.post("/api/messages", json=team).status_code == 200


def channel_message(
    connector: FakeConnector, text: str, *, user_id: str, thread: str = "1759944781430"
) -> dict[str, Any]:
    """Someone @mentions the bot in a thread of CHANNEL (Microsoft's capture, moved there)."""
    data = activity("message_channel_mention.json", connector)
    mention = next(e for e in data["entities"] if e["type"] == "mention")
    data["text"] = f"{mention['text']} {text}"
    data["from"] = {"id": user_id, "name": "Someone"}
    data["conversation"]["id"] = f"{CHANNEL};messageid={thread}"
    data["conversation"]["tenantId"] = TENANT
    data["channelData"].update(
        tenant={"id": TENANT},
        channel={"id": CHANNEL},
        teamsChannelId=CHANNEL,
        team={"id": TEAM},
        teamsTeamId=TEAM,
    )
    return data


def invoke(
    connector: FakeConnector,
    verb: str,
    data: dict[str, Any],
    user_id: str,
    *,
    conversation: dict[str, Any] | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """The captured adaptiveCard/action invoke with our verb and data, from a user in our tenant,
    on the card message ``reply_to`` in ``conversation`` (default: a personal chat)."""
    body = activity("invoke_adaptive_card_action.json", connector)
    body["value"]["action"] = {"type": "Action.Execute", "title": "x", "verb": verb, "data": data}
    body["from"]["id"] = user_id
    body["channelData"]["tenant"]["id"] = TENANT
    body["conversation"]["tenantId"] = TENANT
    if conversation is not None:
        body["conversation"] = {**conversation, "tenantId": TENANT}
    if reply_to is not None:
        body["replyToId"] = reply_to
    return body


def in_channel_thread(activity_id: str) -> dict[str, Any]:
    """The conversation of a card posted as a new post in CHANNEL (its own thread)."""
    return {
        "id": f"{CHANNEL};messageid={activity_id}",
        "conversationType": "channel",
        "isGroup": True,
    }


def nodes(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from nodes(item)


def verbs(card: dict[str, Any]) -> set[str]:
    return {n["verb"] for n in nodes(card) if n.get("type") == "Action.Execute" and "verb" in n}


def inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in nodes(card) if str(n.get("type", "")).startswith("Input.")}


def shown(card: dict[str, Any]) -> str:
    """Every text the card shows, in one string."""
    return " ".join(
        str(n.get("text") or n.get("value") or "") for n in nodes(card) if isinstance(n, dict)
    )


def card_of(call: Any) -> dict[str, Any]:
    """The Adaptive Card a recorded POST/PUT carried."""
    [attachment] = call.body["attachments"]
    assert attachment["contentType"] == CARD
    return attachment["content"]


def buttons(card: dict[str, Any]) -> set[str]:
    """The verbs of the buttons a card shows (not of its refresh action)."""
    return verbs({k: v for k, v in card.items() if k != "refresh"})
