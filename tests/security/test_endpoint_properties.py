"""Property tests: random bodies, headers and payload fields thrown at /slack/events and
/api/messages over real HTTP, signed and unsigned. Never a 500; unsigned requests change nothing
at all, and signed ones change no business data (they are read-only or refused)."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from starlette.applications import Starlette

from bot.config import Settings
from bot.container import Container
from bot.server import create_app
from bot.slack.app import build_slack
from bot.slack.worker import SlackWorker
from storage.db import engine_for
from storage.models import CSM
from tests.conftest import DEMO_TODAY, fixture_path
from tests.http_server import ServerThread
from tests.slack.conftest import SINGLE_WORKSPACE
from tests.slack.fake_slack import FakeSlack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "teams"))

from fake_connector import FakeConnector
from teams_support import APP_ID, TENANT, activity, bearer, teams_app

SECRET = "property-signing-secret"
EXAMPLES = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# Tables a signed, read-only request may touch (receipts, conversation memory, references).
BOOKKEEPING = {
    "slack_event_receipt",
    "conversation_state",
    "teams_conversation",
    "teams_activity_receipt",
    "alembic_version",
}
# Small tables whose every row is compared, so an update shows up too.
COMPARED = ("csm", "milestone", "escalation", "escalation_event", "audit_log", "account")


# -- servers ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def container(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    path = tmp_path_factory.mktemp("properties") / "csm.db"
    shutil.copyfile(demo_template, path)
    url = f"sqlite:///{path}"
    with engine_for(url).begin() as conn:
        # Linked already: a first request would otherwise (rightly) store the Slack id.
        conn.execute(
            text("UPDATE csm SET slack_user_id = 'UDANA' WHERE email = 'dana@example.com'")
        )
    fake = FakeSlack().start()
    fake.add_user("UDANA", "dana@example.com", "Dana Whitfield")
    settings_ = Settings(
        database_url=url,
        today=DEMO_TODAY.isoformat(),
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        microsoft_app_id=APP_ID,
        microsoft_app_password="secret",
        microsoft_app_tenant_id=TENANT,
    )
    yield Container(settings=settings_)
    fake.stop()
    engine_for.cache_clear()


@pytest.fixture(scope="module")
def connector() -> Iterator[FakeConnector]:
    fake = FakeConnector().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def urls(container: Container, connector: FakeConnector) -> Iterator[dict[str, str]]:
    slack = build_slack(container, oauth=SINGLE_WORKSPACE, worker=SlackWorker(budget=10)).app
    teams = teams_app(container, connector)
    from bot.teams.http import routes

    with (
        ServerThread(create_app(container, slack_app=slack, with_teams=False)) as slack_server,
        ServerThread(Starlette(routes=routes(container, teams_app=teams))) as teams_server,
    ):
        yield {
            "slack": slack_server.url + "/slack/events",
            "teams": teams_server.url + "/api/messages",
        }


def snapshot(container: Container, *, everything: bool) -> dict[str, Any]:
    """Row counts of every table (all, or all but bookkeeping) and the rows of the small ones."""
    with container.engine.connect() as conn:
        tables = [
            r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        ]
        state: dict[str, Any] = {}
        for table in sorted(tables):
            if not everything and table in BOOKKEEPING:
                continue
            state[table] = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()
        for table in COMPARED:
            rows = conn.execute(text(f'SELECT * FROM "{table}" ORDER BY 1')).all()
            state[f"{table}:rows"] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return state


# -- strategies ------------------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
        "",
        "multipart/form-data",
    ]
)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
TOKEN_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
)
BODIES = st.one_of(
    st.binary(max_size=2000),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda v: b"payload=" + quote(json.dumps(v)).encode(), JSON_VALUES),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def slack_signature(body: bytes, timestamp: str) -> str:
    digest = hmac.new(SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v0=" + digest.hexdigest()


def _mutate(data: Any, path: list[int], value: Any) -> Any:
    """``data`` with the value at a pseudo-random path (chosen by ``path``) replaced."""
    if not path or not isinstance(data, dict | list) or not data:
        return value
    keys = list(data.keys()) if isinstance(data, dict) else list(range(len(data)))
    key = keys[path[0] % len(keys)]
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[key] = _mutate(copy[key], path[1:], value)  # type: ignore[index]
    return copy


def _fixture(name: str) -> dict[str, Any]:
    return json.loads(fixture_path("slack", name).read_text())


def _command() -> dict[str, Any]:
    fields = dict(parse_qsl(fixture_path("slack", "slash_command.txt").read_text().strip()))
    fields.update(command="/health", text="acme", user_id="UDANA", channel_id="C111")
    return fields


def _share_click() -> dict[str, Any]:
    payload = _fixture("block_actions.json")
    payload["user"]["id"] = "UDANA"
    payload["actions"] = [{"action_id": "share", "block_id": "b", "value": '{"k":"health","a":1}'}]
    return payload


def _mention() -> dict[str, Any]:
    payload = _fixture("app_mention.json")
    payload["event"].update(text="<@U1> how is acme doing?", user="UDANA")
    return payload


def _submission() -> dict[str, Any]:
    payload = _fixture("view_submission.json")
    payload["user"]["id"] = "UDANA"
    payload["view"]["callback_id"] = "unknown_modal"
    return payload


SLACK_PAYLOADS = {
    "command": _command,
    "share": _share_click,
    "mention": _mention,
    "view": _submission,
}


def slack_body(kind: str, data: Any) -> tuple[bytes, str]:
    if kind == "command":
        fields = data if isinstance(data, dict) else {"x": data}
        return urlencode(
            {str(k): str(v) for k, v in fields.items()}
        ).encode(), "application/x-www-form-urlencoded"
    if kind == "mention":
        return json.dumps(data).encode(), "application/json"
    return b"payload=" + quote(json.dumps(data)).encode(), "application/x-www-form-urlencoded"


# -- Slack -----------------------------------------------------------------------------------------
@EXAMPLES
@given(body=BODIES, content_type=CONTENT_TYPES, timestamp=HEADER_TEXT, signature=HEADER_TEXT)
def test_slack_unsigned_anything_is_refused_and_changes_nothing(
    urls: dict[str, str],
    container: Container,
    body: bytes,
    content_type: str,
    timestamp: str,
    signature: str,
) -> None:
    before = snapshot(container, everything=True)
    headers = {"content-type": content_type}
    if timestamp:
        headers["x-slack-request-timestamp"] = timestamp
    if signature:
        headers["x-slack-signature"] = signature
    response = httpx.post(urls["slack"], content=body, headers=headers, timeout=10)
    assert response.status_code in (401, 413), response.status_code
    assert snapshot(container, everything=True) == before


@EXAMPLES
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_slack_signed_random_bodies_are_never_a_500(
    urls: dict[str, str], container: Container, body: bytes, content_type: str
) -> None:
    before = snapshot(container, everything=False)
    timestamp = str(int(time.time()))
    headers = {
        "content-type": content_type,
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": slack_signature(body, timestamp),
    }
    response = httpx.post(urls["slack"], content=body, headers=headers, timeout=15)
    assert response.status_code < 500, (response.status_code, body[:200])
    assert snapshot(container, everything=False) == before


@EXAMPLES
@given(
    kind=st.sampled_from(sorted(SLACK_PAYLOADS)),
    path=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=4),
    value=JSON_VALUES,
)
def test_slack_signed_payloads_with_a_random_field_are_never_a_500(
    urls: dict[str, str], container: Container, kind: str, path: list[int], value: Any
) -> None:
    before = snapshot(container, everything=False)
    body, content_type = slack_body(kind, _mutate(SLACK_PAYLOADS[kind](), path, value))
    timestamp = str(int(time.time()))
    headers = {
        "content-type": content_type,
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": slack_signature(body, timestamp),
    }
    response = httpx.post(urls["slack"], content=body, headers=headers, timeout=15)
    assert response.status_code < 500, (response.status_code, body[:300])
    assert snapshot(container, everything=False) == before


# -- Teams -----------------------------------------------------------------------------------------
@EXAMPLES
@given(
    body=BODIES,
    authorization=st.one_of(st.none(), HEADER_TEXT, TOKEN_TEXT.map("Bearer {}".format)),
)
def test_teams_unauthenticated_anything_is_refused_and_changes_nothing(
    urls: dict[str, str], container: Container, body: bytes, authorization: str | None
) -> None:
    before = snapshot(container, everything=True)
    headers = {"content-type": "application/json"}
    if authorization:
        headers["authorization"] = authorization
    response = httpx.post(urls["teams"], content=body, headers=headers, timeout=10)
    assert response.status_code in (400, 401, 413), response.status_code
    assert snapshot(container, everything=True) == before


def _teams_message(connector: FakeConnector) -> dict[str, Any]:
    data = activity("message_channel_mention.json", connector)
    data.update(
        text="health acme",
        entities=[],
        conversation={"id": "a:prop", "conversationType": "personal", "tenantId": TENANT},
        channelData={"tenant": {"id": TENANT}},
    )
    return data


def _teams_invoke(connector: FakeConnector) -> dict[str, Any]:
    data = activity("invoke_adaptive_card_action.json", connector)
    data["value"]["action"] = {
        "type": "Action.Execute",
        "verb": "account.open",
        "data": {"account_id": 1, "intent": "account_health"},
    }
    return data


TEAMS_PAYLOADS = {"message": _teams_message, "invoke": _teams_invoke}
_IDS = iter(range(1_000_000))


@EXAMPLES
@given(
    kind=st.sampled_from(sorted(TEAMS_PAYLOADS)),
    path=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=4),
    value=JSON_VALUES,
)
def test_teams_signed_activities_with_a_random_field_are_never_a_500(
    urls: dict[str, str],
    container: Container,
    connector: FakeConnector,
    kind: str,
    path: list[int],
    value: Any,
) -> None:
    before = snapshot(container, everything=False)
    data = TEAMS_PAYLOADS[kind](connector)
    data["id"] = f"prop-{next(_IDS)}"
    data = _mutate(data, path, value)
    service_url = data.get("serviceUrl") if isinstance(data, dict) else None
    headers = {"Authorization": f"Bearer {bearer(str(service_url or connector.service_url))}"}
    response = httpx.post(urls["teams"], json=data, headers=headers, timeout=15)
    assert response.status_code < 500, (response.status_code, json.dumps(data)[:300])
    assert snapshot(container, everything=False) == before


def test_the_people_are_linked_as_the_tests_assume(container: Container) -> None:
    from sqlmodel import Session, select

    with Session(container.engine) as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
    assert dana.slack_user_id == "UDANA"
