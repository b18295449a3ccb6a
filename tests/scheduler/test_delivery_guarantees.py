"""What the outbox promises through failures: once, nothing lost through outages, few admin messages."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from handlers.reply import Reply
from scheduler.clock import SimulatedClock
from scheduler.dispatcher import Dispatcher, DispatchReport
from scheduler.models import Delivery, DeliveryPause
from scheduler.notifier import DeliveryError, RecordingNotifier
from scheduler.outbox import OutboxItem, enqueue
from scheduler.pacing import Pacing
from storage.db import make_engine, session_scope, upgrade

START = datetime(2026, 11, 23, 9, tzinfo=UTC)
NO_PACING = {"slack": Pacing()}


def item(
    n: int, target: str, kind: str = "renewal_reminder", platform: str = "slack"
) -> OutboxItem:
    reply = Reply(
        "error", {"message": f"message {n}", "n": n}, f"message {n}", visibility="channel"
    )
    return OutboxItem(kind, f"renewal:{n}", target, "30d", platform, reply)


def rows(engine: Engine) -> list[Delivery]:
    with session_scope(engine) as s:
        return list(s.exec(select(Delivery).order_by(Delivery.id)).scalars())  # type: ignore[call-overload]


def _fake_slack_module():  # type: ignore[no-untyped-def]
    if "fake_slack" in sys.modules:
        return sys.modules["fake_slack"]
    path = Path(__file__).resolve().parents[1] / "slack" / "fake_slack.py"
    spec = importlib.util.spec_from_file_location("fake_slack", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_slack"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_slack() -> Iterator[object]:
    fake = _fake_slack_module().FakeSlack().start()
    try:
        yield fake
    finally:
        fake.stop()


def slack_notifier(fake):  # type: ignore[no-untyped-def]
    from slack_sdk import WebClient

    from bot.slack.notifier import SlackNotifier

    return SlackNotifier(object(), client=WebClient(token="xoxb-test", base_url=fake.api_url))  # type: ignore[arg-type]


# -- nothing lost to an outage; the admins told once -----------------------------------------


def test_a_revoked_token_pauses_posting_tells_admins_once_and_resumes_by_itself(
    engine: Engine, fake_slack
) -> None:  # type: ignore[no-untyped-def]
    """One token rotation failed all 350 posts for good, and fixing the token re-sent nothing."""
    clock = SimulatedClock(START)
    with session_scope(engine) as s:
        enqueue(s, [item(n, f"C{n}") for n in range(30)], now=START)
    dispatcher = Dispatcher(
        engine,
        {"slack": slack_notifier(fake_slack)},
        clock=clock.now,
        sleep=clock.sleep,
        pacing=NO_PACING,
        admin_targets={"slack": "C-ADMIN"},
        probe_seconds=60,
    )

    def refused_calls() -> int:
        # The first Web API call that meets the revoked token (the channel's sharing check, or
        # the post itself) pauses the workspace.
        return len(fake_slack.calls_to("chat.postMessage")) + len(
            fake_slack.calls_to("conversations.info")
        )

    fake_slack.refuse = "token_revoked"
    report = dispatcher.dispatch_due()
    assert report.paused == 1 and report.failed == 0
    assert refused_calls() == 1  # not 30 failures in a row
    with session_scope(engine) as s:
        (pause,) = s.exec(select(DeliveryPause)).scalars()  # type: ignore[call-overload]
    assert (pause.platform, pause.reason) == ("slack", "token_revoked")
    # While paused nothing is posted, and the probe waits for its turn.
    clock.advance(seconds=30)
    dispatcher.dispatch_due()
    assert refused_calls() == 1
    assert fake_slack.calls_to("auth.test") == []
    # Still refused at the first probe: still paused, nothing failed.
    clock.advance(seconds=31)
    dispatcher.dispatch_due()
    assert len(fake_slack.calls_to("auth.test")) == 1
    assert refused_calls() == 1
    # The admin fixes the token; the next probe resumes posting without a restart.
    fake_slack.refuse = None
    refused_posts = len(fake_slack.calls_to("chat.postMessage"))
    clock.advance(seconds=61)
    dispatcher.drain(max_wait=600)
    final = rows(engine)
    assert {r.status for r in final} == {"sent"}
    posted = Counter(
        p.args["channel"] for p in fake_slack.calls_to("chat.postMessage")[refused_posts:]
    )
    assert all(posted[f"C{n}"] == 1 for n in range(30))
    alerts = [r for r in final if r.kind == "delivery_paused"]
    assert [(r.target, r.status) for r in alerts] == [("C-ADMIN", "sent")]
    assert "token_revoked" in alerts[0].text


def test_one_dead_dm_makes_one_admin_report_not_one_per_post(engine: Engine) -> None:
    """49 reports went out for one dead DM, one per failed delivery."""
    clock = SimulatedClock(START)
    slack = RecordingNotifier(platform="slack")
    slack.failures["csm:7"] = [DeliveryError("cannot_dm_bot", permanent=True) for _ in range(49)]
    with session_scope(engine) as s:
        enqueue(s, [item(n, "csm:7") for n in range(49)], now=START)
    dispatcher = Dispatcher(
        engine,
        {"slack": slack},
        clock=clock.now,
        sleep=clock.sleep,
        pacing=NO_PACING,
        admin_targets={"slack": "C-ADMIN"},
    )
    report = dispatcher.drain(max_wait=3600)
    assert report.failed == 49
    (admin,) = slack.to("C-ADMIN")
    assert admin.template == "delivery_report"
    assert admin.context["report"]["total"] == 49
    assert admin.context["report"]["cause"] == "cannot_dm_bot"
    assert len(admin.context["report"]["examples"]) == 10  # and "…and 39 more"
    # Another failure of the same cause within the hour waits for the next hour's report.
    slack.failures["csm:8"] = [DeliveryError("cannot_dm_bot", permanent=True)]
    with session_scope(engine) as s:
        enqueue(s, [item(100, "csm:8")], now=clock.now())
    dispatcher.dispatch_due()
    assert len(slack.to("C-ADMIN")) == 1
    clock.advance(hours=1, minutes=2)
    dispatcher.drain(max_wait=3600)
    later = slack.to("C-ADMIN")
    assert len(later) == 2 and later[1].context["report"]["total"] == 1


def test_the_outboxs_own_database_errors_are_retried_and_the_batch_goes_on(
    engine: Engine,
) -> None:
    """A database error in _finish, _on_error or _release abandoned the rest of the batch."""
    slack = RecordingNotifier(platform="slack")
    with session_scope(engine) as s:
        enqueue(s, [item(n, f"C{n}") for n in range(6)])
    failures = {"left": 3}

    @event.listens_for(engine, "before_cursor_execute")
    def flaky(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        recording_sent = statement.startswith("UPDATE delivery SET status") and "sent" in str(
            params
        )
        if recording_sent and failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError(statement, params, Exception("database is locked"))

    try:
        report = Dispatcher(
            engine, {"slack": slack}, sleep=lambda _s: None, pacing=NO_PACING
        ).drain(max_wait=0)
    finally:
        event.remove(engine, "before_cursor_execute", flaky)
    assert failures["left"] == 0  # the faults really happened
    assert report.sent == 6 and report.errors == []
    final = rows(engine)
    assert [r.status for r in final] == ["sent"] * 6
    assert Counter(s.reply.context["n"] for s in slack.sent) == dict.fromkeys(range(6), 1)


# -- several replicas on PostgreSQL ------------------------------------------------------------


@pytest.mark.postgres
def test_a_claim_takes_no_more_rows_than_asked(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    with session_scope(engine) as s:
        enqueue(s, [item(n, f"C{n}") for n in range(20)])
    dispatcher = Dispatcher(engine, {"slack": RecordingNotifier(platform="slack")})
    claimed = dispatcher._claim(["slack"], 3)
    assert [c.id for c in claimed] == [1, 2, 3]
    engine.dispose()


def test_claims_hold_at_most_twenty_rows_of_one_channel(db_url: str) -> None:
    """Each claim took the busy channel's next 20 rows, whatever the hand held already: five
    claims filled a hand of 100 with the risk channel, which posts once a second, and the other
    workers stood idle for minutes."""
    from scheduler.dispatcher import PER_CHANNEL_CLAIM

    upgrade(db_url)
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        enqueue(
            s, [item(n, "CRISK") for n in range(60)] + [item(60 + n, f"C{n}") for n in range(30)]
        )
    dispatcher = Dispatcher(engine, {"slack": RecordingNotifier(platform="slack")})
    claimed = []
    for _ in range(4):
        claimed += dispatcher._claim(["slack"], 10)
    risk = [c.id for c in claimed if c.target == "CRISK"]
    assert risk == list(range(1, PER_CHANNEL_CLAIM + 1))
    assert len(claimed) == 40  # the rest from the other channels
    # Another replica tops up its own hand with the channel's next rows.
    other = Dispatcher(engine, {"slack": RecordingNotifier(platform="slack")}, worker_id="other")
    more = [c.id for c in other._claim(["slack"], 100) if c.target == "CRISK"]
    assert more == list(range(PER_CHANNEL_CLAIM + 1, 2 * PER_CHANNEL_CLAIM + 1))
    engine.dispose()


def test_a_row_whose_own_lease_ran_out_is_claimed_again(engine: Engine) -> None:
    """Rows this replica holds count against the channel's 20, but not once their lease is over
    (a row whose bookkeeping failed is left to its lease, and must come back, even to us)."""
    clock = SimulatedClock(START)
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C1")], now=START)
    dispatcher = Dispatcher(
        engine, {"slack": RecordingNotifier(platform="slack")}, clock=clock.now, lease_seconds=30
    )
    assert [c.id for c in dispatcher._claim(["slack"], 10)] == [1]
    assert dispatcher._claim(["slack"], 10) == []
    clock.advance(seconds=31)
    assert [c.id for c in dispatcher._claim(["slack"], 10)] == [1]


class SlowPlatform(RecordingNotifier):
    """Each post takes a while, like Slack on a bad day (1.6 s per post in the report)."""

    def _post(self, target: str, reply: Reply, delivery_id: str | None) -> str:
        time.sleep(0.25)
        return super()._post(target, reply, delivery_id)


@pytest.mark.postgres
def test_leases_are_renewed_so_a_slow_replica_keeps_its_claims(postgres_url: str) -> None:
    """A 300 s lease never renewed let another replica take over rows still being sent."""
    upgrade(postgres_url)
    seed = make_engine(postgres_url)
    with session_scope(seed) as s:
        enqueue(s, [item(n, "C1") for n in range(8)])  # one channel: one post at a time
    platform = SlowPlatform(platform="slack")

    def replica(name: str) -> None:
        engine = make_engine(postgres_url)
        Dispatcher(
            engine,
            {"slack": platform},
            worker_id=name,
            lease_seconds=0.6,  # shorter than the batch takes: only renewal keeps it
            pacing=NO_PACING,
        ).drain(max_wait=1)
        engine.dispose()

    threads = [threading.Thread(target=replica, args=(f"r{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert Counter(s.reply.context["n"] for s in platform.sent) == dict.fromkeys(range(8), 1)
    assert {r.status for r in rows(seed)} == {"sent"}
    seed.dispose()


@pytest.mark.postgres
def test_two_replicas_through_dropped_answers_post_each_message_exactly_once(
    postgres_url: str,
) -> None:
    """With 3 % dropped connections, 25 of 381 posts went out twice (12 from the SDK's retry)."""
    fake = _fake_slack_module().FakeSlack(drop_rate=0.3, seed=11).start()
    upgrade(postgres_url)
    seed = make_engine(postgres_url)
    with session_scope(seed) as s:
        enqueue(s, [item(n, f"C{n % 5}") for n in range(25)])

    def replica(name: str) -> None:
        engine = make_engine(postgres_url)
        Dispatcher(
            engine,
            {"slack": slack_notifier(fake)},
            worker_id=name,
            concurrency=2,
            batch_size=4,
            pacing=NO_PACING,
            backoff_base=0.1,  # retries within the test's time
        ).drain(max_wait=5)
        engine.dispose()

    try:
        threads = [threading.Thread(target=replica, args=(f"r{n}",)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=90)
        ids = Counter(
            (m.get("metadata") or {}).get("event_payload", {}).get("delivery_id")
            for m in fake.posts()
        )
        assert fake.dropped > 0  # answers really were lost
        final = rows(seed)
        assert {r.status for r in final} == {"sent"}
        assert set(ids) == {r.uid for r in final} and set(ids.values()) == {1}
        # Every post whose answer was lost was found by its id, not sent again.
        assert len(fake.calls_to("conversations.history")) >= fake.dropped
    finally:
        fake.stop()
        seed.dispose()


# -- a graceful stop gives the claims back ------------------------------------------------------


def test_sigterm_gives_every_claim_back_at_once(sqlite_url: str, tmp_path: Path) -> None:
    """After SIGTERM, 117 rows stayed "sending" for five minutes."""
    import os
    import signal
    import subprocess

    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_scope(engine) as s:
        enqueue(s, [item(n, f"C{n % 3}", "daily_digest", "console") for n in range(40)])
    log = tmp_path / "posts.log"
    worker = Path(__file__).with_name("serve_worker.py")
    env = {**os.environ, "CSM_DATABASE_URL": sqlite_url, "POSTS_LOG": str(log)}
    proc = subprocess.Popen([sys.executable, str(worker)], env=env, cwd=Path.cwd())
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if log.exists() and len(log.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the server never started posting")
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal (the usual exit status).
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        proc.kill()
    final = rows(engine)
    posted = log.read_text().splitlines()
    assert [r for r in final if r.status == "sending"] == []
    assert len(posted) == len({*posted}) == len([r for r in final if r.status == "sent"])
    assert len([r for r in final if r.status == "pending"]) == 40 - len(posted) > 0
    engine.dispose()


class _RecordingPacer:
    """Books every slot at once and remembers the windows each booking was asked to keep."""

    def __init__(self) -> None:
        self.booked: list[dict[str, int]] = []

    def reserve(self, keys, *, now, latest):  # type: ignore[no-untyped-def]
        self.booked.append({k: max((w.count for w in windows), default=0) for k, windows in keys})
        return now, True

    def block(self, keys, until) -> None:  # type: ignore[no-untyped-def]
        pass

    def held_back(self, prefix, now) -> int:  # type: ignore[no-untyped-def]
        return 0

    def late(self, keys, booked, actual) -> None:  # type: ignore[no-untyped-def]
        pass


def test_only_the_channel_with_the_most_rows_left_books_the_workspace_room_left_free(
    engine: Engine,
) -> None:
    """The workspace leaves a tenth of its room to the channel the run waits on. Any channel with
    a second row in hand used to count as that channel: on a full day most direct messages did,
    and the room went to them instead of the risk channel."""
    clock = SimulatedClock(START)
    with session_scope(engine) as s:
        enqueue(
            s,
            [item(n, "CRISK") for n in range(8)] + [item(8 + n, "C1") for n in range(2)],
            now=START,
        )
    pacer = _RecordingPacer()
    dispatcher = Dispatcher(
        engine,
        {"slack": RecordingNotifier(platform="slack")},
        clock=clock.now,
        sleep=clock.sleep,
        pacing={"slack": Pacing(per_target_interval=1.0, global_rate=10.0)},
        pacer=pacer,  # type: ignore[arg-type]
    )
    claimed = dispatcher._claim(["slack"], 50)
    dispatcher._add_to_hand(claimed, ["slack"])
    workspace = "slack:workspace:default"
    for target in ("C1", "CRISK"):
        key = ("slack", target)
        first = dispatcher._hand[key].popleft()  # its channel still has a row in hand
        dispatcher._deliver(first, key, DispatchReport())
    assert [b[workspace] for b in pacer.booked] == [9, 10]  # C1: 9 of 10; the risk channel: 10


def test_each_platform_gives_its_free_room_to_its_own_busiest_channel(engine: Engine) -> None:
    """Slack's busiest channel has more rows left than Teams', but the Teams one is still the
    channel Teams' run waits on: each workspace keeps its room for its own."""
    clock = SimulatedClock(START)
    with session_scope(engine) as s:
        enqueue(
            s,
            [item(n, "CRISK") for n in range(8)]
            + [item(8 + n, "T1", platform="teams") for n in range(3)]
            + [item(11, "T2", platform="teams")],
            now=START,
        )
    pacer = _RecordingPacer()
    paced = Pacing(per_target_interval=1.0, global_rate=10.0)
    dispatcher = Dispatcher(
        engine,
        {p: RecordingNotifier(platform=p) for p in ("slack", "teams")},
        clock=clock.now,
        sleep=clock.sleep,
        pacing={"slack": paced, "teams": paced},
        pacer=pacer,  # type: ignore[arg-type]
    )
    dispatcher._add_to_hand(dispatcher._claim(["slack", "teams"], 50), ["slack", "teams"])
    for key in (("teams", "T2"), ("teams", "T1"), ("slack", "CRISK")):
        dispatcher._deliver(dispatcher._hand[key].popleft(), key, DispatchReport())
    rooms = [
        b.get("teams:workspace:default", b.get("slack:workspace:default")) for b in pacer.booked
    ]
    assert rooms == [9, 10, 10]
