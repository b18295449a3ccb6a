"""Pacing shared by every replica: the windows in the database, Retry-After for all, Slack and Teams limits."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from handlers.reply import Reply
from scheduler.dispatcher import Dispatcher
from scheduler.models import Delivery
from scheduler.outbox import OutboxItem, enqueue
from scheduler.pacing import TEAMS_THREAD_WINDOWS, DatabasePacer, Pacer, Pacing, Window
from storage.db import make_engine, session_scope, upgrade

START = datetime(2026, 11, 23, 9, tzinfo=UTC)
TEAMS = tuple(Window(c, s) for c, s in TEAMS_THREAD_WINDOWS)


REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_reason() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # any failure to connect means: skip, and say why
        return f"no Redis answers at {REDIS_URL} ({type(exc).__name__})"
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "redis"])
def pacers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Pacer]]:
    """Makes pacers that share one store: the database (SQLite, PostgreSQL), or Redis under a
    prefix of this test's own (the server is shared)."""
    if request.param != "redis":
        url = (
            f"sqlite:///{tmp_path / 'pace.db'}"
            if request.param == "sqlite"
            else request.getfixturevalue("postgres_url")
        )
        upgrade(url)
        engine = make_engine(url)
        yield lambda **kw: DatabasePacer(engine, **kw)
        engine.dispose()
        return
    reason = _redis_reason()
    if reason:
        pytest.skip(reason)
    from scheduler.redis_pacing import RedisPacer

    prefix = f"csm-test:{uuid.uuid4().hex}:"
    yield lambda **kw: RedisPacer(REDIS_URL, prefix=prefix, **kw)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def book(pacer: Pacer, key: str, limits: tuple[Window, ...], count: int) -> list[float]:
    """Book ``count`` sends at once on one key; their offsets from START in seconds."""
    out = []
    for _ in range(count):
        slot, booked = pacer.reserve([(key, limits)], now=START, latest=START + timedelta(hours=3))
        assert booked
        out.append(round((slot - START).total_seconds(), 3))
    return out


def max_in_window(times: list[float], seconds: float) -> int:
    return max(sum(1 for u in times if t <= u < t + seconds) for t in times)


def test_teams_windows_hold_in_every_sliding_window(pacers) -> None:  # type: ignore[no-untyped-def]
    times = book(pacers(margin=0.0, margin_share=0.0), "teams:19:c", TEAMS, 70)
    assert max_in_window(times, 1.0) <= 7
    assert max_in_window(times, 2.0) <= 8
    assert max_in_window(times, 30.0) <= 60
    # As fast as the windows allow: eight in the first two seconds, sixty within ~30 s.
    assert times[6] == 0 and times[7] == pytest.approx(1.0) and times[8] == pytest.approx(2.0)
    assert times[59] < 31 and times[60] >= 30


def test_a_workspace_cap_is_a_window_and_keys_are_independent(pacers) -> None:  # type: ignore[no-untyped-def]
    pacer = pacers(margin=0.0, margin_share=0.0)
    cap = Pacing(global_rate=4.0).workspace_limits()
    # Four in any second, never two at the same instant.
    assert cap == (Window(4, 1.0), Window(1, 0.125))
    times = book(pacer, "slack:workspace", cap, 9)
    assert times == [0, 0.125, 0.25, 0.375, 1, 1.125, 1.25, 1.375, 2]
    assert book(pacer, "slack:C2", Pacing(per_target_interval=1.0).target_limits(), 2) == [0, 1]


def test_a_slot_beyond_the_horizon_is_not_booked(pacers) -> None:  # type: ignore[no-untyped-def]
    pacer = pacers(margin=0.0, margin_share=0.0)
    one_per_second = (Window(1, 1.0),)
    pacer.reserve([("k", one_per_second)], now=START, latest=START)
    slot, booked = pacer.reserve([("k", one_per_second)], now=START, latest=START)
    assert not booked and slot == START + timedelta(seconds=1)
    # Nothing was booked, so the next one is offered the same slot.
    slot, booked = pacer.reserve([("k", one_per_second)], now=START, latest=slot)
    assert booked and slot == START + timedelta(seconds=1)


def test_a_retry_after_blocks_the_key_for_everyone(pacers) -> None:  # type: ignore[no-untyped-def]
    one, two = pacers(), pacers()
    one.block(["slack:C1"], START + timedelta(seconds=30))
    one.block(["slack:C1"], START + timedelta(seconds=5))  # a shorter one never shortens it
    slot, _ = two.reserve([("slack:C1", ())], now=START, latest=START + timedelta(minutes=5))
    assert slot == START + timedelta(seconds=30)


# -- two replicas against the fakes, over real HTTP ------------------------------------------


