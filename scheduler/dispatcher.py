"""Sends pending outbox rows through the platform notifiers: once, paced across replicas, never lost."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, literal, or_, select, update
from sqlalchemy.engine import Engine

from handlers.delivery_reports import delivery_paused_reply
from handlers.errors import HandlerError
from handlers.reply import Reply
from scheduler.builders import BUILD_KEY, is_deferred
from scheduler.clock import Clock, Sleep, as_utc, system_clock, system_sleep
from scheduler.models import ATTEMPT_IN_FLIGHT, ATTEMPT_UNKNOWN, Delivery, DeliveryPause
from scheduler.notifier import DeliveryError, LookupUnavailable, Notifier
from scheduler.outbox import OutboxItem, enqueue
from scheduler.pacing import DEFAULT_PACING, DatabasePacer, Pacer, Pacing, retry_db
from scheduler.reports import FAILURES_RECIPE, cause_of, failures_report
from storage.db import session_scope

__all__ = ["DEFAULT_DEADLINES", "DEFAULT_PACING", "DispatchReport", "Dispatcher", "Pacing"]

logger = logging.getLogger(__name__)

FAILED_REPORT_KIND = "delivery_failed"
PAUSED_REPORT_KIND = "delivery_paused"
REPORT_KINDS = frozenset({FAILED_REPORT_KIND, PAUSED_REPORT_KIND})

# How long a post is still worth making after it was queued. A digest is useless tomorrow; a
# renewal reminder is not. Past its deadline a row fails as "expired" (and is reported).
DEFAULT_DEADLINES: dict[str, timedelta] = {
    "daily_digest": timedelta(hours=12),
    "manager_digest": timedelta(days=1),
    "risk_alert": timedelta(days=3),
    "renewal_reminder": timedelta(days=5),
    "qbr_prep": timedelta(days=2),
    FAILED_REPORT_KIND: timedelta(days=3),
    PAUSED_REPORT_KIND: timedelta(days=3),
}
DEFAULT_DEADLINE = timedelta(days=1)


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
        self.admin_targets = dict(admin_targets or {})
        self.deadlines = {**DEFAULT_DEADLINES, **(deadlines or {})}
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.concurrency = max(1, concurrency)
        self.horizon = horizon
        self.lease_seconds = lease_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.probe_seconds = probe_seconds
        self.report_delay = report_delay
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

    # -- public -----------------------------------------------------------------------------

    def dispatch_due(self) -> DispatchReport:
        """Send what is due now (pacing waits included), then return; the background job's call."""
        report = DispatchReport()
        if self._stopping.is_set():
            return report
        self._expire(report)
        active = self._active_platforms(report)
        if not active:
            return report
        self._paused_now.clear()
        self._aborting.clear()
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

    def deadline_of(self, kind: str, created_at: datetime, deadline: datetime | None) -> datetime:
        if deadline is not None:
            return as_utc(deadline)
        return as_utc(created_at) + self.deadlines.get(kind, DEFAULT_DEADLINE)

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
        candidates = (
            select(Delivery.id)
            .where(due, Delivery.platform.in_(platforms))  # type: ignore[attr-defined]
            # Oldest first by id, not by due time: a row put back for pacing or a retry keeps
            # its place in the line instead of queueing behind everything created since.
            .order_by(Delivery.id)
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
                    ids = list(
                        session.execute(candidates.with_for_update(skip_locked=True)).scalars()
                    )
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

        return self._db("claiming deliveries", claim, default=[])

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
        notifier = self.notifiers[item.platform]
        pacing_key = getattr(notifier, "pacing_key", None)
        return (item.platform, pacing_key(item.target) if pacing_key else item.target)

    def _take(self, active: list[str]) -> _Claimed | None:
        """The next row for a worker: one at a time per channel, oldest first, refilled by claims."""
        with self._lock:
            while not self._stopping.is_set() and not self._aborting.is_set():
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
                for item in claimed:
                    if item.platform not in active:
                        continue
                    self._hand.setdefault(self._key(item), deque()).append(item)
                    self._held += 1
                if claimed:
                    continue
                if not self._busy:
                    return None
                # Everything left waits on channels other workers are posting to right now.
                self._lock.wait(0.05)
        return None

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
            found = self._look_up(item, notifier, report)
            if found is None:
                return  # the lookup itself failed; the row was put back
            if found:
                return
        deadline = self.deadline_of(item.kind, item.created_at, item.deadline)
        if self._now() >= deadline:
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
        keys = [
            (f"{item.platform}:{key[1]}", pacing.target_limits()),
            (f"{item.platform}:workspace:{workspace}", pacing.workspace_limits()),
        ]
        keys = [(k, limits) for k, limits in keys if limits]
        now = self._now()
        slot, booked = self.pacer.reserve(
            keys, now=now, latest=now + timedelta(seconds=self.horizon)
        )
        if not booked:
            # Beyond the horizon (a busy Teams thread, a long Retry-After): back to the queue,
            # due when the channel is free, so this replica keeps working on other channels.
            report.released += self._release_key(key, item, slot)
            return
        self._wait_until(slot)
        if self._stopping.is_set():
            self._release_rows([item], self._now())
            report.released += 1
            return
        if not self._mark_attempt(item):
            logger.warning("delivery %s: no longer ours before the post; skipped", item.id)
            return
        try:
            message_id = str(post())
        except DeliveryError as exc:
            self._on_error(item, exc, [k for k, _ in keys], report)
            return
        except (ConnectionError, TimeoutError, OSError) as exc:
            self._on_error(
                item,
                DeliveryError(f"connection: {exc}", unknown=True),
                [k for k, _ in keys],
                report,
            )
            return
        except Exception as exc:
            # A bug (a template that no longer renders...) must not stop the queue. Whether the
            # platform got the post is unknown: the next attempt looks it up first.
            logger.exception("notifier %s crashed on delivery %s", item.platform, item.id)
            error = DeliveryError(f"{type(exc).__name__}: {exc}", unknown=True)
            self._on_error(item, error, [k for k, _ in keys], report)
            return
        self._finish_sent(item, message_id, built)
        report.sent += 1

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

    def _look_up(self, item: _Claimed, notifier: Notifier, report: DispatchReport) -> bool | None:
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
            self._on_error(item, exc, [], report, keep_unknown=True)
            return None
        except (ConnectionError, TimeoutError, OSError) as exc:
            self._on_error(item, DeliveryError(f"lookup: {exc}"), [], report, keep_unknown=True)
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
                self._report_failures(item.platform, cause_of(reason))

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
            self._pause(item.platform, getattr(notifier, "workspace", "default"), exc.reason)
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
            # Every replica waits as long as the platform asked, on this channel and workspace.
            self.pacer.block(pacing_keys, now + timedelta(seconds=delay))
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

    # -- deadlines, pauses, admin reports ---------------------------------------------------

    def _expire(self, report: DispatchReport) -> None:
        """Fail what is past its deadline; rows whose last answer was lost are looked up first."""
        now = self._now()
        known = list(self.deadlines)
        overdue = or_(
            and_(Delivery.deadline.is_not(None), Delivery.deadline < now),  # type: ignore[union-attr,operator]
            *(
                and_(
                    Delivery.deadline.is_(None),  # type: ignore[union-attr]
                    Delivery.kind == kind,
                    Delivery.created_at < now - ttl,  # type: ignore[operator]
                )
                for kind, ttl in self.deadlines.items()
            ),
            and_(
                Delivery.deadline.is_(None),  # type: ignore[union-attr]
                Delivery.kind.notin_(known),  # type: ignore[attr-defined]
                Delivery.created_at < now - DEFAULT_DEADLINE,  # type: ignore[operator]
            ),
        )
        stmt = (
            update(Delivery)
            .where(
                Delivery.status == "pending",
                Delivery.attempt_state.is_(None),  # type: ignore[union-attr]
                Delivery.platform.in_(list(self.notifiers)),  # type: ignore[attr-defined]
                overdue,
            )
            .values(
                status="failed",
                error=literal("expired: ") + func.coalesce(Delivery.error, "never sent"),
                updated_at=now,
            )
            .returning(Delivery.platform, Delivery.kind)
            .execution_options(synchronize_session=False)
        )

        def write() -> list[tuple[str, str]]:
            with session_scope(self.engine) as session:
                return [tuple(r) for r in session.execute(stmt).all()]  # type: ignore[misc]

        expired = self._db("expiring overdue deliveries", write, default=[])
        for platform in sorted({p for p, kind in expired if kind not in REPORT_KINDS}):
            self._report_failures(platform, "expired")
        if expired:
            logger.warning("%d deliveries passed their deadline", len(expired))
            report.expired += len(expired)
            report.failed += len(expired)

    def _active_platforms(self, report: DispatchReport) -> list[str]:
        """Platforms whose workspace is not paused; probes a paused one when its turn comes."""

        def read() -> list[DeliveryPause]:
            with session_scope(self.engine) as session:
                return list(session.execute(select(DeliveryPause)).scalars())

        pauses = self._db("reading pauses", read)
        if pauses is None:
            return []  # the database is unwell: nothing is sent this round, nothing is lost
        active = []
        for platform, notifier in self.notifiers.items():
            workspace = getattr(notifier, "workspace", "default")
            pause = next(
                (p for p in pauses if p.platform == platform and p.workspace == workspace), None
            )
            if pause is None or self._probe(pause, notifier):
                active.append(platform)
        return active

    def _probe(self, pause: DeliveryPause, notifier: Notifier) -> bool:
        """One replica at a time checks a paused workspace; True when it works again."""
        now = self._now()
        if as_utc(pause.next_probe_at) > now:
            return False

        def take_turn() -> bool:
            with session_scope(self.engine) as session:
                return bool(
                    session.execute(
                        update(DeliveryPause)
                        .where(
                            DeliveryPause.platform == pause.platform,
                            DeliveryPause.workspace == pause.workspace,
                            DeliveryPause.next_probe_at <= now,  # type: ignore[operator]
                        )
                        .values(
                            next_probe_at=now + timedelta(seconds=self.probe_seconds),
                            probes=DeliveryPause.probes + 1,
                        )
                        .execution_options(synchronize_session=False)
                    ).rowcount
                )

        if not self._db("taking the probe turn", take_turn, default=False):
            return False
        probe = getattr(notifier, "probe", None)
        try:
            if probe is not None:
                probe(pause.reason)
        except (DeliveryError, ConnectionError, TimeoutError, OSError) as exc:
            logger.warning("%s deliveries stay paused (%s): %s", pause.platform, pause.reason, exc)
            return False

        def resume() -> None:
            with session_scope(self.engine) as session:
                session.execute(
                    delete(DeliveryPause).where(
                        DeliveryPause.platform == pause.platform,
                        DeliveryPause.workspace == pause.workspace,
                    )
                )

        self._db("resuming deliveries", resume)
        paused_for = now - as_utc(pause.since)
        logger.warning(
            "%s deliveries resume: the workspace answers again after %s (%s)",
            pause.platform,
            str(paused_for).split(".")[0],
            pause.reason,
        )
        return True

    def _pause(self, platform: str, workspace: str, reason: str) -> None:
        now = self._now()
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert

        def write() -> bool:
            with session_scope(self.engine) as session:
                new = session.execute(
                    insert(DeliveryPause)
                    .values(
                        platform=platform,
                        workspace=workspace,
                        reason=reason,
                        since=now,
                        next_probe_at=now + timedelta(seconds=self.probe_seconds),
                        probes=0,
                    )
                    .on_conflict_do_nothing(index_elements=["platform", "workspace"])
                    .returning(DeliveryPause.platform)
                ).scalar()
            return new is not None

        if not self._db("pausing deliveries", write, default=False):
            return
        logger.error(
            "%s deliveries paused: the workspace refuses us (%s); they resume by themselves "
            "when a probe succeeds (every %.0fs)",
            platform,
            reason,
            self.probe_seconds,
        )
        reply = delivery_paused_reply(
            platform=platform,
            workspace=workspace,
            reason=reason,
            since=now,
            probe_seconds=self.probe_seconds,
        )
        hour = now.replace(minute=0, second=0, microsecond=0).isoformat()
        items = [
            OutboxItem(
                kind=PAUSED_REPORT_KIND,
                subject=f"pause:{platform}:{workspace}:{cause_of(reason)}",
                target=target,
                period=hour,
                platform=admin_platform,
                reply=reply,
            )
            for admin_platform, target in self.admin_targets.items()
            if admin_platform in self.notifiers
        ]
        if not items:
            return

        def queue() -> None:
            with session_scope(self.engine) as session:
                enqueue(session, items, now=now)

        self._db("queueing the pause alert", queue)

    def _report_failures(self, platform: str, cause: str) -> None:
        """At most one admin report per cause per hour; it lists every failure of that cause."""
        target = self.admin_targets.get(platform)
        if not target:
            logger.error(
                "deliveries on %s failed (%s) and no admin channel is configured for it",
                platform,
                cause,
            )
            return
        now = self._now()
        subject = f"failures:{platform}:{cause}"
        hour = now.replace(minute=0, second=0, microsecond=0)

        def write() -> None:
            with session_scope(self.engine) as session:
                rows = session.execute(
                    select(Delivery.period, Delivery.status).where(
                        Delivery.kind == FAILED_REPORT_KIND,
                        Delivery.subject == subject,
                        Delivery.period.in_(  # type: ignore[attr-defined]
                            [hour.isoformat(), (hour + timedelta(hours=1)).isoformat()]
                        ),
                    )
                ).all()
                if any(status == "pending" for _, status in rows):
                    return  # a report still to be composed will include this failure
                this_hour = {p for p, _ in rows}
                when = hour if hour.isoformat() not in this_hour else hour + timedelta(hours=1)
                if when.isoformat() in this_hour:
                    return
                spec = {"kind": FAILURES_RECIPE, "platform": platform, "cause": cause}
                reply = Reply(
                    template="delivery_report",
                    context={BUILD_KEY: spec},
                    text=f"Deliveries failed on {platform}: {cause}",
                    visibility="channel",
                )
                enqueue(
                    session,
                    [
                        OutboxItem(
                            FAILED_REPORT_KIND, subject, target, when.isoformat(), platform, reply
                        )
                    ],
                    now=now,
                    # A short wait gathers a burst of failures into one report.
                    due=max(now + timedelta(seconds=self.report_delay), when),
                )

        self._db("queueing a failure report", write)


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
