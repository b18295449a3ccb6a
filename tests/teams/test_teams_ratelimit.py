"""The per-thread limiter keeps every Teams window (7/1 s, 8/2 s, 60/30 s, 1800/3600 s)."""

from __future__ import annotations

import pytest

from bot.teams.ratelimit import TEAMS_THREAD_LIMITS, ThreadRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def send_times(limiter: ThreadRateLimiter, clock: Clock, count: int, key: str = "t") -> list[float]:
    """When each of ``count`` back-to-back sends goes out if every sender sleeps as told."""
    times = []
    for _ in range(count):
        wait = limiter.reserve(key)
        clock.now += wait
        times.append(clock.now)
    return times


def within_limits(times: list[float]) -> bool:
    for count, seconds in TEAMS_THREAD_LIMITS:
        for i in range(len(times) - count):
            if times[i + count] - times[i] < seconds - 1e-9:
                return False
    return True


def test_seven_per_second_then_the_two_second_window() -> None:
    clock = Clock()
    times = send_times(ThreadRateLimiter(clock=clock), clock, 9)

    assert times[:7] == [0.0] * 7
    assert times[7] == pytest.approx(1.0)  # 8th: one second after the first
    assert times[8] == pytest.approx(2.0)  # 9th: 8 per 2 s


def test_a_long_burst_respects_every_window() -> None:
    clock = Clock()
    times = send_times(ThreadRateLimiter(clock=clock), clock, 150)

    assert within_limits(times)
    assert times[60] >= 30.0  # the 61st send waits for the 30-second window


def test_the_hourly_window() -> None:
    clock = Clock()
    limiter = ThreadRateLimiter(limits=((1800, 3600.0),), clock=clock)
    times = send_times(limiter, clock, 1801)
    assert times[-1] == pytest.approx(3600.0)


def test_threads_are_limited_separately_and_delay_does_not_book() -> None:
    clock = Clock()
    limiter = ThreadRateLimiter(clock=clock)
    for _ in range(7):
        limiter.reserve("a")

    assert limiter.delay("a") == pytest.approx(1.0)
    assert limiter.delay("a") == pytest.approx(1.0)  # asking twice books nothing
    assert limiter.reserve("b") == 0.0


def test_old_sends_expire() -> None:
    clock = Clock()
    limiter = ThreadRateLimiter(clock=clock)
    send_times(limiter, clock, 60)
    clock.now += 3600
    assert limiter.reserve("t") == 0.0
