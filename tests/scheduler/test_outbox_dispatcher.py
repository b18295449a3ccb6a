"""Outbox and dispatcher: one row per key, paced sends, 429/5xx retries, permanent failures reported."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from handlers.reply import Reply
from scheduler.clock import SimulatedClock
from scheduler.dispatcher import Dispatcher, Pacing
from scheduler.models import Delivery
from scheduler.notifier import DeliveryError, RecordingNotifier
from scheduler.outbox import OutboxItem, enqueue
from storage.db import session_scope

START = datetime(2026, 11, 23, 9, tzinfo=UTC)


def item(n: int, target: str = "C1", kind: str = "renewal_reminder") -> OutboxItem:
    reply = Reply("renewal_reminder", {"n": n}, f"message {n}", visibility="channel")
    return OutboxItem(kind, f"renewal:{n}", target, "30d", "slack", reply)


def rows(engine: Engine) -> list[Delivery]:
    with session_scope(engine) as s:
        return list(s.exec(select(Delivery).order_by(Delivery.id)).all())


class FakeSlack(RecordingNotifier):
    """Records the simulated time of every post, per channel."""

    def __init__(self, clock: SimulatedClock) -> None:
        super().__init__(platform="slack")
        self.clock = clock
        self.times: list[tuple[str, datetime]] = []

    def send(self, target: str, reply: Reply) -> str:
        message_id = super().send(target, reply)
        self.times.append((target, self.clock.now()))
        return message_id


def dispatcher(engine: Engine, notifier: object, clock: SimulatedClock, **kw: object) -> Dispatcher:
    return Dispatcher(
        engine,
        {"slack": notifier},  # type: ignore[dict-item]
        clock=clock.now,
        # These tests live in simulated time, leases included (the runner keeps them on the
        # wall clock).
        lease_clock=clock.now,
        sleep=clock.sleep,
        **kw,  # type: ignore[arg-type]
    )


def test_the_same_key_is_queued_once(any_engine: Engine) -> None:
    with session_scope(any_engine) as s:
        assert enqueue(s, [item(1), item(1), item(2)], now=START) == 2
    with session_scope(any_engine) as s:
        assert enqueue(s, [item(1), item(2), item(3)], now=START) == 1
    assert [r.subject for r in rows(any_engine)] == ["renewal:1", "renewal:2", "renewal:3"]


def test_posts_to_one_channel_are_paced_one_per_second(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    with session_scope(engine) as s:
        enqueue(
            s, [item(n, "C1") for n in range(5)] + [item(10 + n, "C2") for n in range(5)], now=START
        )
    report = dispatcher(engine, slack, clock).drain()
    assert report.sent == 10 and len(slack.sent) == 10
    for channel in ("C1", "C2"):
        times = [t for c, t in slack.times if c == channel]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 1.0 - 1e-6
    # Two channels in parallel: five posts each take about four seconds, not nine.
    assert clock.slept < 6


def test_workspace_cap_spreads_posts_across_channels(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    with session_scope(engine) as s:
        enqueue(s, [item(n, f"C{n}") for n in range(20)], now=START)
    d = dispatcher(engine, slack, clock, pacing={"slack": Pacing(1.0, global_rate=4.0)})
    d.drain()
    times = sorted(t for _, t in slack.times)
    window = Counter(int((t - START).total_seconds()) for t in times)
    assert max(window.values()) <= 4
    assert len(slack.sent) == 20


def test_429_then_200_ends_with_everything_delivered_after_retry_after(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    slack.failures["C1"] = [
        DeliveryError("ratelimited", retry_after=30),
        DeliveryError("ratelimited", retry_after=5),
    ]
    with session_scope(engine) as s:
        enqueue(s, [item(n, "C1") for n in range(3)] + [item(9, "C2")], now=START)
    report = dispatcher(engine, slack, clock).drain()
    assert report.rate_limited == 2
    assert sorted(r.reply.context["n"] for r in slack.sent) == [0, 1, 2, 9]
    first_c1 = min(t for c, t in slack.times if c == "C1")
    assert first_c1 >= START + timedelta(seconds=35)  # waited as long as Slack asked, twice
    assert all(r.status == "sent" for r in rows(engine))
    assert Counter(r.reply.context["n"] for r in slack.sent).most_common(1)[0][1] == 1


def test_server_errors_back_off_then_succeed(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    slack.failures["C1"] = [
        DeliveryError("http_503"),
        ConnectionResetError("reset"),
        DeliveryError("http_502"),
    ]
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C1")], now=START)
    report = dispatcher(engine, slack, clock).drain()
    assert report.retried == 3 and report.sent == 1
    (row,) = rows(engine)
    assert row.status == "sent" and row.attempts == 4
    assert clock.slept >= 1 + 2 + 4 - 0.01  # exponential backoff with equal jitter (>= half)


def test_permanent_error_fails_the_row_and_reports_it_to_the_admin_channel(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    slack.failures["C-gone"] = [DeliveryError("channel_not_found", permanent=True)]
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C-gone"), item(2, "C1")], now=START)
    report = dispatcher(engine, slack, clock, admin_targets={"slack": "C-admin"}).drain()
    assert report.failed == 1
    by_target = {r.target: r for r in rows(engine)}
    assert by_target["C-gone"].status == "failed"
    assert by_target["C-gone"].error == "channel_not_found"
    assert by_target["C-admin"].kind == "delivery_failed" and by_target["C-admin"].status == "sent"
    (admin_post,) = slack.to("C-admin")
    assert admin_post.template == "delivery_failed"
    assert admin_post.context["delivery"]["reason"] == "channel_not_found"


def test_a_report_that_cannot_be_delivered_does_not_loop(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    slack.failures["C-gone"] = [DeliveryError("channel_not_found", permanent=True)]
    slack.failures["C-admin"] = [DeliveryError("not_in_channel", permanent=True)]
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C-gone")], now=START)
    dispatcher(engine, slack, clock, admin_targets={"slack": "C-admin"}).drain()
    assert sorted(r.status for r in rows(engine)) == ["failed", "failed"]


def test_giving_up_after_max_attempts_is_a_failure_too(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    slack.failures["C1"] = [DeliveryError("http_500") for _ in range(10)]
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C1")], now=START)
    report = dispatcher(engine, slack, clock, max_attempts=3, admin_targets={"slack": "CA"}).drain(
        max_wait=3600
    )
    assert report.failed == 1
    failed = next(r for r in rows(engine) if r.target == "C1")
    assert failed.status == "failed" and "gave up after 3 attempts" in (failed.error or "")


class Crash(BaseException):
    """Stands for the process dying mid-batch (not an Exception: nothing may catch it)."""


def test_a_dispatcher_that_dies_mid_batch_loses_nothing_and_duplicates_nothing(
    engine: Engine,
) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    slack.failures["C3"] = [Crash()]
    with session_scope(engine) as s:
        enqueue(s, [item(n, f"C{n}") for n in range(6)], now=START)
    first = dispatcher(engine, slack, clock, lease_seconds=60)
    with pytest.raises(Crash):
        first.drain()
    delivered_before = len(slack.sent)
    assert 0 < delivered_before < 6
    # A restarted dispatcher leaves the dead one's claims alone until their lease runs out...
    second = dispatcher(engine, slack, clock, lease_seconds=60)
    second.dispatch_due()
    assert len(slack.sent) == delivered_before
    # ...then takes them over.
    clock.advance(seconds=61)
    second.drain()
    assert sorted(r.reply.context["n"] for r in slack.sent) == list(range(6))
    assert all(r.status == "sent" for r in rows(engine))


def test_two_dispatchers_at_once_post_every_row_once(engine: Engine) -> None:
    slack = RecordingNotifier(platform="slack")
    with session_scope(engine) as s:
        enqueue(s, [item(n, f"C{n % 7}") for n in range(60)], now=START)

    def run(worker: str) -> None:
        clock = SimulatedClock(START)
        Dispatcher(
            engine,
            {"slack": slack},
            clock=clock.now,
            sleep=clock.sleep,
            worker_id=worker,
            batch_size=5,
            pacing={"slack": Pacing(0.0)},
        ).drain(max_wait=0)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = Counter(s.reply.context["n"] for s in slack.sent)
    assert sorted(sent) == list(range(60)) and set(sent.values()) == {1}


def test_rate_limits_never_use_up_the_retries(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    slack.failures["C1"] = [DeliveryError("ratelimited", retry_after=1) for _ in range(10)]
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C1")], now=START)
    report = dispatcher(engine, slack, clock, max_attempts=3).drain()
    assert report.rate_limited == 10 and report.sent == 1 and report.failed == 0
    (row,) = rows(engine)
    assert row.status == "sent" and row.attempts == 1


def test_a_backfill_in_the_past_does_not_lose_its_claims_to_a_live_replica(engine: Engine) -> None:
    """`run-once --at` a past instant beside a live replica: leases run on the wall clock."""
    past = datetime(2026, 1, 5, 9, tzinfo=UTC)  # business time of the backfill
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C1")], now=past)
    live_sent = RecordingNotifier(platform="slack")
    live = Dispatcher(engine, {"slack": live_sent}, worker_id="live", sleep=lambda _s: None)

    class Backfill(RecordingNotifier):
        def send(self, target: str, reply: Reply) -> str:
            # While the backfill is still posting, the live replica looks for work.
            live.dispatch_due()
            return super().send(target, reply)

    backfill_sent = Backfill(platform="slack")
    backfill = Dispatcher(
        engine,
        {"slack": backfill_sent},
        clock=lambda: past,
        sleep=lambda _s: None,
        worker_id="backfill",
    )
    backfill.dispatch_due()
    assert len(backfill_sent.sent) == 1
    assert live_sent.sent == []
    assert [(r.status, r.claimed_by) for r in rows(engine)] == [("sent", "backfill")]