def _load(name: str, *parts: str):  # type: ignore[no-untyped-def]
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1].joinpath(*parts)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def strict_slack() -> Iterator[object]:
    fake = _load("fake_slack", "slack", "fake_slack.py").FakeSlack(
        channel_interval=1.0, channel_burst=2, workspace_rate=4
    )
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def _replicas(url: str, make_notifier, count: int = 2, **options) -> list[Dispatcher]:  # type: ignore[no-untyped-def]
    return [
        Dispatcher(
            make_engine(url),
            {"slack": make_notifier()},
            worker_id=f"replica-{n}",
            concurrency=2,
            batch_size=2,  # small claims, so both replicas take part
            pacing={"slack": Pacing(per_target_interval=1.0, global_rate=4.0)},
            **options,
        )
        for n in range(count)
    ]


def _run_all(dispatchers: list[Dispatcher], max_wait: float = 10.0) -> None:
    """Each replica in its own thread; the next starts once the first holds a claim, so both
    really work on the same channels at the same time."""
    threads = [threading.Thread(target=d.drain, kwargs={"max_wait": max_wait}) for d in dispatchers]
    first = dispatchers[0]
    threads[0].start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with session_scope(first.engine) as s:
            held = s.exec(select(Delivery.id).where(Delivery.claimed_by == first.worker_id)).first()
        if held is not None:
            break
        time.sleep(0.01)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for d in dispatchers:
        d.engine.dispose()


def _queue(engine: Engine, targets: list[str]) -> None:
    items = [
        OutboxItem(
            "risk_alert",
            f"alert:{n}",
            target,
            "2026-11-23",
            "slack",
            Reply("error", {"message": f"alert {n}"}, f"alert {n}", visibility="channel"),
        )
        for n, target in enumerate(targets)
    ]
    with session_scope(engine) as s:
        enqueue(s, items)


@pytest.mark.postgres
def test_two_replicas_keep_slacks_channel_and_workspace_limits_together(
    postgres_url: str, strict_slack
) -> None:  # type: ignore[no-untyped-def]
    """Per-process pacing broke 1 msg/s per channel 68 times with three replicas."""
    from slack_sdk import WebClient

    from bot.slack.notifier import SlackNotifier

    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    _queue(engine, ["C1"] * 5 + [f"C{n}" for n in range(2, 9)])

    class Services:
        pass

    def notifier() -> SlackNotifier:
        client = WebClient(token="xoxb-test", base_url=strict_slack.api_url)
        return SlackNotifier(Services(), client=client)  # type: ignore[arg-type]

    _run_all(_replicas(postgres_url, notifier))
    # Pacing per process lets two replicas post to C1 at 2/s and to the workspace at 8/s: half
    # of the posts refused. Shared, none — bar a stray one or two on a machine so loaded that a
    # post arrives a good 20 ms late.
    assert strict_slack.rejected <= 2
    kept = strict_slack.posts()
    assert len(kept) == 12
    assert Counter(m["text"] for m in kept).most_common(1)[0][1] == 1
    c1 = sorted(m["_at"] for m in strict_slack.messages["C1"])
    assert len(c1) == 5 and c1[-1] - c1[0] >= 4 * 0.99  # 1/s: four gaps of a second
    with session_scope(engine) as s:
        rows = list(s.exec(select(Delivery)).all())
    assert {r.status for r in rows} == {"sent"}
    claimed = Counter(r.claimed_by for r in rows)
    assert set(claimed) == {"replica-0", "replica-1"}  # both really worked
    engine.dispose()


@pytest.mark.postgres
def test_a_retry_after_one_replica_got_is_honoured_by_the_other(
    postgres_url: str, strict_slack
) -> None:  # type: ignore[no-untyped-def]
    """27 posts went out inside an announced Retry-After window when pacing was per process."""
    from slack_sdk import WebClient

    from bot.slack.notifier import SlackNotifier

    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    _queue(engine, ["C1"] * 4)
    strict_slack.fail("chat.postMessage", status=429, error="ratelimited", retry_after=3)

    def notifier() -> SlackNotifier:
        client = WebClient(token="xoxb-test", base_url=strict_slack.api_url)
        return SlackNotifier(object(), client=client)  # type: ignore[arg-type]

    _run_all(_replicas(postgres_url, notifier))
    posts = strict_slack.calls_to("chat.postMessage")
    assert len(posts) == 5  # one refused, then each once
    refused_at = posts[0].at
    assert all(p.at - refused_at >= 2.9 for p in posts[1:])
    with session_scope(engine) as s:
        assert {r.status for r in s.exec(select(Delivery)).all()} == {"sent"}
    engine.dispose()
