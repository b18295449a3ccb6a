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
from scheduler.clock import SimulatedClock, as_utc
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

    def _post(self, target: str, reply: Reply, delivery_id: str | None) -> str:
        message_id = super()._post(target, reply, delivery_id)
        self.times.append((target, self.clock.now()))
        return message_id


def dispatcher(engine: Engine, notifier: object, clock: SimulatedClock, **kw: object) -> Dispatcher:
    return Dispatcher(
        engine,
        {"slack": notifier},  # type: ignore[dict-item]
        # These tests live in simulated time, leases and pacing included.
        clock=clock.now,
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
    assert admin_post.template == "delivery_report"
    assert admin_post.context["report"]["cause"] == "channel_not_found"
    assert [f["target"] for f in admin_post.context["report"]["examples"]] == ["C-gone"]


def test_a_report_that_cannot_be_delivered_does_not_loop(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    slack.failures["C-gone"] = [DeliveryError("channel_not_found", permanent=True)]
    slack.failures["C-admin"] = [DeliveryError("not_in_channel", permanent=True)]
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C-gone")], now=START)
    dispatcher(engine, slack, clock, admin_targets={"slack": "C-admin"}).drain()
    assert sorted(r.status for r in rows(engine)) == ["failed", "failed"]


def test_an_outage_longer_than_the_backoff_loses_nothing_before_the_deadline(
    engine: Engine,
) -> None:
    """Slack answers 5xx for two hours: the reminder is retried (backoff capped) and delivered."""
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    outage_end = START + timedelta(hours=2)

    class Outage(FakeSlack):
        def _post(self, target: str, reply: Reply, delivery_id: str | None) -> str:
            if self.clock.now() < outage_end:
                raise DeliveryError("http_503")
            return super()._post(target, reply, delivery_id)

    slack = Outage(clock)
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C1")], now=START)
    report = dispatcher(engine, slack, clock).drain(max_wait=3600)
    (row,) = rows(engine)
    assert row.status == "sent" and report.failed == 0
    assert row.attempts > 8  # the old dispatcher gave up after 8 attempts (~4 minutes)
    assert clock.now() >= outage_end


def test_a_post_is_given_up_at_its_kinds_deadline_and_reported_once(engine: Engine) -> None:
    clock = SimulatedClock(START)

    class Down(FakeSlack):
        def _post(self, target: str, reply: Reply, delivery_id: str | None) -> str:
            if target == "C1":
                raise DeliveryError("http_500")
            return super()._post(target, reply, delivery_id)

    slack = Down(clock)
    with session_scope(engine) as s:
        enqueue(s, [item(n, "C1", kind="daily_digest") for n in range(3)], now=START)
    report = dispatcher(engine, slack, clock, admin_targets={"slack": "CA"}, backoff_cap=600).drain(
        max_wait=3600
    )
    assert report.failed == 3
    failed = [r for r in rows(engine) if r.target == "C1"]
    assert {r.status for r in failed} == {"failed"}
    assert all((r.error or "").startswith("expired: ") for r in failed)
    # A digest is useless the next day: given up 12 hours after it was queued, not sooner.
    assert clock.now() >= START + timedelta(hours=12)
    (report_row,) = [r for r in rows(engine) if r.target == "CA"]
    assert report_row.status == "sent" and report_row.kind == "delivery_failed"
    assert report_row.context["report"]["total"] == 3


class Crash(BaseException):
    """Stands for the process dying mid-batch (not an Exception: nothing may catch it)."""


def test_a_dispatcher_that_dies_mid_post_loses_nothing_and_duplicates_nothing(
    engine: Engine,
) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    slack.failures["C3"] = [Crash()]  # dies before the post leaves
    with session_scope(engine) as s:
        enqueue(s, [item(n, f"C{n}") for n in range(6)], now=START)
    first = dispatcher(engine, slack, clock, lease_seconds=60)
    with pytest.raises(Crash):
        first.drain()
    assert 0 < len(slack.sent) < 6
    # A restarted dispatcher sends what the dead one had not started, but leaves the row that
    # was in flight alone until its lease runs out...
    second = dispatcher(engine, slack, clock, lease_seconds=60)
    second.dispatch_due()
    assert sorted(r.reply.context["n"] for r in slack.sent) == [0, 1, 2, 4, 5]
    # ...then looks it up by its delivery id, does not find it, and sends it.
    clock.advance(seconds=61)
    second.drain()
    assert sorted(r.reply.context["n"] for r in slack.sent) == list(range(6))
    assert slack.lookups == 1
    assert all(r.status == "sent" for r in rows(engine))


class AcceptThenCrash(FakeSlack):
    """The platform accepts the post, then the process dies before it records the outcome."""

    def __init__(self, clock: SimulatedClock, target: str) -> None:
        super().__init__(clock)
        self.crash_on = target

    def _post(self, target: str, reply: Reply, delivery_id: str | None) -> str:
        message_id = super()._post(target, reply, delivery_id)
        if target == self.crash_on:
            self.crash_on = ""
            raise Crash()
        return message_id


def test_a_crash_after_the_platform_accepted_is_found_by_delivery_id_not_sent_again(
    engine: Engine,
) -> None:
    clock = SimulatedClock(START)
    slack = AcceptThenCrash(clock, "C2")
    with session_scope(engine) as s:
        enqueue(s, [item(n, f"C{n}") for n in range(4)], now=START)
    with pytest.raises(Crash):
        dispatcher(engine, slack, clock, lease_seconds=30).drain()
    clock.advance(seconds=31)
    report = dispatcher(engine, slack, clock, lease_seconds=30).drain()
    assert Counter(s.reply.context["n"] for s in slack.sent) == {0: 1, 1: 1, 2: 1, 3: 1}
    assert report.found == 1 and slack.lookups == 1
    found = next(r for r in rows(engine) if r.target == "C2")
    assert found.status == "sent" and found.message_id and found.attempts == 1


def test_a_lost_answer_is_looked_up_before_the_next_attempt(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    # Accepted, but the connection dropped before the answer came back.
    slack.failures["C1"] = [DeliveryError("connection_error", unknown=True)]
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C1")], now=START)
    report = dispatcher(engine, slack, clock).drain()
    assert len(slack.sent) == 1 and slack.lookups == 1 and report.found == 1
    (row,) = rows(engine)
    assert row.status == "sent" and row.message_id == slack.sent[0].message_id


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


def test_rate_limits_are_not_counted_as_attempts(engine: Engine) -> None:
    clock = SimulatedClock(START)
    slack = FakeSlack(clock)
    slack.failures["C1"] = [DeliveryError("ratelimited", retry_after=1) for _ in range(10)]
    with session_scope(engine) as s:
        enqueue(s, [item(1, "C1")], now=START)
    report = dispatcher(engine, slack, clock).drain()
    assert report.rate_limited == 10 and report.sent == 1 and report.failed == 0
    (row,) = rows(engine)
    assert row.status == "sent" and row.attempts == 1


def test_sent_at_is_the_wall_clock_even_for_a_backfill(engine: Engine) -> None:
    """`run-once --at` a past instant: the outbox never sees business time."""
    from scheduler.clock import system_clock

    with session_scope(engine) as s:
        enqueue(s, [item(1, "C1")])
    sent = RecordingNotifier(platform="slack")
    Dispatcher(engine, {"slack": sent}, sleep=lambda _s: None).drain(max_wait=0)
    (row,) = rows(engine)
    assert row.status == "sent" and row.sent_at is not None
    assert abs((system_clock() - as_utc(row.sent_at)).total_seconds()) < 60
