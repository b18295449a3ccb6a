"""When posting cannot happen: per-kind deadlines, paused workspaces and their probes, admin reports."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, literal, select, update
from sqlalchemy.engine import Engine

from handlers.delivery_reports import delivery_paused_reply
from handlers.reply import Reply
from scheduler.builders import BUILD_KEY
from scheduler.clock import Clock, as_utc
from scheduler.models import Delivery, DeliveryPause
from scheduler.notifier import DeliveryError, Notifier
from scheduler.outbox import (
    DEFAULT_DEADLINE,
    DEFAULT_DEADLINES,
    FAILED_REPORT_KIND,
    PAUSED_REPORT_KIND,
    REPORT_KINDS,
    OutboxItem,
    enqueue,
)
from scheduler.reports import FAILURES_RECIPE, cause_of
from storage.db import session_scope

logger = logging.getLogger(__name__)


class Outages:
    """The dispatcher's answers to "it cannot be posted now": a deadline per kind (not a number
    of attempts), a pause per refused workspace (probed until it works again), and admin reports
    (one per cause per hour; one per pause).

    ``db`` runs a bookkeeping write with the dispatcher's retries and returns ``default`` if it
    still fails.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock,
        db: Callable[..., Any],
        admin_targets: Mapping[str, str],
        deadlines: Mapping[str, timedelta],
        probe_seconds: float,
        report_delay: float,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self._db = db
        self.admin_targets = dict(admin_targets)
        self.deadlines = {**DEFAULT_DEADLINES, **deadlines}
        self.probe_seconds = probe_seconds
        self.report_delay = report_delay

    def _now(self) -> datetime:
        return as_utc(self.clock())

    def deadline_of(self, kind: str, deadline: datetime | None) -> datetime | None:
        """A row's deadline; None while it has none yet (it gets one when it first falls due)."""
        return as_utc(deadline) if deadline is not None else None

    def _start_deadlines(self, platforms: list[str], now: datetime) -> None:
        """A row's deadline runs from when it falls due on the dispatcher's clock: a demo pinned
        to another day, or a backfill of a past instant, queues rows stamped with business time,
        and these must not be expired before anyone tried to send them."""
        known = list(self.deadlines)

        def write() -> None:
            with session_scope(self.engine) as session:
                for kind, ttl in [*self.deadlines.items(), (None, DEFAULT_DEADLINE)]:
                    which = Delivery.kind == kind if kind else Delivery.kind.notin_(known)  # type: ignore[attr-defined]
                    session.execute(
                        update(Delivery)
                        .where(
                            Delivery.status == "pending",
                            Delivery.next_attempt_at <= now,  # type: ignore[operator]
                            Delivery.deadline.is_(None),  # type: ignore[union-attr]
                            Delivery.platform.in_(platforms),  # type: ignore[attr-defined]
                            which,
                        )
                        .values(deadline=now + ttl)
                        .execution_options(synchronize_session=False)
                    )

        self._db("starting deadlines", write)

    def expire(self, platforms: list[str]) -> int:
        """Give rows that just became due their deadline, and fail those past it (rows whose last
        answer was lost are not failed here: they are looked up first)."""
        now = self._now()
        self._start_deadlines(platforms, now)
        overdue = and_(
            Delivery.deadline.is_not(None),  # type: ignore[union-attr]
            Delivery.deadline < now,  # type: ignore[operator]
        )
        stmt = (
            update(Delivery)
            .where(
                Delivery.status == "pending",
                Delivery.attempt_state.is_(None),  # type: ignore[union-attr]
                Delivery.platform.in_(platforms),  # type: ignore[attr-defined]
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
            self.report_failures(platform, "expired")
        if expired:
            logger.warning("%d deliveries passed their deadline", len(expired))
        return len(expired)

    def active(self, notifiers: Mapping[str, Notifier]) -> list[str]:
        """Platforms whose workspace is not paused; probes a paused one when its turn comes."""

        def read() -> list[DeliveryPause]:
            with session_scope(self.engine) as session:
                return list(session.execute(select(DeliveryPause)).scalars())

        pauses = self._db("reading pauses", read)
        if pauses is None:
            return []  # the database is unwell: nothing is sent this round, nothing is lost
        active = []
        for platform, notifier in notifiers.items():
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

    def pause(self, platform: str, workspace: str, reason: str, platforms: list[str]) -> None:
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
            if admin_platform in platforms
        ]
        if not items:
            return

        def queue() -> None:
            with session_scope(self.engine) as session:
                enqueue(session, items, now=now)

        self._db("queueing the pause alert", queue)

    def report_failures(self, platform: str, cause: str) -> None:
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
