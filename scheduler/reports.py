"""Admin reports about deliveries: one per cause per hour, composed when sent from what failed since the last."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from handlers.delivery_reports import delivery_report_reply
from handlers.errors import NotFound
from handlers.reply import Reply
from scheduler.clock import as_utc
from scheduler.models import Delivery
from storage.db import session_scope

# The recipe (scheduler.builders' deferred replies) of an aggregated failure report.
FAILURES_RECIPE = "delivery_failures"
REPORT_KIND = "delivery_failed"
# A first report looks back this far at most.
LOOKBACK = timedelta(hours=24)
EXAMPLES = 10
OVERLAP = timedelta(minutes=5)


def cause_of(error: str | None) -> str:
    """The cause a failure is grouped by: "channel_not_found", "expired", "http_404"..."""
    text = (error or "unknown").strip()
    return text.split(":", 1)[0].strip() or "unknown"


def failures_report(engine: Engine, *, spec: dict[str, Any], now: datetime) -> Reply:
    """Every delivery on ``spec['platform']`` that failed for ``spec['cause']`` since the last
    report of that cause was composed (at most a day back). Raises NotFound when nothing is left
    to report (they were all re-queued meanwhile)."""
    platform, cause = str(spec["platform"]), str(spec["cause"])
    subject = f"failures:{platform}:{cause}"
    with session_scope(engine) as session:
        last = session.execute(
            select(Delivery.context)
            .where(
                Delivery.kind == REPORT_KIND,
                Delivery.subject == subject,
                Delivery.status == "sent",
            )
            .order_by(Delivery.sent_at.desc())  # type: ignore[union-attr]
            .limit(1)
        ).scalar()
        since = now - LOOKBACK
        covered: set[int] = set()
        window = (last or {}).get("window") if isinstance(last, dict) else None
        if window and window.get("until"):
            # A little overlap (clocks of replicas differ), minus what that report listed.
            until = as_utc(datetime.fromisoformat(window["until"]))
            since = max(since, until - OVERLAP)
            covered = set(window.get("ids") or ())
        rows = session.execute(
            select(
                Delivery.id,
                Delivery.kind,
                Delivery.subject,
                Delivery.target,
                Delivery.error,
                Delivery.text,
                Delivery.updated_at,
            )
            .where(
                Delivery.platform == platform,
                Delivery.status == "failed",
                Delivery.kind != REPORT_KIND,
                Delivery.updated_at > since,  # type: ignore[operator]
                Delivery.updated_at <= now,  # type: ignore[operator]
                Delivery.error.like(f"{cause}%"),  # type: ignore[union-attr]
            )
            .order_by(Delivery.id)
        ).all()
    failures = [r for r in rows if cause_of(r.error) == cause and r.id not in covered]
    if not failures:
        raise NotFound(f"no {cause} failures on {platform} left to report")
    return delivery_report_reply(
        platform=platform,
        cause=cause,
        since=since,
        until=now,
        failures=[
            {
                "id": r.id,
                "kind": r.kind,
                "subject": r.subject,
                "target": r.target,
                "error": r.error or "",
                "text": (r.text or "")[:200],
            }
            for r in failures
        ],
        examples=EXAMPLES,
    )
