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
