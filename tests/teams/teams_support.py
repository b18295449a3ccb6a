"""Helpers for the Teams tests: settings, the HTTP client, and activities from tests/fixtures."""

from __future__ import annotations

import copy
import itertools
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import jwt
from botframework.connector.auth import ServiceClientCredentialsFactory
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_connector import FakeConnector
from jwt.algorithms import RSAAlgorithm
from msrest.authentication import Authentication, BasicTokenAuthentication
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.config import Settings
from bot.container import Container

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TODAY = date(2026, 11, 23)
TENANT = "50612dbb-0237-4969-b378-8d42590f9c00"  # the tenant of message_channel_mention.json
DANA_TEAMS_ID = "29:dana-teams-id"
DANA_AAD = "b15a9416-0ad3-4172-9210-7beb711d3f70"


APP_ID = "11111111-2222-3333-4444-555555555555"
KID = "bf-key-1"
# The Bot Connector's signing key in these tests; the fake connector serves its public half.
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_container(db_url: str, **settings: Any) -> Container:
    """Settings as production has them: an app id and its tenant (JWT checked on every request)."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "today": TODAY.isoformat(),
        "microsoft_app_id": APP_ID,
        "microsoft_app_password": "secret",
        "microsoft_app_tenant_id": TENANT,
    }
    values.update(settings)
    return Container(settings=Settings(**values))


def trust(connector: FakeConnector) -> None:
    """Serve the test signing key from the fake connector's OpenID endpoint."""
    jwk = json.loads(RSAAlgorithm.to_jwk(_KEY.public_key()))
    connector.jwks = {"keys": [{**jwk, "kid": KID, "use": "sig", "endorsements": ["msteams"]}]}


def bearer(service_url: str, **claims: Any) -> str:
    """A token as the Bot Connector signs it for one activity (serviceurl bound to it)."""
    now = int(time.time())
    payload = {
        "iss": "https://api.botframework.com",
        "aud": APP_ID,
        "serviceurl": service_url,
        "nbf": now - 10,
        "exp": now + 600,
    }
    payload.update(claims)
    return jwt.encode(payload, _KEY, algorithm="RS256", headers={"kid": KID})


def signed_headers(body: Any) -> dict[str, str]:
    service_url = body.get("serviceUrl") if isinstance(body, dict) else None
    return {"Authorization": f"Bearer {bearer(str(service_url or ''))}"}


class SignedClient(TestClient):
    """Posts activities the way the Bot Connector does: each with a JWT for its serviceUrl."""

    def post(self, url: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        body = kwargs.get("json")
        headers = {**signed_headers(body), **(kwargs.pop("headers", None) or {})}
        return super().post(url, *args, headers=headers, **kwargs)


class TestTokens(ServiceClientCredentialsFactory):
    """The bot's own credentials for calls to the (fake) connector: a fixed bearer token, so
    nothing asks Microsoft's token service."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return not self.app_id

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Authentication:
        return BasicTokenAuthentication({"access_token": "test-bot-token"})


def teams_app(container: Container, connector: FakeConnector | None = None, **options: Any) -> Any:
    """The TeamsApp as production builds it, with the connector's keys and test credentials."""
    from bot.teams.app import TeamsApp

    app_id = container.settings.microsoft_app_id
    if connector is not None and app_id:
        trust(connector)
        options.setdefault("openid_metadata_url", connector.openid_url)
    if app_id:
        options.setdefault("credential_factory", TestTokens(app_id))
    return TeamsApp(container, **options)


def client_for(
    container: Container, connector: FakeConnector | None = None, **app_options: Any
) -> TestClient:
    """The real /api/messages route in a Starlette app, as bot/server.py mounts it.

    With an app id the client signs every activity with the test key (served by ``connector``).
    """
    from bot.teams.http import routes

    app = teams_app(container, connector, **app_options)
    asgi = Starlette(routes=routes(container, teams_app=app))
    return SignedClient(asgi) if container.settings.microsoft_app_id else TestClient(asgi)


def activity(
    name: str, connector: FakeConnector | None = None, *, tenant: str = TENANT, **changes: Any
) -> dict[str, Any]:
    """A Microsoft-written activity from tests/fixtures/teams/, moved into ``tenant`` (ours by
    default: the captures come from several tenants), with serviceUrl on the fake."""
    data = json.loads((FIXTURES / "teams" / name).read_text())
    data = copy.deepcopy(data)
    data.setdefault("channelData", {}).setdefault("tenant", {})["id"] = tenant
    if isinstance(data.get("conversation"), dict) and "tenantId" in data["conversation"]:
        data["conversation"]["tenantId"] = tenant
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


_IDS = itertools.count(781999)


def personal_message(
    connector: FakeConnector,
    text: str,
    *,
    user_id: str = DANA_TEAMS_ID,
    aad: str | None = DANA_AAD,
    conversation_id: str = "a:personal-dana",
    tenant: str = TENANT,
    activity_id: str | None = None,
) -> dict[str, Any]:
    """A 1:1 message, built from the channel capture by moving it into a personal conversation."""
    data = activity("message_channel_mention.json", connector)
    data.update(
        text=text,
        # Each message is a new activity (Teams delivers a repeated id once).
        id=activity_id or f"1759944{next(_IDS):06d}",
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
    # The capture's Entra object id belongs to its own sender; ours is Dana's, or unknown.
    body["from"]["aadObjectId"] = DANA_AAD if user_id == DANA_TEAMS_ID else None
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
