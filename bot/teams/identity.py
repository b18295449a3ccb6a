"""Who is talking in Teams: a CSM by stored id or by roster email (cached), and whether they are a guest."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from handlers.context import Actor
from storage.models import CSM

logger = logging.getLogger(__name__)

GUEST_ROLES = ("guest", "anonymous")


@dataclass(frozen=True)
class RosterEntry:
    """What the Teams roster says about a member."""

    user_id: str
    name: str | None
    email: str | None
    user_role: str | None
    tenant_id: str | None
    aad_object_id: str | None

    @property
    def guest(self) -> bool:
        return (self.user_role or "").lower() in GUEST_ROLES


class RosterCache:
    """Roster lookups (one Bot Connector call each) cached per tenant and user.

    Misses are cached for a shorter time, so a CSM added to the roster later is found soon.
    """

    def __init__(
        self,
        ttl: float = 3600.0,
        miss_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.miss_ttl = miss_ttl
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[float, RosterEntry | None]] = {}
        self._lock = threading.Lock()
        self.lookups = 0

    async def member(
        self, turn_context: TurnContext, user_id: str, tenant_id: str | None
    ) -> RosterEntry | None:
        key = (tenant_id or "", user_id)
        now = self.clock()
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        entry = await self._fetch(turn_context, user_id)
        with self._lock:
            self._entries[key] = (now + (self.ttl if entry else self.miss_ttl), entry)
        return entry

    async def _fetch(self, turn_context: TurnContext, user_id: str) -> RosterEntry | None:
        self.lookups += 1
        try:
            member = await TeamsInfo.get_member(turn_context, user_id)
        except Exception as exc:
            # Roster unavailable: the user stays unknown (read-only), never fails the turn.
            logger.warning("Teams roster lookup for %s failed: %s", user_id, exc)
            return None
        if member is None:
            return None
        return RosterEntry(
            user_id=user_id,
            name=member.name,
            email=member.email or member.user_principal_name,
            user_role=member.user_role,
            tenant_id=member.tenant_id,
            aad_object_id=member.aad_object_id,
        )


def foreign_tenant(activity_tenant: str | None, configured_tenant: str | None) -> bool:
    """A message from another organisation's tenant (federated chat, shared channel guest)."""
    if not configured_tenant or not activity_tenant:
        return False
    return activity_tenant.lower() != configured_tenant.lower()


def csm_by_teams_ids(
    session: Session, user_id: str | None, aad_object_id: str | None
) -> CSM | None:
    """The CSM we already matched to this Teams user, by Teams id or Entra (AAD) object id."""
    clauses = []
    if user_id:
        clauses.append(CSM.teams_user_id == user_id)
    if aad_object_id:
        clauses.append(CSM.teams_aad_object_id == aad_object_id)
    if not clauses:
        return None
    return session.exec(select(CSM).where(or_(*clauses))).first()


def actor_for_teams_user(
    session: Session,
    *,
    user_id: str,
    name: str | None,
    aad_object_id: str | None,
    roster: RosterEntry | None,
) -> Actor:
    """Match by stored ids first, else by roster email; remember both ids after an email match."""
    from handlers.identity import actor_for

    known = csm_by_teams_ids(session, user_id, aad_object_id)
    email = known.email if known is not None else (roster.email if roster else None)
    actor = actor_for(session, platform="teams", user_id=user_id, email=email, name=name)
    if actor.csm_id is not None and aad_object_id:
        csm = session.get(CSM, actor.csm_id)
        if csm is not None and not csm.teams_aad_object_id:
            csm.teams_aad_object_id = aad_object_id
            session.add(csm)
            session.flush()
    return actor


def teams_ids_of(session: Session, csm_ids: list[int]) -> list[str]:
    """The Teams user ids (MRIs) of these CSMs, in the order given; people never seen on Teams are left out."""
    if not csm_ids:
        return []
    rows = session.exec(
        select(CSM.id, CSM.teams_user_id).where(
            col(CSM.id).in_(csm_ids), col(CSM.teams_user_id).is_not(None)
        )
    ).all()
    found = {csm_id: teams_id for csm_id, teams_id in rows if teams_id}
    return [found[i] for i in csm_ids if i in found]


def link_roster(session: Session, *, members: list[Any], tenant_id: str | None) -> int:
    """Give CSMs found in a team's roster (by email) their Teams ids; returns how many were linked.

    Guests and members of other tenants are never linked, and an id already stored is kept.
    """
    linked = 0
    for member in members:
        email = (
            getattr(member, "email", None) or getattr(member, "user_principal_name", None) or ""
        ).strip()
        role = (getattr(member, "user_role", None) or "").lower()
        member_tenant = getattr(member, "tenant_id", None)
        if not email or not member.id or role in GUEST_ROLES:
            continue
        if tenant_id and member_tenant and member_tenant.lower() != tenant_id.lower():
            continue
        csm = session.exec(select(CSM).where(func.lower(CSM.email) == email.lower())).first()
        if csm is None or csm.teams_user_id:
            continue
        csm.teams_user_id = member.id
        csm.teams_aad_object_id = csm.teams_aad_object_id or getattr(member, "aad_object_id", None)
        session.add(csm)
        linked += 1
    session.flush()
    return linked
