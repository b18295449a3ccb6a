"""The same Slack app over real HTTP through bot.server (uvicorn on 127.0.0.1), plus /healthz and /metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import Session, col, func, select

from bot.container import Container
from bot.server import create_app
from bot.slack.app import build_slack
from storage.models import AuditLog, Milestone
from storage.platform_models import SlackEventReceipt
from tests.conftest import fixture_path
from tests.http_server import ServerThread
from tests.slack.conftest import (
    DANA,
    FORM,
    SINGLE_WORKSPACE,
    assert_valid_blocks,
    block_actions_body,
    command_body,
    event_body,
    sign,
)
from tests.slack.fake_slack import FakeSlack


@pytest.fixture
def server(container: Container) -> Iterator[ServerThread]:
    # The production wiring: the default (threaded) lazy listener runner, not the inline one.
    slack = build_slack(container, oauth=SINGLE_WORKSPACE).app
    app = create_app(container, slack_app=slack, with_teams=False)
    with ServerThread(app) as running:
        yield running


def post(
    server: ServerThread, body: str, content_type: str = FORM, **headers: str
) -> httpx.Response:
    return httpx.post(
        server.url + "/slack/events",
        content=body.encode(),
        headers={"content-type": content_type, **sign(body), **headers},
        timeout=10,
    )


def test_health_command_over_http(server: ServerThread) -> None:
    response = post(server, command_body("/health", "acme", user=DANA))
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_type"] == "ephemeral"
    assert answer["blocks"][0]["text"]["text"].startswith("Acme Corp — ")
    assert_valid_blocks(answer["blocks"])


def test_forged_request_over_http_is_401_and_changes_nothing(
    server: ServerThread, container: Container, fake: FakeSlack
) -> None:
    with Session(container.engine) as session:
        milestone = session.exec(
            select(Milestone).where(Milestone.account_id == 1, col(Milestone.status) != "blocked")
        ).first()
        assert milestone is not None
    body = block_actions_body(
        {
            "type": "overflow",
            "action_id": "milestone_menu",
            "selected_option": {"value": f"status:{milestone.id}:blocked"},
        },
        response_url=fake.response_url(),
    )
    stale = sign(body, timestamp=int(time.time()) - 600)
    for headers in (
        {},
        {"x-slack-signature": "v0=" + "0" * 64, "x-slack-request-timestamp": str(int(time.time()))},
        stale,
    ):
        response = httpx.post(
            server.url + "/slack/events",
            content=body.encode(),
            headers={"content-type": FORM, **headers},
            timeout=10,
        )
        assert response.status_code == 401
    with Session(container.engine) as session:
        assert session.get(Milestone, milestone.id).status == milestone.status  # type: ignore[union-attr]
        assert session.exec(select(func.count(AuditLog.id))).one() == 0
    assert fake.calls == []


def test_url_verification_over_http(server: ServerThread) -> None:
    body = fixture_path("slack", "url_verification.json").read_text()
    response = post(server, body, "application/json")
    assert response.status_code == 200
    assert response.json()["challenge"] == json.loads(body)["challenge"]


def test_mention_over_http_is_acked_then_answered_once_despite_retries(
    server: ServerThread, container: Container, fake: FakeSlack
) -> None:
    body = event_body("app_mention.json", event_id="EvHTTP", text="<@U1> help", user=DANA)
    assert post(server, body, "application/json").status_code == 200
    fake.wait_for("chat.postMessage")
    retried = post(server, body, "application/json", **{"x-slack-retry-num": "1"})
    assert retried.status_code == 200
    time.sleep(0.3)  # give a wrongly re-run lazy listener the time to post again
    assert len(fake.calls_to("chat.postMessage")) == 1
    with Session(container.engine) as session:
        assert session.exec(select(func.count()).select_from(SlackEventReceipt)).one() == 1


def test_healthz_and_metrics(server: ServerThread) -> None:
    post(server, command_body("/risks", user=DANA))
    health = httpx.get(server.url + "/healthz", timeout=5)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    metrics = httpx.get(server.url + "/metrics", timeout=5)
    assert metrics.status_code == 200
    assert 'csm_http_requests_total{route="/slack/events",status="200"}' in metrics.text
    assert 'csm_slack_requests_total{kind="command"}' in metrics.text


def test_healthz_reports_a_broken_database(tmp_path, fake: FakeSlack) -> None:
    from bot.config import Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/missing/dir/../nope.db",
        slack_signing_secret=None,
        slack_api_url=fake.api_url,
    )
    broken = Container(settings=settings)
    # A path under a file cannot be opened: the check fails and says so.
    (tmp_path / "missing").write_text("not a directory")
    app = create_app(broken, with_teams=False)
    with ServerThread(app) as running:
        response = httpx.get(running.url + "/healthz", timeout=5)
        assert response.status_code == 503
        assert httpx.post(running.url + "/slack/events", content=b"", timeout=5).status_code == 404


def test_milestone_click_over_http_updates_db_and_message(
    server: ServerThread, container: Container, fake: FakeSlack
) -> None:
    with Session(container.engine) as session:
        milestone = session.exec(
            select(Milestone).where(Milestone.account_id == 1, col(Milestone.status) == "at_risk")
        ).first()
        assert milestone is not None
    body = block_actions_body(
        {
            "type": "overflow",
            "action_id": "milestone_menu",
            "selected_option": {"value": f"status:{milestone.id}:done"},
        },
        user=DANA,
        response_url=fake.response_url(),
    )
    assert post(server, body).status_code == 200
    [update] = fake.wait_for("webhook:r1")  # the click is acked first, then answered
    assert update.args["replace_original"] is True
    assert_valid_blocks(update.args["blocks"])
    with Session(container.engine) as session:
        assert session.get(Milestone, milestone.id).status == "done"  # type: ignore[union-attr]
        assert session.exec(select(func.count(AuditLog.id))).one() == 1


def test_a_rate_limited_answer_is_retried_after_retry_after(
    server: ServerThread, fake: FakeSlack
) -> None:
    fake.fail("chat.postMessage", status=429, error="ratelimited", retry_after=1)
    body = event_body("app_mention.json", event_id="Ev429", text="<@U1> help", user=DANA)
    assert post(server, body, "application/json").status_code == 200
    first, second = fake.wait_for("chat.postMessage", count=2, timeout=5)
    assert second.at - first.at >= 0.9  # slack_sdk's RateLimitErrorRetryHandler honoured it


def test_teams_messages_are_mounted_on_the_same_server(container: Container) -> None:
    paths = {getattr(route, "path", None) for route in create_app(container).routes}
    assert {"/slack/events", "/healthz", "/metrics", "/api/messages"} <= paths
    without = {
        getattr(route, "path", None) for route in create_app(container, with_teams=False).routes
    }
    assert "/api/messages" not in without
