"""Socket Mode: the same app answers envelopes from Slack's websocket (no signature, same listeners)."""

from __future__ import annotations

import json

import pytest
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.container import Container
from bot.server import serve
from bot.slack.app import SlackEdge
from tests.conftest import fixture_path
from tests.slack.conftest import DANA, assert_valid_blocks
from tests.slack.fake_slack import FakeSlack


def envelope(name: str) -> dict:
    return json.loads(fixture_path("slack", name).read_text())


def test_a_slash_command_envelope_is_answered_in_the_ack(edge: SlackEdge) -> None:
    data = envelope("slash_command_socket_mode_envelope.json")
    data["payload"].update(command="/health", text="acme", user_id=DANA)
    response = run_bolt_app(edge.app, SocketModeRequest.from_dict(data))
    assert response.status == 200
    answer = json.loads(response.body)
    assert answer["blocks"][0]["text"]["text"].startswith("Acme Corp — ")
    assert_valid_blocks(answer["blocks"])


def test_a_redelivered_mention_envelope_is_answered_once(edge: SlackEdge, fake: FakeSlack) -> None:
    data = envelope("app_mention_socket_mode_envelope.json")
    data["payload"]["event"].update(text="<@U111> how is globex doing?", user=DANA)
    assert run_bolt_app(edge.app, SocketModeRequest.from_dict(data)).status == 200
    data.update(retry_attempt=1, retry_reason="timeout")  # Socket Mode's way of retrying
    assert run_bolt_app(edge.app, SocketModeRequest.from_dict(data)).status == 200
    [post] = fake.calls_to("chat.postMessage")
    assert post.args["thread_ts"] == "1610241741.000200"


def test_socket_mode_needs_an_app_token(container: Container) -> None:
    with pytest.raises(ValueError, match="SLACK_APP_TOKEN"):
        serve(container, port=0, with_scheduler=False, socket_mode=True)
