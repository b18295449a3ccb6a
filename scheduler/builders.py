"""Deferred content: heavy replies (QBR prep, digests) are queued as a recipe and composed when sent."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy.engine import Engine

from domain.health_model import HealthModels
from handlers.access import system_actor
from handlers.context import ChatContext
from handlers.errors import NotFound
from handlers.identity import actor_of
from handlers.reply import Reply
from storage.db import session_scope
from storage.models import CSM

# Context key of a deferred reply: {"_build": {"kind": ..., ids..., "today": ISO date}}.
BUILD_KEY = "_build"


def deferred(template: str, spec: dict[str, Any], text: str) -> Reply:
    """A placeholder Reply for the outbox; ``text`` says what it will be (outbox listings)."""
    return Reply(template=template, context={BUILD_KEY: spec}, text=text, visibility="channel")


def is_deferred(context: dict[str, Any]) -> bool:
    return BUILD_KEY in context


def scheduler_ctx(csm: CSM | None, today: date) -> ChatContext:
    """The scheduler asks as the person it writes to, so their access rules and scope apply;
    posting for nobody in particular, it reads as the system (handlers.access)."""
    actor = actor_of(csm) if csm else system_actor()
    return ChatContext(platform="scheduler", actor=actor, today=today)


def build_reply(engine: Engine, models: HealthModels, spec: dict[str, Any]) -> Reply:
    """Compose a deferred reply from its recipe, with the data as it is at send time.

    Raises NotFound when what it is about is gone (a deleted account or CSM): permanent.
    """
    from handlers.digests import (
        DEFAULT_QBR_OFFSETS,
        DEFAULT_RENEWAL_OFFSETS,
        daily_digest,
        manager_digest,
    )
    from handlers.qbr import qbr_prep

    kind = spec["kind"]
    today = date.fromisoformat(spec["today"])
    with session_scope(engine) as session:
        # QBR prep for an account nobody owns is written for the admins (csm_id None).
        csm = session.get(CSM, spec["csm_id"]) if spec.get("csm_id") is not None else None
        if csm is None and (spec.get("csm_id") is not None or kind != "qbr_prep"):
            raise NotFound(f"CSM {spec.get('csm_id')} no longer exists")
        ctx = scheduler_ctx(csm, today)
        if kind == "qbr_prep":
            reply = qbr_prep(session, ctx=ctx, models=models, account_id=spec["account_id"])
            if reply.template != "qbr_prep":
                raise NotFound(f"account {spec['account_id']} no longer exists")
            if spec.get("attach") == "qbr_pack":
                from handlers.qbr_pack import with_pack

                # The draft deck, built by the notifier when it sends (a reference, not bytes).
                reply = with_pack(reply, variant="executive", today=today)
        elif kind == "daily_digest" and csm is not None:
            since = spec.get("since")
            reply = daily_digest(
                session,
                ctx=ctx,
                csm_id=csm.id,
                since=date.fromisoformat(since) if since else None,
                alert_ids=[int(i) for i in spec.get("alerts") or []],
                renewal_offsets=spec.get("renewal_offsets") or DEFAULT_RENEWAL_OFFSETS,
                qbr_offsets=spec.get("qbr_offsets") or DEFAULT_QBR_OFFSETS,
                qbr_packs=int(spec.get("qbr_packs") or 0),
            )
        elif kind == "manager_digest" and csm is not None:
            from handlers.charts import health_map

            reply = manager_digest(session, ctx=ctx, manager_id=csm.id)
            # The team's health map follows the weekly digest as a chart.
            mapped = health_map(session, ctx=ctx, models=models, owner="team")
            reply = replace(reply, attachments=reply.attachments + mapped.attachments)
        else:
            raise NotFound(f"no recipe for {kind!r}")
    return Reply(
        template=reply.template,
        context=reply.context,
        text=reply.text,
        visibility="channel",
        attachments=reply.attachments,
    )
