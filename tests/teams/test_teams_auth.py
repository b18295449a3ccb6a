"""JWT check on /api/messages: missing or forged tokens get 401 and nothing runs; real ones get through.

Signing keys come from the fake connector's OpenID endpoint on 127.0.0.1, so nothing reaches Microsoft.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_connector import FakeConnector
from jwt.algorithms import RSAAlgorithm
from sqlmodel import Session, select
from starlette.testclient import TestClient
from teams_support import activity, client_for, make_container

from storage.platform_models import TeamsConversation

APP_ID = "11111111-2222-3333-4444-555555555555"
KID = "bf-key-1"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def trusted_key() -> rsa.RSAPrivateKey:
    return _key()


@pytest.fixture(scope="module")
def attacker_key() -> rsa.RSAPrivateKey:
    return _key()


@pytest.fixture
def secured(db_url: str, connector: FakeConnector, trusted_key: rsa.RSAPrivateKey) -> TestClient:
    jwk = json.loads(RSAAlgorithm.to_jwk(trusted_key.public_key()))
    connector.jwks = {"keys": [{**jwk, "kid": KID, "use": "sig", "endorsements": ["msteams"]}]}
    container = make_container(db_url, microsoft_app_id=APP_ID, microsoft_app_password="secret")
    return client_for(container, openid_metadata_url=connector.openid_url)


def token(key: rsa.RSAPrivateKey, service_url: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://api.botframework.com",
        "aud": APP_ID,
        "serviceurl": service_url,
        "nbf": now - 10,
        "exp": now + 600,
    }
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": KID})


def member_added(connector: FakeConnector) -> dict[str, Any]:
    """A user (not the bot) joins a team channel: the bot only stores the reference, no reply."""
    data = activity("conversation_update_members_added_team.json", connector)
    data["membersAdded"] = [{"id": "29:new-user", "aadObjectId": "aad-new-user"}]
    return data


def references(db_url: str) -> list[TeamsConversation]:
    from storage.db import make_engine

    engine = make_engine(db_url)
    with Session(engine) as session:
        rows = list(session.exec(select(TeamsConversation)).all())
    engine.dispose()
    return rows


def test_a_token_signed_by_the_trusted_key_is_accepted(
    secured: TestClient, connector: FakeConnector, trusted_key: rsa.RSAPrivateKey, db_url: str
) -> None:
    data = member_added(connector)
    bearer = token(trusted_key, data["serviceUrl"])

    response = secured.post(
        "/api/messages", json=data, headers={"Authorization": f"Bearer {bearer}"}
    )

    assert response.status_code == 200
    assert [r.conversation_id for r in references(db_url)] == [data["conversation"]["id"]]


def test_missing_token_is_refused_and_nothing_runs(
    secured: TestClient, connector: FakeConnector, db_url: str
) -> None:
    response = secured.post("/api/messages", json=member_added(connector))

    assert response.status_code == 401
    assert references(db_url) == []
    assert connector.calls == []


def test_forged_token_is_refused_and_nothing_runs(
    secured: TestClient, connector: FakeConnector, attacker_key: rsa.RSAPrivateKey, db_url: str
) -> None:
    data = member_added(connector)
    # Same issuer, audience and key id as the real thing; only the signing key is the attacker's.
    forged = token(attacker_key, data["serviceUrl"])

    response = secured.post(
        "/api/messages", json=data, headers={"Authorization": f"Bearer {forged}"}
    )

    assert response.status_code == 401
    assert references(db_url) == []
    # The validator fetched the trusted keys from the local fake and the signature did not match them.
    assert [c.path for c in connector.calls] == ["/v1/.well-known/openidconfiguration", "/keys"]


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "someone-elses-bot"},
        {"iss": "https://evil.example.com"},
        {"exp": int(time.time()) - 3600},
        {"serviceurl": "https://evil.example.com/"},
    ],
    ids=["audience", "issuer", "expired", "service-url"],
)
def test_tokens_for_another_bot_issuer_time_or_service_are_refused(
    secured: TestClient,
    connector: FakeConnector,
    trusted_key: rsa.RSAPrivateKey,
    db_url: str,
    claims: dict[str, Any],
) -> None:
    data = member_added(connector)
    bearer = token(trusted_key, data["serviceUrl"], **claims)

    response = secured.post(
        "/api/messages", json=data, headers={"Authorization": f"Bearer {bearer}"}
    )

    assert response.status_code == 401
    assert references(db_url) == []


def test_garbage_authorization_is_refused(
    secured: TestClient, connector: FakeConnector, db_url: str
) -> None:
    for header in ("Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer"):
        response = secured.post(
            "/api/messages", json=member_added(connector), headers={"Authorization": header}
        )
        assert response.status_code == 401
    assert references(db_url) == []


def test_without_an_app_id_the_check_is_off_and_the_server_says_so(
    db_url: str, connector: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.teams.http"):
        open_client = client_for(make_container(db_url))
    assert any("NOT authenticated" in r.getMessage() for r in caplog.records)

    response = open_client.post("/api/messages", json=member_added(connector))

    assert response.status_code == 200
    assert len(references(db_url)) == 1
