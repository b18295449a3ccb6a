"""Sends pending outbox rows through the platform notifiers: claimed once, paced, retried, never lost."""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Engine

from handlers.errors import HandlerError
from handlers.reply import Reply
from scheduler.builders import BUILD_KEY, is_deferred
from scheduler.clock import Clock, Sleep, as_utc, system_clock, system_sleep
from scheduler.models import Delivery
from scheduler.notifier import DeliveryError, Notifier
from scheduler.outbox import OutboxItem, enqueue
from storage.db import session_scope

logger = logging.getLogger(__name__)

FAILED_REPORT_KIND = "delivery_failed"


@dataclass(frozen=True)
class Pacing:
    """How fast one platform may be posted to.

    Attributes:
        per_target_interval: seconds between two posts to the same channel / conversation.
        global_rate: posts per second across the whole workspace or tenant (None = unlimited).
    """

    per_target_interval: float
    global_rate: float | None = None


# Slack: chat.postMessage about 1/s per channel plus a workspace cap. Teams: per-thread limits
# 7/1s, 60/30s, 1800/3600s (0.5/s sustained) and ~50 requests/s per app per tenant.
DEFAULT_PACING: dict[str, Pacing] = {
    "slack": Pacing(per_target_interval=1.0, global_rate=10.0),
    "teams": Pacing(per_target_interval=2.0, global_rate=40.0),
    "console": Pacing(per_target_interval=0.0, global_rate=None),
}


