"""Ack first, then work: a bounded pool that runs Slack requests' work next to the 3-second ack.

A listener hands its work (identity and channel lookups, the database, Web API calls) to the
pool and waits at most ``budget`` for it. Work done in time rides in the acknowledgement itself
(one round trip, as before); slower work is acknowledged empty and answered when it finishes,
through response_url, chat.postMessage or views.update. Either way Slack hears back within the
budget, whatever the Web API or the database does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Final, TypeVar

from bot.slack.metrics import LATE_ANSWERS, WORK_REFUSED

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Work that finishes within this rides in the ack; Slack's own limit is 3 s.
ACK_BUDGET = 0.2
WORKERS = 8
# Requests queued behind busy workers before new ones are turned away ("try again").
MAX_QUEUED = 64


class Late:
    """The work did not finish within the budget: it is answered later."""

    def __repr__(self) -> str:
        return "LATE"


class Failed:
    """The work raised: the error is in the log; the caller answers with an apology."""

    def __repr__(self) -> str:
        return "FAILED"


class Busy:
    """Every worker is busy and the queue is full: nothing was started."""

    def __repr__(self) -> str:
        return "BUSY"


LATE: Final = Late()
FAILED: Final = Failed()
BUSY: Final = Busy()


class SlackWorker:
    """A fixed pool of threads with a bounded queue, shared by every Slack listener."""

    def __init__(
        self,
        *,
        executor: Executor | None = None,
        workers: int = WORKERS,
        max_queued: int = MAX_QUEUED,
        budget: float = ACK_BUDGET,
    ) -> None:
        """executor: where the work runs (tests pass one that runs it at once); default a pool."""
        self.budget = budget
        self._pool: Executor = executor or ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="slack-work"
        )
        self._slots = threading.BoundedSemaphore(workers + max_queued)

    def _submit(self, work: Callable[[], T]) -> Future[T] | None:
        if not self._slots.acquire(blocking=False):
            WORK_REFUSED.inc()
            logger.warning("Slack work queue full: a request was turned away")
            return None
        try:
            future = self._pool.submit(work)
        except RuntimeError:  # the pool is shutting down
            self._slots.release()
            return None
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def run(self, work: Callable[[], T], *, late: Callable[[T], None]) -> T | Late | Failed | Busy:
        """Run ``work``; its result if it finishes within the budget, else LATE and ``late(result)``
        is called (on a worker thread) once it does. FAILED when it raised, BUSY when refused."""
        future = self._submit(work)
        if future is None:
            return BUSY
        try:
            return future.result(timeout=self.budget)
        except FutureTimeout:
            LATE_ANSWERS.inc()
            future.add_done_callback(lambda done: _deliver(done, late))
            return LATE
        except Exception:
            logger.exception("Slack work failed")
            return FAILED

    def later(self, job: Callable[[], Any]) -> bool:
        """Run ``job`` after the ack (its errors are logged); False when the queue is full."""
        future = self._submit(job)
        if future is None:
            return False
        future.add_done_callback(_log_failure)
        return True

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


def _deliver(done: Future[Any], late: Callable[[Any], None]) -> None:
    try:
        result = done.result()
    except Exception:
        logger.exception("Slack work failed after the ack")
        return
    try:
        late(result)
    except Exception:
        logger.exception("answering Slack after the ack failed")


def _log_failure(done: Future[Any]) -> None:
    error = done.exception()
    if error is not None:
        logger.error("Slack work after the ack failed", exc_info=error)
