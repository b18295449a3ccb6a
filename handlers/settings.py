"""A CSM's own settings: when their daily digest arrives and in which timezone."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session

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
    return {
        "csm": {
            "name": csm.name,
            "email": csm.email,
            "digest_time": csm.digest_time,
            "timezone": csm.timezone,
            "digest_weekends": csm.digest_weekends,
        }
    }


def user_settings(session: Session, *, ctx: ChatContext) -> Reply:
    csm = _csm(session, ctx)
    weekends = "including weekends" if csm.digest_weekends else "on weekdays"
    return Reply(
        template="settings",
        context=_context(csm),
        text=f"Your daily digest arrives at {csm.digest_time} {csm.timezone}, {weekends}.",
    )


def update_settings(
    session: Session,
    *,
    ctx: ChatContext,
    digest_time: str | None = None,
    timezone: str | None = None,
    digest_weekends: bool | None = None,
) -> Reply:
    csm = _csm(session, ctx)
    errors: dict[str, str] = {}
    if digest_time is not None:
        match = _TIME.match(digest_time.strip())
        if not match:
            errors["digest_time"] = f"“{digest_time}” is not a time; use HH:MM, e.g. 08:30"
        else:
            digest_time = f"{int(match.group(1)):02d}:{match.group(2)}"
    if timezone is not None:
        try:
            ZoneInfo(timezone.strip())
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = f"“{timezone}” is not a timezone; use a name like Europe/Berlin"
    if errors:
        raise ValidationFailed(errors)
    before = _context(csm)["csm"]
    if digest_time is not None:
        csm.digest_time = digest_time
    if timezone is not None:
        csm.timezone = timezone.strip()
    if digest_weekends is not None:
        csm.digest_weekends = digest_weekends
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