@dataclass
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    rate_limited: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: DispatchReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.released += other.released
        self.rate_limited += other.rate_limited
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


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Dispatcher:
    """Claims due deliveries and posts them.

    Claims are leases (status "sending", claimed_by, lease_until): on PostgreSQL the claim selects
    with FOR UPDATE SKIP LOCKED so two replicas never take the same row; on SQLite the single
    UPDATE ... WHERE status is atomic under SQLite's write lock. A lease that runs out (the process
    died mid-batch) makes the row claimable again, so nothing is lost.

    Pacing is planned per batch: each claimed row gets a slot no earlier than its channel's next
    free second and the workspace's next free slot; rows whose slot is beyond ``horizon`` seconds
    go back to pending with next_attempt_at = slot, so other replicas respect the pacing too.
    """

    def __init__(
        self,
        engine: Engine,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Clock = system_clock,
        lease_clock: Clock | None = None,
        sleep: Sleep = system_sleep,
        pacing: Mapping[str, Pacing] | None = None,
        admin_targets: Mapping[str, str] | None = None,
        worker_id: str | None = None,
        batch_size: int = 200,
        horizon: float = 20.0,
        lease_seconds: float = 300.0,
        max_attempts: int = 8,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        rng: random.Random | None = None,
        builder: Callable[[dict[str, Any]], Reply] | None = None,
    ) -> None:
        self.engine = engine
        self.notifiers = dict(notifiers)
        self.clock = clock
        # Leases are between processes, so they run on the wall clock even when business time is
        # injected (`run-once --at` a past instant next to a live replica must not look expired
        # to it); tests that simulate a crash pass their fake clock here.
        self.lease_clock = lease_clock or system_clock
        self.sleep = sleep
        self.pacing = {**DEFAULT_PACING, **(pacing or {})}
        self.admin_targets = dict(admin_targets or {})
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.horizon = horizon
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rng = rng or random.Random()
        # Composes deferred replies (scheduler.builders) right before they are sent.
        self.builder = builder
        # In-memory pacing state; survives across batches of this process.
        self._target_ready: dict[tuple[str, str], datetime] = {}
        self._global_ready: dict[str, datetime] = {}
        # Multiplies the workspace interval: grows on 429s (a cap lower than configured, another
        # app sharing it), shrinks back on successes. Additive-increase/multiplicative-decrease.
        self._slowdown: dict[str, float] = defaultdict(lambda: 1.0)

    # -- public -----------------------------------------------------------------------------

    def dispatch_due(self) -> DispatchReport:
        """Send what is due now (pacing waits included), then return; the background job's call."""
        report = DispatchReport()
        while True:
            batch = self._claim(self._now())
            if not batch:
                return report
            report.merge(self._process(batch))

    def drain(self, *, max_wait: float = 600.0) -> DispatchReport:
        """Send until nothing is pending, waiting for retries due within ``max_wait`` seconds."""
        report = DispatchReport()
        while True:
            report.merge(self.dispatch_due())
            wait = self._seconds_to_next_due()
            if wait is None or wait > max_wait:
                return report
            self.sleep(max(wait, 0.0) + 0.001)

    # -- claiming ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return as_utc(self.clock())

    def _claim(self, now: datetime) -> list[_Claimed]:
        platforms = list(self.notifiers)
        lease_now = as_utc(self.lease_clock())
        due = or_(
            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
            and_(Delivery.status == "sending", Delivery.lease_until < lease_now),
        )
        candidates = (
            select(Delivery.id)
            .where(due, Delivery.platform.in_(platforms))
            # Oldest first by id, not by due time: a row put back for pacing or a retry keeps
            # its place in the line instead of queueing behind everything created since.
            .order_by(Delivery.id)
            .limit(self.batch_size)
        )
        if self.engine.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        stmt = (
            update(Delivery)
            .where(Delivery.id.in_(candidates.scalar_subquery()), due)
            .values(
                status="sending",
                claimed_by=self.worker_id,
                lease_until=lease_now + timedelta(seconds=self.lease_seconds),
                updated_at=now,
            )
            .returning(
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
            )
            .execution_options(synchronize_session=False)
        )
        with session_scope(self.engine) as session:
            rows = session.execute(stmt).all()
        return sorted((_Claimed(*r) for r in rows), key=lambda c: c.id)

    def _seconds_to_next_due(self) -> float | None:
        """Seconds until a row becomes claimable: a pending retry, or a lease that runs out."""
        platforms = list(self.notifiers)
        with session_scope(self.engine) as session:
            pending_at = session.execute(
                select(Delivery.next_attempt_at)
                .where(Delivery.status == "pending", Delivery.platform.in_(platforms))
                .order_by(Delivery.next_attempt_at)
                .limit(1)
            ).scalar()
            lease_ends = session.execute(
                select(Delivery.lease_until)
                .where(Delivery.status == "sending", Delivery.platform.in_(platforms))
                .order_by(Delivery.lease_until)
                .limit(1)
            ).scalar()
        waits = []
        if pending_at is not None:
            waits.append((as_utc(pending_at) - self._now()).total_seconds())
        if lease_ends is not None:
            waits.append((as_utc(lease_ends) - as_utc(self.lease_clock())).total_seconds())
        return min(waits) if waits else None

    # -- pacing and sending -----------------------------------------------------------------

    def _plan(self, batch: list[_Claimed], now: datetime) -> list[tuple[datetime, _Claimed]]:
        """Give each row a send slot that its channel and its workspace allow, in time order.

        At every workspace slot the channel with the most rows waiting goes first (longest queue
        first), so one busy channel (the team risk channel on a bad day) is kept at its 1/s while
        the others share the rest, instead of being starved behind them.
        """
        by_platform: dict[str, list[_Claimed]] = defaultdict(list)
        for item in batch:
            by_platform[item.platform].append(item)
        planned: list[tuple[datetime, _Claimed]] = []
        for platform, items in by_platform.items():
            pacing = self.pacing.get(platform, DEFAULT_PACING["console"])
            interval = timedelta(seconds=pacing.per_target_interval)
            step = (
                timedelta(seconds=self._slowdown[platform] / pacing.global_rate)
                if pacing.global_rate
                else None
            )
            queues: dict[str, deque[_Claimed]] = defaultdict(deque)
            for item in sorted(items, key=lambda c: c.id):
                queues[item.target].append(item)
            ready = {t: max(now, self._target_ready.get((platform, t), now)) for t in queues}
            clock = max(now, self._global_ready.get(platform, now)) if step else now
            while queues:
                waiting = [t for t in queues if ready[t] <= clock]
                if not waiting:
                    clock = min(ready[t] for t in queues)
                    continue
                if step is None:
                    chosen = waiting
                else:
                    chosen = [max(waiting, key=lambda t: (len(queues[t]), -queues[t][0].id))]
                for target in chosen:
                    planned.append((clock, queues[target].popleft()))
                    ready[target] = clock + interval
                    if not queues[target]:
                        del queues[target]
                if step is not None:
                    clock += step
        planned.sort(key=lambda p: (p[0], p[1].id))
        return planned

    def _process(self, batch: list[_Claimed]) -> DispatchReport:
        report = DispatchReport()
        now = self._now()
        plan = self._plan(batch, now)
        horizon = now + timedelta(seconds=self.horizon)
        later = [(slot, item) for slot, item in plan if slot > horizon]
        if later:
            # Back to pending, due when their channel is free: other replicas pace the same way.
            self._release(later)
            report.released += len(later)
        blocked: dict[tuple[str, str], datetime] = {}
        for slot, item in plan:
            if slot > horizon:
                continue
            key = (item.platform, item.target)
            if key in blocked:
                # The channel answered 429 earlier in this batch: wait as long as it asked.
                self._release([(blocked[key], item)])
                report.released += 1
                continue
            pacing = self.pacing.get(item.platform, DEFAULT_PACING["console"])
            ready = max(
                slot,
                self._target_ready.get(key, slot),
                self._global_ready.get(item.platform, slot),
            )
            wait = (ready - self._now()).total_seconds()
            if wait > 0:
                self.sleep(wait)
            sent_at = self._now()
            self._target_ready[key] = sent_at + timedelta(seconds=pacing.per_target_interval)
            if pacing.global_rate:
                self._global_ready[item.platform] = sent_at + timedelta(
                    seconds=self._slowdown[item.platform] / pacing.global_rate
                )
            outcome = self._send_one(item)
            if outcome == "sent":
                report.sent += 1
                self._slowdown[item.platform] = max(1.0, self._slowdown[item.platform] * 0.98)
            elif outcome == "failed":
                report.failed += 1
            else:
                report.retried += 1
                if outcome == "rate_limited":
                    report.rate_limited += 1
                    blocked[key] = self._target_ready[key]
                    self._slowdown[item.platform] = min(20.0, self._slowdown[item.platform] * 1.5)
        return report

    def _send_one(self, item: _Claimed) -> str:
        notifier = self.notifiers[item.platform]
        reply = Reply(
            template=item.template, context=item.context, text=item.text, visibility="channel"
        )
        built: Reply | None = None
        if is_deferred(item.context):
            if self.builder is None:
                return self._on_error(item, "no builder for deferred content", None, True)
            try:
                built = reply = self.builder(item.context[BUILD_KEY])
            except HandlerError as exc:
                return self._on_error(item, f"cannot compose: {exc}", None, True)
            except Exception as exc:
                logger.exception("composing delivery %s failed", item.id)
                return self._on_error(item, f"{type(exc).__name__}: {exc}", None, False)
        try:
            message_id = notifier.send(item.target, reply)
        except DeliveryError as exc:
            return self._on_error(item, exc.reason, exc.retry_after, exc.permanent)
        except (ConnectionError, TimeoutError, OSError) as exc:
            return self._on_error(item, f"connection: {exc}", None, False)
        except Exception as exc:
            # A bug (a template that no longer renders...) must not stop the queue; it is retried
            # with backoff and ends failed and reported like any other error.
            logger.exception("notifier %s crashed on delivery %s", item.platform, item.id)
            return self._on_error(item, f"{type(exc).__name__}: {exc}", None, False)
        self._finish(item, status="sent", message_id=message_id, reply=built)
        return "sent"

    def _on_error(
        self, item: _Claimed, reason: str, retry_after: float | None, permanent: bool
    ) -> str:
        now = self._now()
        # A 429 is the platform pacing us, not a failed attempt: it never uses up the retries.
        rate_limited = retry_after is not None and not permanent
        attempts = item.attempts if rate_limited else item.attempts + 1
        key = (item.platform, item.target)
        if permanent or attempts >= self.max_attempts:
            why = reason if permanent else f"gave up after {attempts} attempts: {reason}"
            self._finish(item, status="failed", error=why, attempts=attempts)
            self._report_failure(item, why)
            logger.warning("delivery %s to %s failed: %s", item.id, item.target, why)
            return "failed"
        if retry_after is not None:
            delay = max(retry_after, 0.0)
            self._target_ready[key] = now + timedelta(seconds=delay)
            outcome = "rate_limited"
        else:
            # Exponential backoff with equal jitter: replicas that failed together retry apart.
            ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempts - 1)))
            delay = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
            outcome = "retry"
        with session_scope(self.engine) as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == item.id, Delivery.claimed_by == self.worker_id)
                .values(
                    status="pending",
                    attempts=attempts,
                    next_attempt_at=now + timedelta(seconds=delay),
                    error=reason,
                    lease_until=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
        return outcome

    def _finish(
        self,
        item: _Claimed,
        *,
        status: str,
        message_id: str | None = None,
        error: str | None = None,
        attempts: int | None = None,
        reply: Reply | None = None,
    ) -> None:
        now = self._now()
        values: dict[str, Any] = {
            "status": status,
            "lease_until": None,
            "updated_at": now,
            "attempts": attempts if attempts is not None else item.attempts + 1,
        }
        if status == "sent":
            values.update(message_id=message_id, sent_at=now, error=None)
            if reply is not None:
                # Keep what was actually sent, not the recipe.
                values.update(template=reply.template, context=reply.context, text=reply.text)
        else:
            values.update(error=error)
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
        if not done:
            # Only possible when our lease ran out mid-send and another worker took the row.
            logger.error("delivery %s was reclaimed while we sent it", item.id)

    def _release(self, rows: list[tuple[datetime, _Claimed]]) -> None:
        with session_scope(self.engine) as session:
            for slot, item in rows:
                session.execute(
                    update(Delivery)
                    .where(Delivery.id == item.id, Delivery.claimed_by == self.worker_id)
                    .values(status="pending", next_attempt_at=slot, lease_until=None)
                    .execution_options(synchronize_session=False)
                )

    def _report_failure(self, item: _Claimed, reason: str) -> None:
        if item.kind == FAILED_REPORT_KIND:
            return  # a report about a report would loop; the row itself records the failure
        target = self.admin_targets.get(item.platform)
        if not target:
            logger.error(
                "delivery %s failed and no admin channel is configured for %s: %s",
                item.id,
                item.platform,
                reason,
            )
            return
        from handlers.alerts import delivery_failed_reply

        reply = delivery_failed_reply(
            delivery_id=item.id,
            kind=item.kind,
            subject=item.subject,
            target=item.target,
            platform=item.platform,
            reason=reason,
            text=item.text,
        )
        with session_scope(self.engine) as session:
            enqueue(
                session,
                [
                    OutboxItem(
                        kind=FAILED_REPORT_KIND,
                        subject=f"delivery:{item.id}",
                        target=target,
                        period="",
                        platform=item.platform,
                        reply=reply,
                    )
                ],
                now=self._now(),
            )
