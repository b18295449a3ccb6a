"""Injected time: the real clock, and a simulated one whose sleep advances it (tests, benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


def system_clock() -> datetime:
    return datetime.now(UTC)


def system_sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def as_utc(value: datetime) -> datetime:
    """Aware UTC; naive values are UTC by the project's storage convention."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class SimulatedClock:
    """A clock that only moves when someone sleeps on it, so paced code runs instantly in tests."""

    def __init__(self, start: datetime) -> None:
        self.current = as_utc(start)
        self.slept = 0.0

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.current += timedelta(seconds=seconds)
            self.slept += seconds

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)
