"""A CSM's own settings: their daily digest time, timezone, working hours and what may interrupt them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session

from domain import notify_policy as policy
from handlers import access
from handlers.audit import record
from handlers.context import ChatContext
from handlers.errors import PermissionDenied, ValidationFailed
from handlers.reply import Reply
from storage.models import CSM

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _csm(session: Session, ctx: ChatContext) -> CSM:
    access.require(session, ctx, access.Action.OWN_SETTINGS)
    csm = session.get(CSM, ctx.actor.csm_id) if ctx.actor.csm_id else None
    if csm is None:
        raise PermissionDenied(
            "I don't know you yet, so you have no settings. Ask an admin to add your email."
        )
    return csm


def _context(csm: CSM) -> dict[str, Any]:
    interrupts = policy.interrupts_of(csm.interrupts)
    return {
        "csm": {
            "name": csm.name,
            "email": csm.email,
            "digest_time": csm.digest_time,
            "timezone": csm.timezone,
            "digest_weekends": csm.digest_weekends,
            "work_start": csm.work_start,
            "work_end": csm.work_end,
            "interrupts": [k for k in policy.CLASS_KEYS if k in interrupts],
        },
        # Every class, in the order the form lists them, with whether it interrupts this person.
        "classes": [
            {"key": c.key, "label": c.label, "on": c.key in interrupts, "default": c.urgent}
            for c in policy.ALERT_CLASSES
        ],
    }


def describe(csm: CSM) -> str:
    """One paragraph saying when and how this person hears from the assistant."""
    weekends = "every day" if csm.digest_weekends else "on weekdays"
    interrupts = policy.interrupts_of(csm.interrupts)
    labels = [c.label.lower() for c in policy.ALERT_CLASSES if c.key in interrupts]
    if labels:
        urgent = (
            f"Urgent alerts ({'; '.join(labels)}) reach you at once within your working hours "
            f"{csm.work_start}–{csm.work_end}, at most one message an hour; "
            "the rest waits for your digest."
        )
    else:
        urgent = "Nothing interrupts you: every alert waits for your digest."
    return f"Your daily digest arrives at {csm.digest_time} {csm.timezone}, {weekends}. {urgent}"


def user_settings(session: Session, *, ctx: ChatContext) -> Reply:
    csm = _csm(session, ctx)
    return Reply(template="settings", context=_context(csm), text=describe(csm))


def _clock(value: str, field: str, errors: dict[str, str]) -> str | None:
    match = _TIME.match(value.strip())
    if not match:
        errors[field] = f"“{value}” is not a time; use HH:MM, e.g. 08:30"
        return None
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def update_settings(
    session: Session,
    *,
    ctx: ChatContext,
    digest_time: str | None = None,
    timezone: str | None = None,
    digest_weekends: bool | None = None,
    work_start: str | None = None,
    work_end: str | None = None,
    interrupts: Sequence[str] | None = None,
) -> Reply:
    """Change one's own settings; anything invalid changes nothing and says which field and why.

    ``interrupts`` lists the alert classes (domain.notify_policy.ALERT_CLASSES) that may
    interrupt; an empty list means none do (everything waits for the digest).
    """
    csm = _csm(session, ctx)
    errors: dict[str, str] = {}
    if digest_time is not None:
        digest_time = _clock(digest_time, "digest_time", errors)
    if work_start is not None:
        work_start = _clock(work_start, "work_start", errors)
    if work_end is not None:
        work_end = _clock(work_end, "work_end", errors)
    start, end = work_start or csm.work_start, work_end or csm.work_end
    if "work_start" not in errors and "work_end" not in errors and start == end:
        errors["work_end"] = "Working hours need an end different from their start"
    if timezone is not None:
        try:
            ZoneInfo(timezone.strip())
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = f"“{timezone}” is not a timezone; use a name like Europe/Berlin"
    chosen: list[str] | None = None
    if interrupts is not None:
        unknown = [k for k in interrupts if k not in policy.CLASS_RANK]
        if unknown:
            errors["interrupts"] = (
                f"Unknown alert kind {', '.join(unknown)}; use {', '.join(policy.CLASS_KEYS)}"
            )
        else:
            chosen = [k for k in policy.CLASS_KEYS if k in set(interrupts)]
    if errors:
        raise ValidationFailed(errors)
    before = _context(csm)["csm"]
    if digest_time is not None:
        csm.digest_time = digest_time
    if timezone is not None:
        csm.timezone = timezone.strip()
    if digest_weekends is not None:
        csm.digest_weekends = digest_weekends
    if work_start is not None:
        csm.work_start = work_start
    if work_end is not None:
        csm.work_end = work_end
    if chosen is not None:
        csm.interrupts = chosen
    session.add(csm)
    after = _context(csm)["csm"]
    if before != after:
        record(
            session,
            ctx=ctx,
            action="settings.update",
            entity="csm",
            entity_id=csm.id or 0,
            before=before,
            after=after,
        )
    session.flush()
    return user_settings(session, ctx=ctx)
