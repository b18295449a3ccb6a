"""Charts and QBR decks reach Slack as files (files_upload_v2), after the answer, where they belong."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import pytest
from pptx import Presentation

from bot.container import Container
from bot.slack.app import SlackEdge, build_slack
from bot.slack.listeners.commands import FILES_FOLLOW
from bot.slack.worker import SlackWorker
from tests.slack.conftest import (
    DANA,
    SINGLE_WORKSPACE,
    InlineExecutor,
    ack_json,
    assert_valid_blocks,
    command_body,
    dispatch,
    event_body,
)
from tests.slack.fake_slack import BOT_USER_ID, FakeSlack

PNG = b"\x89PNG\r\n\x1a\n"
UPLOAD_STEPS = ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


class DeferredExecutor(Executor):
    """Holds bolt's lazy listeners until the test runs them: proves the ack needs none of them."""

    def __init__(self) -> None:
        self.queued: list[Callable[[], Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.queued.append(lambda: fn(*args, **kwargs))
        future: Future[Any] = Future()
        future.set_result(None)
        return future

    def run_all(self) -> None:
        while self.queued:
            self.queued.pop(0)()


@pytest.fixture
def deferred() -> DeferredExecutor:
    return DeferredExecutor()


class DeferredLater(SlackWorker):
    """Answers within the ack at once, and holds what is left for after it (the files)."""

    def __init__(self, deferred: DeferredExecutor) -> None:
        super().__init__(executor=InlineExecutor())
        self.deferred = deferred

    def later(self, job: Callable[[], Any]) -> bool:
        self.deferred.submit(job)
        return True


@pytest.fixture
def later_edge(container: Container, deferred: DeferredExecutor) -> SlackEdge:
    return build_slack(
        container,
        listener_executor=deferred,
        oauth=SINGLE_WORKSPACE,
        worker=DeferredLater(deferred),
    )


def upload_methods(fake: FakeSlack) -> list[str]:
    return [m for m in fake.methods() if m in UPLOAD_STEPS or m == "conversations.open"]


def test_health_chart_command_answers_first_then_uploads_two_charts_to_the_dm(
    later_edge: SlackEdge, deferred: DeferredExecutor, fake: FakeSlack
) -> None:
    answer = ack_json(dispatch(later_edge, command_body("/health", "acme chart")))
    assert_valid_blocks(answer["blocks"])
    assert answer["response_type"] == "ephemeral"
    assert "Acme Corp" in answer["text"]
    assert answer["blocks"][-1]["elements"][0]["text"] == FILES_FOLLOW
    # The ack went out with no upload made: the charts are drawn afterwards.
    assert upload_methods(fake) == []
    assert deferred.queued

    deferred.run_all()

    assert fake.calls_to("conversations.open")[0].args["users"] == DANA
    steps = [m for m in fake.methods() if m in UPLOAD_STEPS]
    # files_upload_v2: a URL per file, a POST per file, one completion for both.
    assert steps == [
        "files.getUploadURLExternal",
        "files.getUploadURLExternal",
        "upload",
        "upload",
        "files.completeUploadExternal",
    ]
    for call in fake.calls_to("files.getUploadURLExternal"):
        assert call.args["filename"].endswith(".png")
        assert int(call.args["length"]) > 1000
        assert "Acme Corp" in call.args["alt_txt"]
    files = fake.uploaded()
    assert [f.title for f in files] == [
        "Acme Corp — health, last 44 days",
        "Acme Corp — the indicators behind the score",
    ]
    for f in files:
        assert f.content is not None and f.content.startswith(PNG)
        # Private answer, so the charts go to Dana's DM with the app, not the channel.
        assert f.channel_id == f"D{DANA}"
        assert f.thread_ts is None


def test_a_mention_gets_its_chart_in_the_same_thread_after_the_answer(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    body = event_body(
        "app_mention.json",
        text=f"<@{BOT_USER_ID}> show me acme's trend",
        user=DANA,
        channel="C111",
        ts="1700000200.000100",
    )
    response = dispatch(edge, body, content_type="application/json")
    assert response.status == 200
    methods = fake.methods()
    assert methods.index("chat.postMessage") < methods.index("files.getUploadURLExternal")
    files = fake.uploaded()
    assert len(files) == 2
    assert {f.channel_id for f in files} == {"C111"}
    assert {f.thread_ts for f in files} == {"1700000200.000100"}
    # A chart in a thread needs no DM.
    assert fake.calls_to("conversations.open") == []


def test_qbr_command_sends_the_deck_to_the_dm_with_its_summary(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    answer = ack_json(dispatch(edge, command_body("/qbr", "acme")))
    assert_valid_blocks(answer["blocks"])
    assert "QBR prep for Acme Corp" in answer["text"]
    (deck,) = fake.uploaded()
    assert deck.filename.startswith("acme-corp-qbr-executive-") and deck.filename.endswith(".pptx")
    assert deck.channel_id == f"D{DANA}"
    assert deck.initial_comment and "slides" in deck.initial_comment
    titles = [s.shapes.title.text for s in Presentation(io.BytesIO(deck.content or b"")).slides]
    assert titles[0] == "Acme Corp: Executive business review"
    assert "What we deliberately leave out of this review" in titles


def test_health_map_in_a_dm_thread(edge: SlackEdge, fake: FakeSlack) -> None:
    body = event_body(
        "message_im.json", text="show my portfolio map", user=DANA, ts="1700000300.000100"
    )
    assert dispatch(edge, body, content_type="application/json").status == 200
    (chart,) = fake.uploaded()
    assert chart.title == "Health map — your accounts"
    assert chart.thread_ts == "1700000300.000100"


def test_a_failed_upload_is_said_in_the_thread_and_breaks_nothing(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    fake.fail("files.getUploadURLExternal", error="invalid_auth")
    body = event_body(
        "app_mention.json",
        text=f"<@{BOT_USER_ID}> acme trend",
        user=DANA,
        channel="C111",
        ts="1700000400.000100",
    )
    assert dispatch(edge, body, content_type="application/json").status == 200
    assert fake.uploaded() == []
    texts = [c.args.get("text", "") for c in fake.calls_to("chat.postMessage")]
    assert any(t.startswith("Not attached:") for t in texts)


def test_no_chart_without_asking(edge: SlackEdge, fake: FakeSlack) -> None:
    answer = ack_json(dispatch(edge, command_body("/health", "acme")))
    assert all(b.get("elements", [{}])[0].get("text") != FILES_FOLLOW for b in answer["blocks"])
    assert [m for m in fake.methods() if m in UPLOAD_STEPS] == []
