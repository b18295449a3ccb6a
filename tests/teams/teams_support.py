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
