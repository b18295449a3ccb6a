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
from starlette.applications import Starlette
from starlette.testclient import TestClient
from teams_support import activity, client_for, make_container, teams_app

from bot.config import ConfigurationError
from bot.teams.http import routes
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
    # Unsigned: each test sends the Authorization header it is about.
    app = teams_app(container, openid_metadata_url=connector.openid_url)
    return TestClient(Starlette(routes=routes(container, teams_app=app)))


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


def test_without_an_app_id_every_request_is_refused(
    db_url: str, connector: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """A Slack-only deployment (no MICROSOFT_APP_ID, --host 0.0.0.0) exposes nothing on Teams:
    a forged message gets 401, nothing is stored and nothing reaches its serviceUrl."""
    open_client = client_for(make_container(db_url, microsoft_app_id=None))
    forged = activity("message_channel_mention.json", connector)
    forged["text"] = "<at>ridotest</at> health acme"

    for body in (member_added(connector), forged):
        response = open_client.post("/api/messages", json=body)
        assert response.status_code == 401
    assert open_client.post("/api/messages", content=b"{not json").status_code == 401

    assert references(db_url) == []
    assert connector.calls == []


def test_the_local_development_switch_answers_and_says_so(
    db_url: str, connector: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.teams.http"):
        dev_client = client_for(
            make_container(db_url, microsoft_app_id=None, teams_dev_no_auth=True)
        )
    assert any("NOT authenticated" in r.getMessage() for r in caplog.records)

    response = dev_client.post("/api/messages", json=member_added(connector))

    assert response.status_code == 200
    assert len(references(db_url)) == 1


def test_with_an_app_id_the_development_switch_changes_nothing(
    db_url: str, connector: FakeConnector
) -> None:
    container = make_container(db_url, teams_dev_no_auth=True)
    app = teams_app(container, openid_metadata_url=connector.openid_url)
    unsigned = TestClient(Starlette(routes=routes(container, teams_app=app)))

    assert unsigned.post("/api/messages", json=member_added(connector)).status_code == 401
    assert references(db_url) == []


def test_an_app_id_without_a_tenant_is_a_configuration_error(db_url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        teams_app(make_container(db_url, microsoft_app_tenant_id=None))
    message = str(raised.value)
    assert "MICROSOFT_APP_TENANT_ID" in message and "\n" not in message


def test_activities_from_another_tenant_are_refused_and_nothing_runs(
    secured: TestClient, connector: FakeConnector, trusted_key: rsa.RSAPrivateKey, db_url: str
) -> None:
    data = member_added(connector)
    for tenant_place in ("channelData", "both"):
        data = activity(
            "conversation_update_members_added_team.json", connector, tenant="other-tenant"
        )
        if tenant_place == "channelData":
            data["conversation"].pop("tenantId", None)
        bearer = token(trusted_key, data["serviceUrl"])
        response = secured.post(
            "/api/messages", json=data, headers={"Authorization": f"Bearer {bearer}"}
        )
        assert response.status_code == 403
    # No tenant at all is not ours either.
    data = member_added(connector)
    data["channelData"].pop("tenant")
    data["conversation"].pop("tenantId", None)
    bearer = token(trusted_key, data["serviceUrl"])
    response = secured.post(
        "/api/messages", json=data, headers={"Authorization": f"Bearer {bearer}"}
    )
    assert response.status_code == 403
    assert references(db_url) == []
    assert [c for c in connector.calls if c.method != "GET"] == []


def test_serve_stops_with_one_line_when_the_tenant_is_missing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    for name, value in {
        "CSM_DATABASE_URL": db_url,
        "MICROSOFT_APP_ID": APP_ID,
        "MICROSOFT_APP_PASSWORD": "secret",
        "MICROSOFT_APP_TENANT_ID": "",
        "SLACK_SIGNING_SECRET": "",
    }.items():
        monkeypatch.setenv(name, value)

    import uvicorn

    def started(*_: object, **__: object) -> None:
        raise AssertionError("the server started serving without a tenant")

    monkeypatch.setattr(uvicorn, "run", started)

    result = CliRunner().invoke(app, ["serve", "--no-scheduler"])

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("Configuration error: MICROSOFT_APP_TENANT_ID is not set")


def test_the_development_switch_binds_loopback_and_says_so(
    db_url: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.server import bind_host

    dev = make_container(db_url, microsoft_app_id=None, teams_dev_no_auth=True).settings
    with caplog.at_level(logging.WARNING, logger="bot.server"):
        assert bind_host(dev, "0.0.0.0") == "127.0.0.1"
    assert "WITHOUT checking who sent them" in capsys.readouterr().err
    assert any(
        "listening on 127.0.0.1 instead of 0.0.0.0" in r.getMessage() for r in caplog.records
    )
    # Without the switch, or with an app id, --host is what it says.
    assert bind_host(make_container(db_url).settings, "0.0.0.0") == "0.0.0.0"
    assert (
        bind_host(make_container(db_url, teams_dev_no_auth=True).settings, "0.0.0.0") == "0.0.0.0"
    )
