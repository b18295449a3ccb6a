"""What `csm-bot scheduler run-once` and `csm-bot outbox` do and print; the CLI only parses arguments."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from scheduler.clock import as_utc
from scheduler.config import SchedulerConfig
from scheduler.models import ATTEMPT_UNKNOWN, Delivery
from scheduler.outbox import counts_by_status, list_deliveries, requeue_failed
from scheduler.runner import Services
from scheduler.work import RunReport, fill_outbox
from storage.db import session_scope

STATUSES = ("pending", "sending", "sent", "failed")


def parse_instant(value: str | datetime) -> datetime:
    """ISO-8601; a value without an offset is UTC ("2026-11-24T08:30" or "...+01:00" or "...Z")."""
    if isinstance(value, datetime):
        return as_utc(value)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 instant: {value!r} (try 2026-11-24T08:30:00Z)") from exc


def catch_up_window(config: SchedulerConfig) -> tuple[timedelta, timedelta]:
    """How far back and ahead of now an instant may be run without --backfill: as far back as
    the running scheduler itself catches up after an outage, and one tick ahead."""
    back = max(timedelta(days=config.catchup_days), timedelta(hours=config.digest_grace_hours))
    return back, timedelta(seconds=config.tick_seconds)


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours >= 48:
        return f"{hours / 24:.0f} days"
    if hours >= 1:
        return f"{hours:.0f} h"
    return f"{delta.total_seconds() / 60:.0f} min"


def backfill_refusal(at: datetime, now: datetime, config: SchedulerConfig) -> str | None:
    """None when ``at`` is inside the catch-up window, else the one-line reason to refuse it."""
    back, ahead = catch_up_window(config)
    if at < now - back:
        return (
            f"{at:%Y-%m-%dT%H:%M}Z is {_span(now - at)} ago, outside the catch-up window "
            f"({_span(back)}): what was due then is stale now. Pass --backfill to queue and post "
            "it anyway, or --dry-run to see what it would queue."
        )
    if at > now + ahead:
        return (
            f"{at:%Y-%m-%dT%H:%M}Z is {_span(at - now)} ahead: running it now would post tomorrow's "
            "digests today and use up their keys. Pass --backfill to do it anyway (a database you "
            "own), or --dry-run to see what it would queue."
        )
    return None


def preview(services: Services, at: datetime, config: SchedulerConfig) -> str:
    """`run-once --dry-run`: what a run at ``at`` would queue, inside a transaction rolled back.

    Health is not recomputed (that would write snapshots); alerts are judged on the snapshots
    already stored. Nothing is written and nothing is sent.
    """
    at = as_utc(at)
    with services.engine.connect() as conn:
        transaction = conn.begin()
        try:
            before = conn.execute(select(func.max(Delivery.id))).scalar() or 0
            report: RunReport = fill_outbox(
                conn,  # type: ignore[arg-type]  # sessions join the outer transaction
                at=at,
                config=config,
                models=services.health_models,
                recompute=False,
            )
            rows = conn.execute(
                select(
                    Delivery.kind,
                    Delivery.subject,
                    Delivery.platform,
                    Delivery.target,
                    Delivery.period,
                    Delivery.text,
                )
                .where(Delivery.id > before)
                .order_by(Delivery.id)
            ).all()
        finally:
            transaction.rollback()
    queued = ", ".join(f"{k} {v}" for k, v in sorted(report.enqueued.items())) or "nothing"
    lines = [
        f"dry run at {at.isoformat()}: would queue {len(rows)} "
        f"{'delivery' if len(rows) == 1 else 'deliveries'} ({queued}); "
        f"alerts that would fire {report.alerts_fired}. Nothing was written or sent "
        "(health not recomputed)."
    ]
    for kind, subject, platform, target, period, text in rows:
        lines.append(f"  {kind:<17} {subject:<18} {platform}:{target:<16} {period:<11} {text[:80]}")
    return "\n".join(lines)


def outbox_listing(engine: Engine, status: str | None = None, limit: int = 50) -> str:
    """`csm-bot outbox [--status pending|failed]`: the newest deliveries, one line each."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    with session_scope(engine) as session:
        rows = list_deliveries(session, status=status, limit=limit)
        counts = counts_by_status(session)
    header = "outbox: " + (
        ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES) if counts else "empty"
    )
    lines = [header]
    for d in rows:
        when = as_utc(d.sent_at or d.next_attempt_at).strftime("%Y-%m-%d %H:%M:%S")
        line = (
            f"#{d.id:<6} {d.status:<8} {d.kind:<17} {d.subject:<16} {d.platform}:{d.target:<14} "
            f"{d.period:<10} {when}  attempts {d.attempts}"
        )
        if d.attempt_state == ATTEMPT_UNKNOWN:
            line += "  (answer lost: looked up before any re-send)"
        if d.error:
            line += f"  — {d.error}"
        lines.append(line)
    if not rows:
        lines.append("(no deliveries" + (f" with status {status})" if status else ")"))
    return "\n".join(lines)


def retry_command(
    engine: Engine,
    config: SchedulerConfig,
    *,
    kind: str | None = None,
    since: str | None = None,
    now: datetime | None = None,
) -> str:
    """`csm-bot outbox retry [--kind K] [--since ISO]`: failed rows back in the queue."""
    since_at = parse_instant(since) if since else None
    with session_scope(engine) as session:
        count = requeue_failed(
            session, kind=kind, since=since_at, now=now, deadlines=config.deadlines
        )
    what = f" {kind}" if kind else ""
    when = f" failed since {since_at:%Y-%m-%d %H:%M} UTC" if since_at else ""
    if not count:
        return f"No failed{what} deliveries{when} to retry."
    noun = "delivery" if count == 1 else "deliveries"
    return f"{count} failed{what} {noun}{when} queued again; the dispatcher sends them now."
