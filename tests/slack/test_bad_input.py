"""Bad input over real HTTP: refused with a 4xx before it costs anything, never a 500, nothing changes."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from bot.container import Container
from bot.server import create_app
from bot.slack.app import build_slack
from bot.slack.worker import SlackWorker
from storage.db import engine_for
from tests.http_server import ServerThread
from tests.slack.conftest import (
    DANA,
    FORM,
    SECRET,
    SINGLE_WORKSPACE,
    TODAY,
    command_body,
    sign,
)
from tests.slack.fake_slack import FakeSlack, running_fake

JSON = "application/json"


# One server for the module: nothing here may change the database (that is what is tested).
@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeSlack]:
    yield from running_fake()


@pytest.fixture(scope="module")
def server(
    demo_template: Path, tmp_path_factory: pytest.TempPathFactory, module_fake: FakeSlack
) -> Iterator[ServerThread]:
    path = tmp_path_factory.mktemp("bad-input") / "csm.db"
    shutil.copy(demo_template, path)
    settings = Settings(
        database_url=f"sqlite:///{path}",
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=module_fake.api_url,
        today=TODAY.isoformat(),
    )
    container = Container(settings=settings)
    slack = build_slack(container, oauth=SINGLE_WORKSPACE, worker=SlackWorker(budget=10)).app
    with ServerThread(create_app(container, slack_app=slack, with_teams=False)) as running:
        yield running
    engine_for.cache_clear()


@pytest.fixture
def fake(module_fake: FakeSlack) -> FakeSlack:
    module_fake.reset()
    return module_fake


def send(
    server: ServerThread, body: bytes, content_type: str = FORM, **headers: str
) -> httpx.Response:
    return httpx.post(
        server.url + "/slack/events",
        content=body,
        headers={"content-type": content_type, **headers},
        timeout=10,
    )


MALFORMED = [
    (b"{", JSON),
    (b"[1, 2]", JSON),
    (b"\xff\xfe", JSON),
    (b"payload=%7B", FORM),
    (b"payload=%5B%5D", FORM),
    (b'{"type": "block_actions", "actions": 5}', JSON),
    (b'{"command": ["/health"], "user": 7}', JSON),
    (b'{"type": "event_callback", "event": "app_mention"}', JSON),
    (b'{"type": "event_callback", "authorizations": "x"}', JSON),
]
IDS = [
    "brace",
    "json-list",
    "not-utf8",
    "payload-brace",
    "payload-list",
    "actions-int",
    "command-list",
    "event-string",
    "authorizations-string",
]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED, ids=IDS)
def test_unsigned_malformed_bodies_are_401_before_any_parsing(
    server: ServerThread, fake: FakeSlack, body: bytes, content_type: str
) -> None:
    assert send(server, body, content_type).status_code == 401
    assert fake.calls == []


@pytest.mark.parametrize(("body", "content_type"), MALFORMED, ids=IDS)
def test_signed_malformed_bodies_are_400(
    server: ServerThread, fake: FakeSlack, body: bytes, content_type: str
) -> None:
    timestamp = str(int(time.time()))
    digest = hmac.new(
        SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    headers = {"x-slack-request-timestamp": timestamp, "x-slack-signature": f"v0={digest}"}

    assert send(server, body, content_type, **headers).status_code == 400
    assert fake.calls == []


@pytest.mark.parametrize("timestamp", ["soon", "", "1e9", "-1", "9" * 40, "0x10", "1.5"])
def test_a_timestamp_that_is_not_a_number_is_401(
    server: ServerThread, fake: FakeSlack, timestamp: str
) -> None:
    body = command_body("/health", "acme")
    headers = {"x-slack-request-timestamp": timestamp, "x-slack-signature": "v0=" + "0" * 64}

    assert send(server, body.encode(), **headers).status_code == 401
    assert fake.calls == []


def test_a_body_over_the_cap_is_refused_before_it_is_read(
    server: ServerThread, fake: FakeSlack
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b"x" * (512 * 1024)  # 2 MiB in all, sent without a Content-Length

    streamed = httpx.post(
        server.url + "/slack/events",
        content=chunks(),
        headers={"content-type": FORM},
        timeout=10,
    )
    declared = httpx.post(
        server.url + "/slack/events",
        content=b"x" * (1024 * 1024 + 1),
        headers={"content-type": FORM},
        timeout=10,
    )

    assert streamed.status_code == 413 and declared.status_code == 413
    assert fake.calls == []


def test_a_40000_character_word_is_cut_before_matching(server: ServerThread) -> None:
    body = command_body("/health", "acme " + "ab" * 20_000, user=DANA)

    response = send(server, body.encode(), **sign(body))

    assert response.status_code == 200
    answer = json.dumps(response.json())
    # The name looked for is bounded (the reply quotes it), and nothing is matched on the rest.
    assert len(answer) < 2_000, len(answer)
    assert "ab" * 100 not in answer
