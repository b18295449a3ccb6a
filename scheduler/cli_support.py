"""What `csm-bot scheduler run-once` and `csm-bot outbox` print; the CLI only parses arguments."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from scheduler.clock import as_utc
from scheduler.outbox import counts_by_status, list_deliveries
from scheduler.runner import run_once

if TYPE_CHECKING:
    from bot.container import Container

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


def run_once_command(container: Container, at: str | datetime, *, dispatch: bool = True) -> str:
    """`csm-bot scheduler run-once --at ISO-8601`: run every job due then; returns the summary."""
    report = run_once(container, parse_instant(at), dispatch=dispatch)
    return report.summary()


def outbox_listing(container: Container, status: str | None = None, limit: int = 50) -> str:
    """`csm-bot outbox [--status pending|failed]`: the newest deliveries, one line each."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    with container.session() as session:
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
        if d.error:
            line += f"  — {d.error}"
        lines.append(line)
    if not rows:
        lines.append("(no deliveries" + (f" with status {status})" if status else ")"))
    return "\n".join(lines)
