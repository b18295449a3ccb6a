"""Slack test fixtures: a fake Web API, a seeded demo database, signed payloads built from real fixtures."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from copy import deepcopy
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from slack_bolt import BoltRequest, BoltResponse
from slack_sdk.models.blocks import Block
from sqlalchemy import text

from bot.config import Settings
from bot.container import Container
from bot.slack.app import SlackEdge, build_slack
from bot.slack.config import SlackOAuthConfig
from storage.db import engine_for, make_engine, upgrade
from tests.conftest import fixture_path
from tests.slack.fake_slack import FakeSlack, running_fake

SECRET = "test-signing-secret"
# Explicitly off, whatever SLACK_CLIENT_ID the environment or a .env file holds.
SINGLE_WORKSPACE = SlackOAuthConfig(client_id=None, client_secret=None)
TODAY = date(2026, 11, 23)

# Slack users the fake knows; the demo portfolio's CSMs are matched to them by email.
DANA = "UDANA"  # dana@example.com, owner of Acme Corp
MARCO = "UMARCO"  # marco@example.com, another CSM
ALEX = "UALEX"  # alex@example.com, the CSMs' manager
STRANGER = "USTRANGER"  # an email nobody uses: read-only


class InlineExecutor(Executor):
    """Runs bolt's lazy listeners at once, so a dispatch() returns after all its work is done."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


# -- database ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 60-account demo portfolio, seeded once per run; each test gets a copy."""
    from handlers.demo import seed_demo

    path = tmp_path_factory.mktemp("slack-demo") / "demo.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    seed_demo(engine, today=TODAY, accounts=60)
    with engine.begin() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    return path


@pytest.fixture
def demo_db_url(demo_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "csm.db"
    shutil.copy(demo_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    for fake in running_fake():
        fake.add_user(DANA, "dana@example.com", "Dana Whitfield")
        fake.add_user(MARCO, "marco@example.com", "Marco Rossi")
        fake.add_user(ALEX, "alex@example.com", "Alex Morgan")
        fake.add_user(STRANGER, "someone@elsewhere.example", "Sid Stranger")
        yield fake


@pytest.fixture
def container(demo_db_url: str, fake: FakeSlack) -> Iterator[Container]:
    settings = Settings(
        database_url=demo_db_url,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        today=TODAY.isoformat(),
    )
    yield Container(settings=settings)
    engine_for.cache_clear()


@pytest.fixture
def edge(container: Container) -> SlackEdge:
    """The real Slack app, with lazy listeners run inline (dispatch returns when all is done)."""
    return build_slack(container, listener_executor=InlineExecutor(), oauth=SINGLE_WORKSPACE)


# -- signed requests built from the real payloads --------------------------------------------------
def sign(body: str, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    """Headers Slack would send: v0 HMAC-SHA256 over "v0:{timestamp}:{body}"."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": ts, "x-slack-signature": f"v0={digest}"}


FORM = "application/x-www-form-urlencoded"


def command_body(
    command: str,
    text: str = "",
    *,
    user: str = DANA,
    channel: str = "C111",
    response_url: str = "",
    trigger_id: str = "",
) -> str:
    """slash_command.txt (bolt's test payload) with the command, text, user and channel swapped.

    trigger_id: a new invocation's own id (Slack gives each command a new one); by default the
    fixture's, as if the same invocation arrived again.
    """
    fields = dict(parse_qsl(fixture_path("slack", "slash_command.txt").read_text().strip()))
    fields.update(command=command, text=text, user_id=user, channel_id=channel)
    if response_url:
        fields["response_url"] = response_url
    if trigger_id:
        fields["trigger_id"] = trigger_id
    return urlencode(fields)


def block_actions_body(
    action: dict[str, Any],
    *,
    user: str = DANA,
    channel: str = "C111",
    response_url: str,
    ephemeral: bool = True,
) -> str:
    """block_actions.json (a click in an ephemeral message) with our action, user and channel."""
    payload = json.loads(fixture_path("slack", "block_actions.json").read_text())
    payload["user"]["id"] = user
    payload["channel"]["id"] = channel
    payload["container"]["channel_id"] = channel
    payload["container"]["is_ephemeral"] = ephemeral
    payload["response_url"] = response_url
    payload["actions"] = [{"block_id": "b", "action_ts": "1596530385.194939", **action}]
    return "payload=" + quote(json.dumps(payload))


def view_submission_body(
    view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str = DANA
) -> str:
    """view_submission.json with a rendered modal and the state a user would submit."""
    payload = json.loads(fixture_path("slack", "view_submission.json").read_text())
    payload["user"]["id"] = user
    submitted = deepcopy(payload["view"])
    submitted.update(
        {
            "callback_id": view["callback_id"],
            "private_metadata": view.get("private_metadata", ""),
            "blocks": view["blocks"],
            "state": {"values": {block: {"value": v} for block, v in values.items()}},
        }
    )
    payload["view"] = submitted
    return "payload=" + quote(json.dumps(payload))


def event_body(fixture: str, *, event_id: str = "Ev111", **event: Any) -> str:
    """An Events API envelope (app_mention.json, message_im.json...) with event fields replaced."""
    payload = json.loads(fixture_path("slack", fixture).read_text())
    payload["event_id"] = event_id
    payload["event"].update(event)
    for key in [k for k, v in event.items() if v is None]:
        del payload["event"][key]
    return json.dumps(payload)


def dispatch(
    edge: SlackEdge,
    body: str,
    content_type: str = FORM,
    headers: dict[str, str] | None = None,
    *,
    signed: bool = True,
) -> BoltResponse:
    """Send a request through the real bolt app, signed unless told otherwise."""
    all_headers = {"content-type": content_type, **(sign(body) if signed else {})}
    all_headers.update(headers or {})
    return edge.app.dispatch(BoltRequest(body=body, headers=all_headers))


def ack_json(response: BoltResponse) -> dict[str, Any]:
    assert response.status == 200, (response.status, response.body)
    return json.loads(response.body) if response.body else {}


# -- Block Kit validity ----------------------------------------------------------------------------
def assert_valid_blocks(blocks: list[dict[str, Any]], limit: int = 50) -> None:
    """Parse every block with slack_sdk's models (which enforce Block Kit limits) and count them."""
    assert 0 < len(blocks) <= limit, f"{len(blocks)} blocks (limit {limit})"
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, f"unknown block {raw}"
        block.validate_json()
        assert block.to_dict()  # to_dict() validates nested elements too
    total = len(json.dumps(blocks, ensure_ascii=False))
    assert total < 13_200 or limit > 50, f"{total} chars: msg_blocks_too_long"


def mrkdwn_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every mrkdwn string in a block tree: where an unescaped <!channel> would ping people."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


# -- real HTTP -------------------------------------------------------------------------------------


def confirm_value(blocks: list[dict[str, Any]]) -> str:
    """The key on the "confirm" button of a change asked for in words (action_confirm)."""
    [value] = [
        e["value"]
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == "action_confirm"
    ]
    return str(value)


def click_confirm(
    edge: SlackEdge,
    blocks: list[dict[str, Any]],
    *,
    response_url: str,
    user: str = DANA,
    channel: str = "C111",
    ephemeral: bool = True,
) -> None:
    """Click the confirm button of a confirmation card, through the real app."""
    action = {"type": "button", "action_id": "action_confirm", "value": confirm_value(blocks)}
    body = block_actions_body(
        action, user=user, channel=channel, response_url=response_url, ephemeral=ephemeral
    )
    assert dispatch(edge, body).status == 200
