"""Sends pending outbox rows through the platform notifiers: once, paced across replicas, never lost."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.engine import Engine

from handlers.errors import HandlerError
from handlers.reply import Reply
from scheduler.builders import BUILD_KEY, is_deferred
from scheduler.clock import Clock, Sleep, as_utc, system_clock, system_sleep
from scheduler.models import ATTEMPT_IN_FLIGHT, ATTEMPT_UNKNOWN, Delivery, DeliveryPause
from scheduler.notifier import DeliveryError, LookupUnavailable, Notifier
from scheduler.outages import Outages
from scheduler.outbox import DEFAULT_DEADLINE, DEFAULT_DEADLINES, FAILED_REPORT_KIND, REPORT_KINDS
from scheduler.pacing import DEFAULT_PACING, DatabasePacer, Pacer, Pacing, retry_db
from scheduler.reports import FAILURES_RECIPE, cause_of, failures_report
from storage.db import session_scope

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_DEADLINES",
    "DEFAULT_PACING",
    "FAILED_REPORT_KIND",
    "DispatchReport",
    "Dispatcher",
    "Pacing",
]

logger = logging.getLogger(__name__)


@dataclass
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    rate_limited: int = 0
    found: int = 0  # posts whose answer was lost, found on the platform by their delivery id
    expired: int = 0
    paused: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: DispatchReport) -> None:
        for name in ("sent", "retried", "failed", "released", "rate_limited", "found"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.expired += other.expired
        self.paused += other.paused
        self.errors.extend(other.errors)


@dataclass
class _Claimed:
    id: int
    kind: str
    subject: str
    target: str
    period: str
    platform: str
    template: str
    context: dict[str, Any]
    text: str
    attempts: int
    uid: str | None
    attempt_state: str | None
    first_attempt_at: datetime | None
    created_at: datetime
    deadline: datetime | None

    @property
    def ref(self) -> str:
        """The delivery id written into the message."""
        return self.uid or f"delivery-{self.id}"


_CLAIMED_COLUMNS = (
    Delivery.id,
    Delivery.kind,
    Delivery.subject,
    Delivery.target,
    Delivery.period,
    Delivery.platform,
    Delivery.template,
    Delivery.context,
    Delivery.text,
    Delivery.attempts,
    Delivery.uid,
    Delivery.attempt_state,
    Delivery.first_attempt_at,
    Delivery.created_at,
    Delivery.deadline,
)


# Rows of one channel a claim takes at most (see Dispatcher._claim): ~20 s of its posts.
PER_CHANNEL_CLAIM = 20
# A send slot is booked at most this long before it is due (see Dispatcher._book).
BOOKING_SLACK = 0.25
# A send that leaves this much after its slot has its booking moved to when it really left.
LATE_SEND = 0.01


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Dispatcher:
    """Claims due deliveries and posts them, as close to exactly once as the platforms allow.

    - **Claims are short leases** (status "sending", claimed_by, lease_until), renewed while this
      replica holds them; on PostgreSQL claims use FOR UPDATE SKIP LOCKED. A replica that dies
      loses its claims when the lease runs out, and another takes them over.
    - **Before each post** the row is marked "in flight" (attempts + 1) in a compare-and-set that
      also re-checks that this replica still owns an unexpired lease; after it, the outcome is
      recorded. A post whose answer never came back (timeout, dropped connection, crash) is
      looked up on the platform by the delivery id written into the message before it is sent
      again, so an accepted post is never repeated (Slack; Teams cannot look up, see README).
    - **Pacing** is booked in the database (scheduler.pacing), so all replicas together respect
      each channel's and each workspace's limits and every Retry-After.
    - **Nothing is lost to an outage**: a row is retried with backoff until its deadline (per
      kind); a workspace-wide error (token revoked, scope missing) pauses that platform, tells the
      admins once and resumes by itself when a probe succeeds.
    - **Its own database writes are retried**, and a row whose bookkeeping still fails is left to
      its lease; the rest of the batch goes on.
    """

    def __init__(
        self,
        engine: Engine,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Clock = system_clock,
        sleep: Sleep = system_sleep,
        pacing: Mapping[str, Pacing] | None = None,
        pacer: Pacer | None = None,
        admin_targets: Mapping[str, str] | None = None,
        deadlines: Mapping[str, timedelta] | None = None,
        worker_id: str | None = None,
        batch_size: int = 50,
        concurrency: int = 1,
        horizon: float = 20.0,
        lease_seconds: float = 30.0,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        probe_seconds: float = 60.0,
        report_delay: float = 60.0,
        db_patience: float = 30.0,
        rng: random.Random | None = None,
        builder: Callable[[dict[str, Any]], Reply] | None = None,
    ) -> None:
        self.engine = engine
        self.notifiers = dict(notifiers)
        # Every outbox time (due, lease, pacing, deadline, sent_at) is on this clock: the wall
        # clock unless a test injects a simulated one. Business time never reaches the outbox.
        self.clock = clock
        self.sleep = sleep
        self.pacing = {**DEFAULT_PACING, **(pacing or {})}
        self.pacer: Pacer = pacer or DatabasePacer(engine)
        self.outages = Outages(
            engine,
            clock=clock,
            db=self._db,
            admin_targets=admin_targets or {},
            deadlines=deadlines or {},
            probe_seconds=probe_seconds,
            report_delay=report_delay,
        )
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.concurrency = max(1, concurrency)
        self.horizon = horizon
        self.lease_seconds = lease_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.db_patience = db_patience
        self.rng = rng or random.Random()
        # Composes deferred replies (scheduler.builders) right before they are sent.
        self.builder = builder
        self._lock = threading.Condition()
        self._hand: dict[tuple[str, str], deque[_Claimed]] = {}
        self._busy: set[tuple[str, str]] = set()
        self._held = 0
        self._stopping = threading.Event()
        # A worker thread died (an interrupt): the others take nothing new.
        self._aborting = threading.Event()
        self._last_renewal: datetime | None = None
        self._renew_lock = threading.Lock()
        # Platforms paused during this round: no more claims for them.
        self._paused_now: set[str] = set()
        # After a claim came back short, the queue is (nearly) empty: no top-up before this.
        self._dry_until: datetime | None = None
        # Per platform, the channel with the most rows left (see _find_busiest), looked up
        # after claims.
        self._busiest: dict[str, tuple[str, str]] = {}
        self._busiest_at: datetime | None = None

    # -- public -----------------------------------------------------------------------------

    def dispatch_due(self) -> DispatchReport:
        """Send what is due now (pacing waits included), then return; the background job's call."""
        report = DispatchReport()
        if self._stopping.is_set():
            return report
        expired = self.outages.expire(list(self.notifiers))
        report.expired += expired
        report.failed += expired
        active = self.outages.active(self.notifiers)
        if not active:
            return report
        self._paused_now.clear()
        self._aborting.clear()
        self._dry_until = None
        heartbeat = _Heartbeat(self)
        heartbeat.start()
        try:
            if self.concurrency == 1:
                self._work(active, report)
            else:
                reports = [DispatchReport() for _ in range(self.concurrency)]
                died: list[BaseException] = []

                def work(r: DispatchReport) -> None:
                    try:
                        self._work(active, r)
                    except BaseException as exc:  # re-raised below, in the caller's thread
                        died.append(exc)
                        self._aborting.set()

                threads = [threading.Thread(target=work, args=(r,), daemon=True) for r in reports]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                for r in reports:
                    report.merge(r)
                if died:
                    raise died[0]
        finally:
            heartbeat.stop()
            self._release_hand()
        return report

    def drain(self, *, max_wait: float = 600.0) -> DispatchReport:
        """Send until nothing is pending, waiting for retries due within ``max_wait`` seconds."""
        report = DispatchReport()
        while not self._stopping.is_set():
            report.merge(self.dispatch_due())
            wait = self._seconds_to_next_due()
            if wait is None or wait > max_wait:
                return report
            self.sleep(max(wait, 0.0) + 0.001)
        return report

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM): finish the posts in flight, start no new ones, and give
        every claim this replica holds back to the queue at once instead of after the lease."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()

    def release_claims(self) -> int:
        """Put back every row this replica still holds that is not in flight (after stop())."""

        def write() -> int:
            with session_scope(self.engine) as session:
                return int(
                    session.execute(
                        update(Delivery)
                        .where(
                            Delivery.claimed_by == self.worker_id,
                            Delivery.status == "sending",
                            Delivery.attempt_state.is_(None),  # type: ignore[union-attr]
                        )
                        .values(status="pending", lease_until=None, claimed_by=None)
                        .execution_options(synchronize_session=False)
                    ).rowcount
                    or 0
                )

        released = self._db("releasing claims", write, default=0)
        if released:
            logger.info("released %d claimed deliveries on shutdown", released)
        return released

    # -- time, deadlines, database ----------------------------------------------------------

    def _now(self) -> datetime:
        return as_utc(self.clock())

    def _db(self, what: str, action: Callable[[], Any], default: Any = None) -> Any:
        """A bookkeeping write, retried through transient errors; if it still fails, the row is
        left to its lease (looked up before any re-send) and the batch goes on."""
        try:
            return retry_db(what, action, patience=self.db_patience, give_up=lambda: False)
        except Exception:
            logger.exception("%s failed for good; the lease will hand the row on", what)
            return default

    # -- claiming ---------------------------------------------------------------------------

    def _claim(self, platforms: list[str], limit: int) -> list[_Claimed]:
        now = self._now()
        due = or_(
            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
            and_(Delivery.status == "sending", Delivery.lease_until < now),  # type: ignore[operator]
        )
        # Least slack first: a channel's j-th waiting row ranks j - (rows waiting for that
        # channel). The busiest channel's rows come first, every other channel's are spread
        # through the run instead of piling up at its end (each channel takes only ~1 post a
        # second), and among equals the oldest goes first — by id, not by due time, so a row
        # put back for pacing or a retry keeps its place in the line.
        # This replica holds at most 20 rows per channel: a channel takes one post at a time
        # (about a second each), and a hand full of the busiest channel's rows would leave every
        # other worker idle. The rows it holds already (in hand or in flight) rank first in their
        # channel, so repeated claims top a channel up to 20 instead of adding 20 each time
        # (which once filled the whole hand with the risk channel: one post a second for minutes
        # while five workers waited).
        mine = and_(
            Delivery.status == "sending",
            Delivery.claimed_by == self.worker_id,
            Delivery.lease_until >= now,  # type: ignore[operator]
        )
        held = case((mine, 0), else_=1)
        per_channel = (Delivery.platform, Delivery.target)
        rank = func.row_number().over(partition_by=per_channel, order_by=(held, Delivery.id))
        backlog = (
            select(
                Delivery.id.label("id"),  # type: ignore[union-attr]
                held.label("free"),
                rank.label("rank"),
                (rank - func.count().over(partition_by=per_channel)).label("slack"),
            )
            .where(or_(due, mine), Delivery.platform.in_(platforms))  # type: ignore[attr-defined]
            .subquery()
        )
        candidates = (
            select(backlog.c.id)
            .where(backlog.c.free == 1, backlog.c.rank <= PER_CHANNEL_CLAIM)
            .order_by(backlog.c.slack, backlog.c.id)
            .limit(limit)
        )
        claim_values = {
            "status": "sending",
            "claimed_by": self.worker_id,
            "lease_until": now + timedelta(seconds=self.lease_seconds),
            "updated_at": now,
        }
        postgres = self.engine.dialect.name == "postgresql"

        def claim() -> list[_Claimed]:
            with session_scope(self.engine) as session:
                if postgres:
                    # Lock the ids first, then update exactly those: PostgreSQL may run an
                    # "IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)" subquery more than once,
                    # each time skipping the rows it just locked, and claim far more than n.
                    # (Window functions and FOR UPDATE do not mix: rank, then lock what is free.)
                    ranked = list(session.execute(candidates.limit(limit * 2)).scalars())
                    free = set(
                        session.execute(
                            select(Delivery.id)
                            .where(Delivery.id.in_(ranked), due)  # type: ignore[union-attr]
                            .with_for_update(skip_locked=True)
                        ).scalars()
                    )
                    ids = [i for i in ranked if i in free][:limit]
                    if not ids:
                        return []
                    target = Delivery.id.in_(ids)  # type: ignore[union-attr]
                else:
                    # One statement under SQLite's write lock: atomic by itself.
                    target = Delivery.id.in_(candidates.scalar_subquery())  # type: ignore[union-attr]
                rows = session.execute(
                    update(Delivery)
                    .where(target, due)
                    .values(**claim_values)
                    .returning(*_CLAIMED_COLUMNS)
                    .execution_options(synchronize_session=False)
                ).all()
            return sorted((_Claimed(*r) for r in rows), key=lambda c: c.id)

        claimed: list[_Claimed] = self._db("claiming deliveries", claim, default=[])
        if claimed or self._busiest_at is None or now - self._busiest_at > timedelta(seconds=5):
            self._busiest = self._find_busiest(platforms)
            self._busiest_at = now
        return claimed

    def _find_busiest(self, platforms: list[str]) -> dict[str, tuple[str, str]]:
        """Per platform, the channel with the most rows left to send, whoever holds them: the one
        the whole run waits on, whose posts get the workspace room the others leave free (see
        _deliver). Counted by pacing key (a Teams channel and its threads are one)."""

        def find() -> dict[str, tuple[str, str]]:
            with session_scope(self.engine) as session:
                counts = session.execute(
                    select(Delivery.platform, Delivery.target, func.count())
                    .where(
                        Delivery.status.in_(("pending", "sending")),  # type: ignore[attr-defined]
                        Delivery.platform.in_(platforms),  # type: ignore[attr-defined]
                    )
                    .group_by(Delivery.platform, Delivery.target)
                ).all()
            left: Counter[tuple[str, str]] = Counter()
            for platform, target, n in counts:
                if platform in self.notifiers:
                    left[self._channel(platform, target)] += n
            busiest: dict[str, tuple[str, str]] = {}
            for key, _n in sorted(left.items(), key=lambda kv: (-kv[1], kv[0])):
                busiest.setdefault(key[0], key)
            return busiest

        return self._db("finding the busiest channels", find, default={})  # type: ignore[no-any-return]

    def _renew_leases(self, *, force: bool = False) -> None:
        """Push the lease of every row this replica holds forward (called while it works)."""
        now = self._now()
        with self._renew_lock:
            if (
                not force
                and self._last_renewal is not None
                and (now - self._last_renewal).total_seconds() < self.lease_seconds / 3
            ):
                return
            self._last_renewal = now

        def renew() -> None:
            with session_scope(self.engine) as session:
                session.execute(
                    update(Delivery)
                    .where(Delivery.claimed_by == self.worker_id, Delivery.status == "sending")
                    .values(lease_until=now + timedelta(seconds=self.lease_seconds))
                    .execution_options(synchronize_session=False)
                )

        self._db("renewing leases", renew)

    def _seconds_to_next_due(self) -> float | None:
        """Seconds until a pending row is due or a paused workspace is probed again.

        Rows another replica holds are its work, not a reason to wait: a live one finishes them,
        and a dead one's run out of lease for whoever dispatches next.
        """
        platforms = list(self.notifiers)
        with session_scope(self.engine) as session:
            pending_at = session.execute(
                select(func.min(Delivery.next_attempt_at)).where(
                    Delivery.status == "pending",
                    Delivery.platform.in_(platforms),  # type: ignore[attr-defined]
                )
            ).scalar()
            probe_at = session.execute(
                select(func.min(DeliveryPause.next_probe_at)).where(
                    DeliveryPause.platform.in_(platforms)  # type: ignore[attr-defined]
                )
            ).scalar()
        now = self._now()
        waits = [(as_utc(t) - now).total_seconds() for t in (pending_at, probe_at) if t]
        return min(waits) if waits else None

    # -- the hand: claimed rows waiting for a worker ----------------------------------------

    def _key(self, item: _Claimed) -> tuple[str, str]:
        return self._channel(item.platform, item.target)

    def _channel(self, platform: str, target: str) -> tuple[str, str]:
        pacing_key = getattr(self.notifiers[platform], "pacing_key", None)
        return (platform, pacing_key(target) if pacing_key else target)

    def _take(self, active: list[str]) -> _Claimed | None:
        """The next row for a worker: one at a time per channel, oldest first, refilled by claims."""
        with self._lock:
            while not self._stopping.is_set() and not self._aborting.is_set():
                self._top_up(active)
                free = [k for k, q in self._hand.items() if q and k not in self._busy]
                if free:
                    # The channel with the longest queue first (the risk channel on a bad day
                    # keeps its 1/s), then the oldest row.
                    key = max(free, key=lambda k: (len(self._hand[k]), -self._hand[k][0].id))
                    item = self._hand[key].popleft()
                    if not self._hand[key]:
                        del self._hand[key]
                    self._held -= 1
                    self._busy.add(key)
                    return item
                room = self.batch_size - self._held
                platforms = [p for p in active if p not in self._paused_now]
                claimed = self._claim(platforms, room) if room > 0 and platforms else []
                if claimed:
                    self._add_to_hand(claimed, active)
                    continue
                if not self._busy:
                    return None
                # Everything left waits on channels other workers are posting to right now.
                self._lock.wait(0.05)
        return None

    def _top_up(self, active: list[str]) -> None:
        """Keep the hand at least half full while there is work, so the busiest channel (the one
        the whole run waits on) always has a row ready, not only when everything else is done.
        Called under the lock; after a claim that came back short it rests for a second."""
        now = self._now()
        if self._held >= self.batch_size // 2 or (self._dry_until and now < self._dry_until):
            return
        platforms = [p for p in active if p not in self._paused_now]
        room = self.batch_size - self._held
        claimed = self._claim(platforms, room) if platforms else []
        if len(claimed) < room:
            self._dry_until = now + timedelta(seconds=1)
        self._add_to_hand(claimed, active)

    def _add_to_hand(self, claimed: list[_Claimed], active: list[str]) -> None:
        for item in claimed:
            if item.platform not in active:
                continue
            self._hand.setdefault(self._key(item), deque()).append(item)
            self._held += 1

    def _done(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._busy.discard(key)
            self._lock.notify_all()

    def _release_rows(self, items: list[_Claimed], at: datetime) -> None:
        ids = [i.id for i in items]
        if not ids:
            return

        def write() -> None:
            with session_scope(self.engine) as session:
                session.execute(
                    update(Delivery)
                    .where(
                        Delivery.id.in_(ids),  # type: ignore[union-attr]
                        Delivery.claimed_by == self.worker_id,
                        Delivery.status == "sending",
                    )
                    .values(status="pending", next_attempt_at=at, lease_until=None)
                    .execution_options(synchronize_session=False)
                )

        self._db("putting rows back", write)

    def _release_key(self, key: tuple[str, str], first: _Claimed, at: datetime) -> int:
        """Put back a row and every other row held for the same channel, due at ``at``."""
        with self._lock:
            rest = list(self._hand.pop(key, ()))
            self._held -= len(rest)
        self._release_rows([first, *rest], at)
        return 1 + len(rest)

    def _release_hand(self) -> None:
        with self._lock:
            items = [i for q in self._hand.values() for i in q]
            self._hand.clear()
            self._held = 0
        self._release_rows(items, self._now())

    # -- working ----------------------------------------------------------------------------

    def _work(self, active: list[str], report: DispatchReport) -> None:
        while True:
            item = self._take(active)
            if item is None:
                return
            key = self._key(item)
            try:
                self._renew_leases()
                self._deliver(item, key, report)
            except Exception as exc:
                # Never abandon the batch: this row stays claimed and its lease hands it on.
                logger.exception("delivery %s: unexpected error", item.id)
                report.errors.append(f"{item.id}: {type(exc).__name__}: {exc}")
            finally:
                self._done(key)

    def _deliver(self, item: _Claimed, key: tuple[str, str], report: DispatchReport) -> None:
        notifier = self.notifiers[item.platform]
        pacing = self.pacing.get(item.platform, DEFAULT_PACING["console"])
        now = self._now()
        if item.attempt_state in (ATTEMPT_IN_FLIGHT, ATTEMPT_UNKNOWN):
            # The last attempt's outcome was never recorded: the post may be there already.
            lookup_keys = [(f"{item.platform}:lookup", pacing.lookup_limits())]
            slot, booked = self.pacer.reserve(
                lookup_keys if pacing.lookup_limits() else [],
                now=now,
                latest=now + timedelta(seconds=self.horizon),
            )
            if not booked:
                report.released += self._release_key(key, item, slot)
                return
            self._wait_until(slot)
            found = self._look_up(item, notifier, [k for k, _ in lookup_keys], report)
            if found is None:
                return  # the lookup itself failed; the row was put back
            if found:
                return
        deadline = self.outages.deadline_of(item.kind, item.deadline)
        if deadline is not None and self._now() >= deadline:
            self._fail(item, f"expired: not delivered by {deadline:%Y-%m-%d %H:%M} UTC", report)
            report.expired += 1
            return
        reply, built = self._compose(item, report)
        if reply is None:
            return
        try:
            # Rendering and resolving the channel happen before the slot is booked, so the
            # post leaves at its slot (a slow first render once let one through 70 ms early).
            post = self._prepare(notifier, item, reply)
        except DeliveryError as exc:
            self._on_error(item, exc, [], report)
            return
        except (ConnectionError, TimeoutError, OSError) as exc:
            self._on_error(item, DeliveryError(f"connection: {exc}"), [], report)
            return
        except Exception as exc:
            logger.exception("notifier %s could not prepare delivery %s", item.platform, item.id)
            self._on_error(item, DeliveryError(f"{type(exc).__name__}: {exc}"), [], report)
            return
        workspace = getattr(notifier, "workspace", "default")
        target_key = f"{item.platform}:thread:{key[1]}"
        workspace_key = f"{item.platform}:workspace:{workspace}"
        # The channel with the most rows left is the one the run waits on. (Any channel with
        # another row in hand used to count: on a full day that was most direct messages too,
        # and the room left free for the risk channel went to them.)
        with self._lock:
            busiest = self._busiest.get(item.platform) == key
        keys = [
            (target_key, pacing.target_limits()),
            (workspace_key, pacing.workspace_limits(priority=busiest)),
        ]
        keys = [(k, limits) for k, limits in keys if limits]  # console: no pacing at all
        # A 429 holds back this post's channel; the workspace only if the platform may mean it.
        blocked = [target_key, workspace_key] if pacing.workspace_retry_after else [target_key]
        slot = self._book(keys)
        if slot is None:
            return  # stopping: the row was not touched yet and goes back with the hand
        if slot > self._now() + timedelta(seconds=self.horizon):
            # Beyond the horizon (a busy Teams thread, a long Retry-After): back to the queue,
            # due when the channel is free, so this replica keeps working on other channels.
            report.released += self._release_key(key, item, slot)
            return
        # Marked while waiting for the slot, so nothing but the HTTP call lies between the slot
        # and the post (a late post makes the next one on its channel look early).
        if not self._mark_attempt(item):
            logger.warning("delivery %s: no longer ours before the post; skipped", item.id)
            return
        self._wait_until(slot)
        if self._stopping.is_set():
            # Not posted after all: back in line, with nothing to look up.
            self._update_owned(
                item,
                {
                    "status": "pending",
                    "attempt_state": None,
                    "attempts": item.attempts,
                    "lease_until": None,
                    "next_attempt_at": self._now(),
                },
                "as not sent (stopping)",
            )
            report.released += 1
            return
        left = self._now()
        if left - slot > timedelta(seconds=LATE_SEND) and pacing.workspace_limits():
            # Only the workspace's windows: a channel's are "about one per second", bursts
            # allowed, while the workspace's many-per-window ones suffer most from a late post.
            self.pacer.late([workspace_key], slot, left)
        try:
            message_id = str(post())
        except DeliveryError as exc:
            self._on_error(item, exc, blocked, report)
            return
        except (ConnectionError, TimeoutError, OSError) as exc:
            self._on_error(
                item,
                DeliveryError(f"connection: {exc}", unknown=True),
                blocked,
                report,
            )
            return
        except Exception as exc:
            # A bug (a template that no longer renders...) must not stop the queue. Whether the
            # platform got the post is unknown: the next attempt looks it up first.
            logger.exception("notifier %s crashed on delivery %s", item.platform, item.id)
            error = DeliveryError(f"{type(exc).__name__}: {exc}", unknown=True)
            self._on_error(item, error, blocked, report)
            return
        self._finish_sent(item, message_id, built)
        report.sent += 1

    def _book(self, keys: list[tuple[str, Any]]) -> datetime | None:
        """Book a send slot on every key, only once it is (nearly) due.

        Booking far ahead on the workspace key would hold every other channel behind one busy
        channel (bookings on a key only move forward), so this waits for the instant the keys
        allow and books then. Returns the booked slot, a slot beyond the horizon (not booked),
        or None when the replica is stopping.
        """
        while not self._stopping.is_set():
            now = self._now()
            slot, booked = self.pacer.reserve(
                keys, now=now, latest=now + timedelta(seconds=BOOKING_SLACK)
            )
            if booked or slot > now + timedelta(seconds=self.horizon):
                return slot
            self._wait_until(slot)
        return None

    def _wait_until(self, slot: datetime) -> None:
        wait = (slot - self._now()).total_seconds()
        if wait <= 0:
            return
        if self.sleep is system_sleep:
            self._stopping.wait(wait)  # a SIGTERM ends the wait at once
        else:
            self.sleep(wait)

    def _prepare(self, notifier: Notifier, item: _Claimed, reply: Reply) -> Callable[[], str]:
        """What posts this row when called: rendered and addressed already when the notifier
        can split the work (``prepare_tagged``), else a call of ``send_tagged`` or ``send``."""
        prepare = getattr(notifier, "prepare_tagged", None)
        if prepare is not None:
            return prepare(item.target, reply, item.ref)  # type: ignore[no-any-return]
        tagged = getattr(notifier, "send_tagged", None)
        if tagged is not None:
            return lambda: tagged(item.target, reply, item.ref)
        return lambda: notifier.send(item.target, reply)

    def _compose(self, item: _Claimed, report: DispatchReport) -> tuple[Reply | None, Reply | None]:
        reply = Reply(
            template=item.template, context=item.context, text=item.text, visibility="channel"
        )
        if not is_deferred(item.context):
            return reply, None
        spec = item.context[BUILD_KEY]
        try:
            if spec.get("kind") == FAILURES_RECIPE:
                built = failures_report(self.engine, spec=spec, now=self._now())
            elif self.builder is None:
                self._fail(item, "cannot_compose: no builder for deferred content", report)
                return None, None
            else:
                built = self.builder(spec)
        except HandlerError as exc:
            self._fail(item, f"cannot_compose: {exc}", report)
            return None, None
        except Exception as exc:
            logger.exception("composing delivery %s failed", item.id)
            self._on_error(item, DeliveryError(f"{type(exc).__name__}: {exc}"), [], report)
            return None, None
        return built, built

    def _look_up(
        self, item: _Claimed, notifier: Notifier, keys: list[str], report: DispatchReport
    ) -> bool | None:
        """True: found and recorded as sent. False: not there, send it. None: try again later."""
        find = getattr(notifier, "find_tagged", None)
        since = as_utc(item.first_attempt_at or item.created_at) - timedelta(minutes=2)
        try:
            if find is None:
                raise LookupUnavailable(item.platform)
            message_id = find(item.target, item.ref, since)
        except LookupUnavailable:
            logger.warning(
                "delivery %s: %s cannot look a post up by its id; sending again after an "
                "unknown outcome (it may show twice)",
                item.id,
                item.platform,
            )
            return False
        except DeliveryError as exc:
            self._on_error(item, exc, keys, report, keep_unknown=True)
            return None
        except (ConnectionError, TimeoutError, OSError) as exc:
            self._on_error(item, DeliveryError(f"lookup: {exc}"), keys, report, keep_unknown=True)
            return None
        if message_id is None:
            return False
        logger.info("delivery %s was accepted before (found by its delivery id)", item.id)
        self._finish_sent(item, message_id, None)
        report.found += 1
        return True

    # -- recording outcomes -----------------------------------------------------------------

    def _mark_attempt(self, item: _Claimed) -> bool:
        """Compare-and-set before the HTTP call: still ours, lease still valid, now in flight."""
        now = self._now()

        def write() -> bool:
            with session_scope(self.engine) as session:
                done = session.execute(
                    update(Delivery)
                    .where(
                        Delivery.id == item.id,
                        Delivery.claimed_by == self.worker_id,
                        Delivery.status == "sending",
                        Delivery.lease_until > now,  # type: ignore[operator]
                    )
                    .values(
                        attempt_state=ATTEMPT_IN_FLIGHT,
                        attempts=Delivery.attempts + 1,
                        first_attempt_at=func.coalesce(Delivery.first_attempt_at, now),
                        lease_until=now + timedelta(seconds=self.lease_seconds),
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                ).rowcount
            return bool(done)

        return bool(self._db(f"marking delivery {item.id} in flight", write, default=False))

    def _update_owned(self, item: _Claimed, values: dict[str, Any], what: str) -> bool:
        def write() -> bool:
            with session_scope(self.engine) as session:
                done = session.execute(
                    update(Delivery)
                    .where(
                        Delivery.id == item.id,
                        Delivery.claimed_by == self.worker_id,
                        Delivery.status == "sending",
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                ).rowcount
            return bool(done)

        done = bool(self._db(f"recording delivery {item.id} {what}", write, default=False))
        if not done:
            logger.error("delivery %s: could not record it %s (claim lost)", item.id, what)
        return done

    def _hold_back(self, item: _Claimed, keys: list[str], until: datetime) -> None:
        """Every replica waits as long as the platform asked: on the channel it came from, and on
        the workspace once a second channel is refused while another still waits (the refusals
        are then about the workspace's limit, not a channel's)."""
        threads = [k for k in keys if ":thread:" in k]
        workspace = [k for k in keys if ":thread:" not in k]
        if not workspace or not threads:
            self.pacer.block(keys, until)
            return
        self.pacer.block(threads, until)
        if self.pacer.held_back(f"{item.platform}:thread:", self._now()) >= 2:
            self.pacer.block(workspace, until)

    def _finish_sent(self, item: _Claimed, message_id: str, built: Reply | None) -> None:
        now = self._now()
        values: dict[str, Any] = {
            "status": "sent",
            "message_id": message_id or None,
            "sent_at": now,
            "error": None,
            "attempt_state": None,
            "lease_until": None,
            "updated_at": now,
        }
        if built is not None:
            # Keep what was actually sent, not the recipe.
            values.update(template=built.template, context=built.context, text=built.text)
        self._update_owned(item, values, "as sent")

    def _fail(self, item: _Claimed, reason: str, report: DispatchReport) -> None:
        now = self._now()
        values = {
            "status": "failed",
            "error": reason,
            "lease_until": None,
            "attempt_state": None,
            "updated_at": now,
        }
        if self._update_owned(item, values, "as failed"):
            report.failed += 1
            logger.warning("delivery %s to %s failed: %s", item.id, item.target, reason)
            if item.kind not in REPORT_KINDS:
                self.outages.report_failures(item.platform, cause_of(reason))

    def _on_error(
        self,
        item: _Claimed,
        exc: DeliveryError,
        pacing_keys: list[str],
        report: DispatchReport,
        *,
        keep_unknown: bool = False,
    ) -> None:
        now = self._now()
        if exc.permanent:
            self._fail(item, exc.reason, report)
            return
        if exc.workspace:
            notifier = self.notifiers[item.platform]
            workspace = getattr(notifier, "workspace", "default")
            self.outages.pause(item.platform, workspace, exc.reason, list(self.notifiers))
            # Not accepted: back in line as it was, held by the pause (no backoff, no deadline
            # consumed beyond the wait itself).
            self._update_owned(
                item,
                {
                    "status": "pending",
                    "attempts": item.attempts,
                    "attempt_state": None,
                    "next_attempt_at": now,
                    "error": exc.reason,
                    "lease_until": None,
                    "updated_at": now,
                },
                "as paused",
            )
            report.paused += 1
            with self._lock:
                self._paused_now.add(item.platform)
                held = [i for k, q in self._hand.items() if k[0] == item.platform for i in q]
                for k in [k for k in self._hand if k[0] == item.platform]:
                    del self._hand[k]
                self._held -= len(held)
            self._release_rows(held, now)
            report.released += len(held)
            return
        rate_limited = exc.retry_after is not None and not exc.unknown
        if rate_limited:
            delay = max(exc.retry_after or 0.0, 0.0)
            self._hold_back(item, pacing_keys, now + timedelta(seconds=delay))
            report.rate_limited += 1
            attempts = item.attempts  # a 429 is pacing, not a failed attempt
        else:
            attempts = item.attempts + (0 if keep_unknown else 1)
            # Exponential backoff with equal jitter: replicas that failed together retry apart.
            ceiling = min(self.backoff_cap, self.backoff_base * (2 ** max(attempts - 1, 0)))
            delay = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
            if exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
        # A failed lookup leaves the state as it was: the post may still be out there.
        unknown = ATTEMPT_UNKNOWN if exc.unknown else None
        state = item.attempt_state if keep_unknown else unknown
        self._update_owned(
            item,
            {
                "status": "pending",
                "attempts": attempts,
                "attempt_state": state,
                "next_attempt_at": now + timedelta(seconds=delay),
                "error": exc.reason,
                "lease_until": None,
                "updated_at": now,
            },
            "for a retry",
        )
        report.retried += 1


class _Heartbeat:
    """Renews this replica's leases on the wall clock while a batch is worked on."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lease-heartbeat")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = max(self.dispatcher.lease_seconds / 4, 0.05)
        while not self._stop.wait(interval):
            self.dispatcher._renew_leases()
