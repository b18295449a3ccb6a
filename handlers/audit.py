"""Writes the audit trail: every change made through chat, the API or an import."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handlers.context import ChatContext
from storage.models import AuditLog


def record(
    session: Session,
    *,
    ctx: ChatContext,
    action: str,
    entity: str,
    entity_id: int | str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    entry = AuditLog(
        actor_id=ctx.actor.csm_id,
        actor_label=ctx.actor.email or ctx.actor.platform_user_id or ctx.actor.name,
        source=ctx.platform,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before=before,
        after=after,
    )
    session.add(entry)
    return entry
