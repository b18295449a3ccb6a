"""Optional multi-workspace install: /slack/install → Slack → /slack/oauth_redirect, tokens in our DB."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml

from bot.container import Container
from bot.server import create_app
from bot.slack.app import SlackEdge, build_slack
from bot.slack.config import SlackOAuthConfig
from bot.slack.worker import SlackWorker
from handlers.reply import Reply
from tests.http_server import ServerThread
from tests.slack.conftest import DANA, command_body, sign
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_manifest import MANIFEST

pytest.importorskip("greenlet", reason="slack_sdk's SQLAlchemy stores need greenlet")

OAUTH = SlackOAuthConfig(client_id="111.222", client_secret="oauth-secret")


@pytest.fixture
def installable(container: Container) -> Iterator[tuple[SlackEdge, ServerThread]]:
    # Multi-workspace: no SLACK_BOT_TOKEN, every token comes from an install.
    settings = container.settings.model_copy(update={"slack_bot_token": None})
    multi = Container(settings=settings)
    # A generous ack budget: these tests are about tokens (tests/slack/test_ack_first.py times acks).
    edge = build_slack(multi, oauth=OAUTH, worker=SlackWorker(budget=10))
    with ServerThread(create_app(multi, slack_app=edge.app, with_teams=False)) as server:
        yield edge, server


def install(server: ServerThread, code: str = "c0de") -> httpx.Response:
    page = httpx.get(server.url + "/slack/install", timeout=10)
    assert page.status_code == 200
    link = re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', page.text)
    assert link is not None, page.text
    query = parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query)
    assert query["client_id"] == ["111.222"]
    assert "users:read.email" in query["scope"][0].split(",")
    cookie = page.headers["set-cookie"].split(";")[0]
    return httpx.get(
        server.url + "/slack/oauth_redirect",
        params={"code": code, "state": query["state"][0]},
        headers={"cookie": cookie},
        timeout=10,
    )


def test_install_then_use_the_installed_token(
    installable: tuple[SlackEdge, ServerThread], fake: FakeSlack
) -> None:
    _, server = installable
    done = install(server)
    assert done.status_code == 200, done.text
    assert fake.calls_to("oauth.v2.access")[0].args["code"] == "c0de"

    body = command_body("/health", "acme", user=DANA)
    answer = httpx.post(
        server.url + "/slack/events",
        content=body.encode(),
        headers={"content-type": "application/x-www-form-urlencoded", **sign(body)},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json()["blocks"][0]["text"]["text"].startswith("Acme Corp — ")
    # Who asked was looked up with the installed workspace's token.
    assert fake.calls_to("users.info")[-1].headers["authorization"] == "Bearer xoxb-installed"


def test_a_forged_state_installs_nothing(
    installable: tuple[SlackEdge, ServerThread], fake: FakeSlack
) -> None:
    _, server = installable
    response = httpx.get(
        server.url + "/slack/oauth_redirect", params={"code": "c0de", "state": "forged"}, timeout=10
    )
    assert response.status_code == 400
    assert fake.calls_to("oauth.v2.access") == []


def test_scheduled_posts_use_the_latest_install(
    installable: tuple[SlackEdge, ServerThread], fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.slack.notifier import SlackNotifier
    from scheduler.notifier import DeliveryError

    edge, server = installable
    monkeypatch.setenv("SLACK_CLIENT_ID", "111.222")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "oauth-secret")
    notifier = SlackNotifier(edge.services.container)
    reply = Reply(template="notice", context={"text": "hello"}, text="hello")
    with pytest.raises(DeliveryError):
        notifier.send("C123", reply)  # nothing installed yet
    install(server)
    notifier.send("C123", reply)
    assert fake.calls_to("chat.postMessage")[-1].headers["authorization"] == "Bearer xoxb-installed"


def test_a_strangers_workspace_cannot_install_the_app_and_take_over_scheduled_posts(
    installable: tuple[SlackEdge, ServerThread], fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.slack.notifier import SlackNotifier

    edge, server = installable
    monkeypatch.setenv("SLACK_CLIENT_ID", "111.222")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "oauth-secret")
    assert install(server).status_code == 200  # our workspace, first
    # Public distribution: anyone on Slack can open /slack/install for their own workspace.
    refused = install(server, code="c0de-stranger")
    assert refused.status_code == 403 and "SLACK_ALLOWED_TEAMS" in refused.text

    SlackNotifier(edge.services.container).send(
        "C123", Reply(template="notice", context={"text": "digest"}, text="digest")
    )
    assert fake.calls_to("chat.postMessage")[-1].headers["authorization"] == "Bearer xoxb-installed"
    assert install(server).status_code == 200  # our own workspace may install again


def test_an_allow_list_names_the_workspaces_that_may_install(
    container: Container, fake: FakeSlack
) -> None:
    settings = container.settings.model_copy(update={"slack_bot_token": None})
    allowed = SlackOAuthConfig(
        client_id="111.222", client_secret="oauth-secret", allowed_teams="T999, E777"
    )
    edge = build_slack(Container(settings=settings), oauth=allowed)
    with ServerThread(create_app(edge.services.container, slack_app=edge.app)) as server:
        assert install(server).status_code == 403  # T111 is not on the list
        assert install(server, code="c0de-stranger").status_code == 200


def test_oauth_scopes_match_the_manifest() -> None:
    from bot.slack.oauth import BOT_SCOPES

    manifest = yaml.safe_load(MANIFEST.read_text())
    assert set(BOT_SCOPES) == set(manifest["oauth_config"]["scopes"]["bot"])
