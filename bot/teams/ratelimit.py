"""Per-thread send limits Teams enforces on a bot (7/1 s, 8/2 s, 60/30 s, 1800/3600 s), as a reservation limiter."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# (sends, seconds) per bot per conversation, from the Teams rate-limit documentation.
TEAMS_THREAD_LIMITS: tuple[tuple[int, float], ...] = (
    (7, 1.0),
    (8, 2.0),
    (60, 30.0),
    (1800, 3600.0),
)


class ThreadRateLimiter:
    """Hands out send slots per conversation so no sliding window is ever exceeded.

    ``reserve(key)`` books the earliest moment a send is allowed and returns how long to wait for
    it; callers sleep that long, then send. Slots are booked at reservation time, so concurrent
    senders to one thread queue up instead of all waking at once. State is per process: with
    several replicas each keeps its own count, which the 429 retry in the notifier absorbs.
    """

    def __init__(
        self,
        limits: tuple[tuple[int, float], ...] = TEAMS_THREAD_LIMITS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = tuple(sorted(limits, key=lambda lim: lim[1]))
        self.clock = clock
        self._horizon = max(seconds for _, seconds in self.limits)
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def delay(self, key: str) -> float:
        """Seconds until a send to ``key`` would be allowed, without booking it."""
        with self._lock:
            now = self.clock()
            return self._earliest(self._prune(key, now), now) - now

    def reserve(self, key: str) -> float:
        """Book the next allowed send to ``key`` and return the seconds to wait before sending."""
        with self._lock:
            now = self.clock()
            sent = self._prune(key, now)
            at = self._earliest(sent, now)
            sent.append(at)
            return at - now

    def _prune(self, key: str, now: float) -> deque[float]:
        sent = self._sent.setdefault(key, deque())
        while sent and sent[0] <= now - self._horizon:
            sent.popleft()
        return sent

    def _earliest(self, sent: deque[float], now: float) -> float:
        at = now
        for count, seconds in self.limits:
            # Booked times only grow, so the count-th most recent booking bounds this window.
            if len(sent) >= count:
                at = max(at, sent[-count] + seconds)
        return at
