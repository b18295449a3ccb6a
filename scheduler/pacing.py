"""Send pacing shared by every replica: sliding-window limits and Retry-After windows kept in the database."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from scheduler.clock import as_utc
from scheduler.models import DeliveryGate, DeliverySlot

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Teams' documented limits per bot per thread (a channel and its reply chains count as one).
TEAMS_THREAD_WINDOWS: tuple[tuple[int, float], ...] = (
    (7, 1.0),
    (8, 2.0),
    (60, 30.0),
    (1800, 3600.0),
)
# "About 50 requests per second per app per tenant".
TEAMS_TENANT_WINDOWS: tuple[tuple[int, float], ...] = ((50, 1.0),)
# conversations.history is a Tier 3 method (50+ per minute) for internal apps: the lookups of
# posts whose answer was lost are paced on their own key.
SLACK_LOOKUP_WINDOWS: tuple[tuple[int, float], ...] = ((50, 60.0),)


@dataclass(frozen=True)
class Window:
    """At most ``count`` sends in any ``seconds`` long window."""

    count: int
    seconds: float


@dataclass(frozen=True)
class Pacing:
    """How fast one platform may be posted to.

    Attributes:
        per_target_interval: seconds between two posts to the same channel / conversation.
        global_rate: posts per second across the whole workspace or tenant (None = unlimited).
        target_windows / workspace_windows: sliding windows (count, seconds) that replace the
            two simple rates above where a platform documents several (Teams: 7/1 s, 8/2 s,
            60/30 s, 1800/3600 s per thread).
        lookup_windows: the pace of delivery-id lookups (Slack's conversations.history).
        workspace_retry_after: whether a 429 can hold the whole workspace back. Slack does not
            say which limit a 429 is about: the channel it came from is held back, and when a
            second channel is refused while the first still waits, the workspace too. Teams'
            limits are per thread: only the thread is held back.
    """

    per_target_interval: float = 0.0
    global_rate: float | None = None
    target_windows: tuple[tuple[int, float], ...] = ()
    workspace_windows: tuple[tuple[int, float], ...] = ()
    lookup_windows: tuple[tuple[int, float], ...] = ()
    workspace_retry_after: bool = True

    def target_limits(self) -> tuple[Window, ...]:
        if self.target_windows:
            return tuple(Window(c, s) for c, s in self.target_windows)
        if self.per_target_interval > 0:
            return (Window(1, self.per_target_interval),)
        return ()

    def workspace_limits(self, *, priority: bool = True) -> tuple[Window, ...]:
        """The workspace's windows; without ``priority`` a tenth of each is left free, so a post
        to the channel the whole run waits on (the busiest) always finds room at its slot."""
        limits = self._workspace_limits()
        if priority:
            return limits
        return tuple(
            Window(w.count - max(1, w.count // 10), w.seconds) if w.count > 2 else w for w in limits
        )

    def _workspace_limits(self) -> tuple[Window, ...]:
        if self.workspace_windows:
            return tuple(Window(c, s) for c, s in self.workspace_windows)
        if self.global_rate:
            # r per second as "n in n/r seconds": a 10/s cap lets 10 go in any one second,
            # but never two at the very same instant (at most 2r/s in the short run): posts
            # that leave together arrive spread by the client's own scheduling, and one
            # arriving late makes a later one look early to the platform.
            count = max(1, int(self.global_rate))
            spacing = Window(1, 0.5 / self.global_rate)
            return (
                (Window(count, count / self.global_rate), spacing)
                if count > 1
                else (Window(count, count / self.global_rate),)
            )
        return ()

    def lookup_limits(self) -> tuple[Window, ...]:
        return tuple(Window(c, s) for c, s in self.lookup_windows)


# Slack: chat.postMessage about 1/s per channel plus a workspace cap Slack does not publish (10/s
# is a safe default; CSM_SCHEDULER_SLACK_WORKSPACE_RATE changes it). Teams: its documented
# per-thread windows and the per-tenant rate.
DEFAULT_PACING: dict[str, Pacing] = {
    "slack": Pacing(per_target_interval=1.0, global_rate=10.0, lookup_windows=SLACK_LOOKUP_WINDOWS),
    "teams": Pacing(
        target_windows=TEAMS_THREAD_WINDOWS,
        workspace_windows=TEAMS_TENANT_WINDOWS,
        workspace_retry_after=False,
    ),
    "console": Pacing(),
}

Limits = tuple[Window, ...]


class Pacer(Protocol):
    """Books send slots on pacing keys so that every replica together stays within the limits."""

    def reserve(
        self, keys: Sequence[tuple[str, Limits]], *, now: datetime, latest: datetime
    ) -> tuple[datetime, bool]:
        """The earliest instant all ``keys`` allow a send, and whether it was booked.

        Nothing is booked when that instant is after ``latest`` (the caller puts the work back
        until then instead of holding it).
        """
        ...

    def block(self, keys: Sequence[str], until: datetime) -> None:
        """No sends on these keys before ``until`` (a Retry-After), for every replica."""
        ...

    def held_back(self, prefix: str, now: datetime) -> int:
        """How many keys starting with ``prefix`` are held back by a Retry-After right now."""
        ...

    def late(self, keys: Sequence[str], booked: datetime, actual: datetime) -> None:
        """A booked send left later than its slot: count it when it really left, so the next
        bookings keep their distance from the real send (a late one makes the next look early)."""
        ...


TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)


def retry_db(
    what: str, action: Callable[[], T], *, patience: float = 30.0, give_up: Callable[[], bool]
) -> T:
    """Run a database action again after transient errors (a dropped connection, a deadlock,
    SQLite busy) for up to ``patience`` seconds. Every action given here is safe to repeat."""
    delay = 0.05
    stop_at = time.monotonic() + patience
    while True:
        try:
            return action()
        except TRANSIENT_DB_ERRORS as exc:
            if time.monotonic() + delay > stop_at or give_up():
                raise
            logger.warning("%s: database error, trying again in %.2fs: %s", what, delay, exc)
        except DBAPIError as exc:
            if not exc.connection_invalidated or time.monotonic() + delay > stop_at or give_up():
                raise
            logger.warning("%s: lost the database connection, trying again", what)
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _advance_gates(conn: Connection, names: list[str], column: str, to: datetime) -> None:
    """Move a time column of the named gates forward to ``to``; one already later stays."""
    stamp = getattr(DeliveryGate, column)
    conn.execute(
        update(DeliveryGate)
        .where(
            DeliveryGate.key.in_(names),  # type: ignore[attr-defined]
            or_(stamp.is_(None), stamp < to),
        )
        .values({column: to})
    )


class DatabasePacer:
    """Sliding-window pacing on two tables every replica shares.

    Booking locks the keys' ``delivery_gate`` rows (FOR UPDATE on PostgreSQL; SQLite's write lock),
    reads the n-th most recent slot of each window from ``delivery_slot``, and books the earliest
    instant every window, every Retry-After and the previous booking allow. Bookings of a key only
    move forward in time, which is what makes "the n-th most recent" the right one to look at.
    A margin (20 ms — a tenth of the window for short ones — plus 1 % of the window) absorbs
    clock and network jitter between replicas; a send that leaves late is counted when it left
    (``late``), so lateness does not eat into the next one's distance.
    """

    def __init__(self, engine: Engine, *, margin: float = 0.02, margin_share: float = 0.01) -> None:
        self.engine = engine
        self.margin = margin
        self.margin_share = margin_share

    def _insert(self, conn: Connection):  # type: ignore[no-untyped-def]
        name = conn.dialect.name
        if name == "postgresql":
            return pg_insert(DeliveryGate)
        if name == "sqlite":
            return sqlite_insert(DeliveryGate)
        return insert(DeliveryGate)

    def _lock(self, conn: Connection, names: list[str]) -> list[DeliveryGate]:
        conn.execute(
            self._insert(conn).on_conflict_do_nothing(index_elements=["key"]),
            [{"key": k} for k in names],
        )
        stmt = select(DeliveryGate.key, DeliveryGate.blocked_until, DeliveryGate.last_at).where(
            DeliveryGate.key.in_(names)  # type: ignore[attr-defined]
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.order_by(DeliveryGate.key).with_for_update()
        return list(conn.execute(stmt).all())  # type: ignore[arg-type]

    def reserve(
        self, keys: Sequence[tuple[str, Limits]], *, now: datetime, latest: datetime
    ) -> tuple[datetime, bool]:
        if not keys:
            return now, True
        names = sorted({k for k, _ in keys})

        def book() -> tuple[datetime, bool]:
            with self.engine.begin() as conn:
                slot = now
                for _key, blocked, last in self._lock(conn, names):
                    for moment in (blocked, last):
                        if moment is not None:
                            slot = max(slot, as_utc(moment))
                for key, windows in keys:
                    for w in windows:
                        nth = conn.execute(
                            select(DeliverySlot.at)
                            .where(DeliverySlot.key == key)
                            .order_by(DeliverySlot.at.desc())  # type: ignore[attr-defined]
                            .offset(w.count - 1)
                            .limit(1)
                        ).scalar()
                        if nth is not None:
                            pad = min(self.margin, w.seconds / 10) + self.margin_share * w.seconds
                            slot = max(slot, as_utc(nth) + timedelta(seconds=w.seconds + pad))
                if slot > latest:
                    return slot, False
                conn.execute(insert(DeliverySlot), [{"key": k, "at": slot} for k in names])
                conn.execute(
                    update(DeliveryGate)
                    .where(DeliveryGate.key.in_(names))  # type: ignore[attr-defined]
                    .values(last_at=slot)
                )
                for key, windows in keys:
                    longest = max((w.seconds for w in windows), default=0.0)
                    conn.execute(
                        delete(DeliverySlot).where(
                            DeliverySlot.key == key,
                            DeliverySlot.at < now - timedelta(seconds=longest * 1.1 + 1),  # type: ignore[operator]
                        )
                    )
                return slot, True

        return retry_db("booking a send slot", book, give_up=lambda: False)

    def _write_gates(
        self, what: str, keys: Sequence[str], write: Callable[[Connection, list[str]], None]
    ) -> None:
        """One write about the named gates (each once, sorted), in a transaction, retried."""
        names = sorted(set(keys))
        if not names:
            return

        def run() -> None:
            with self.engine.begin() as conn:
                write(conn, names)

        retry_db(what, run, give_up=lambda: False)

    def block(self, keys: Sequence[str], until: datetime) -> None:
        def write(conn: Connection, names: list[str]) -> None:
            conn.execute(
                self._insert(conn).on_conflict_do_nothing(index_elements=["key"]),
                [{"key": k} for k in names],
            )
            _advance_gates(conn, names, "blocked_until", until)

        self._write_gates("recording a Retry-After", keys, write)

    def late(self, keys: Sequence[str], booked: datetime, actual: datetime) -> None:
        def write(conn: Connection, names: list[str]) -> None:
            conn.execute(
                update(DeliverySlot)
                .where(DeliverySlot.key.in_(names), DeliverySlot.at == booked)  # type: ignore[attr-defined]
                .values(at=actual)
            )
            _advance_gates(conn, names, "last_at", actual)

        self._write_gates("recording a late send", keys, write)

    def held_back(self, prefix: str, now: datetime) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        DeliveryGate.key.like(f"{prefix}%"),  # type: ignore[attr-defined]
                        DeliveryGate.blocked_until > now,  # type: ignore[operator]
                    )
                ).scalar()
                or 0
            )
