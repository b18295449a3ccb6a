"""Who is talking in Teams: a CSM by stored id or by roster email (cached), and whether they are a guest."""

from __future__ import annotations

import asyncio
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

from handlers import access
from handlers.context import Actor
from storage.models import CSM

logger = logging.getLogger(__name__)

GUEST_ROLES = ("guest", "anonymous")
# Seconds a roster call to the Bot Connector may take before the user is treated as unknown.
ROSTER_TIMEOUT = 5.0


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
            member = await asyncio.wait_for(
                TeamsInfo.get_member(turn_context, user_id), ROSTER_TIMEOUT
            )
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
    tenant_id: str | None = None,
    link: bool = True,
) -> Actor:
    """Who a Teams user is (handlers.access decides what they may see).

    A guest, or a member of another tenant, is barred whatever email the roster shows. A person
    is matched by the ids stored when they were linked; else by their roster email, and then
    linked (both ids stored) once, from a verified activity (``link``). Someone whose email
    belongs to a person already linked to another Teams identity is not matched: an email alone
    never moves a link.
    """
    from handlers.identity import actor_of, unknown_actor

    if roster is not None:
        if roster.guest:
            return unknown_actor(user_id, name, barred=access.GUEST)
        if tenant_id and roster.tenant_id and roster.tenant_id.lower() != tenant_id.lower():
            return unknown_actor(user_id, name, barred=access.OTHER_TENANT)
    known = csm_by_teams_ids(session, user_id, aad_object_id)
    if known is not None:
        if aad_object_id and known.teams_aad_object_id not in (None, aad_object_id):
            logger.warning("Teams user %s carries another person's Teams id: not matched", user_id)
            return unknown_actor(user_id, name)
        if link:
            _link(session, known, user_id, aad_object_id)
        return actor_of(known, user_id)
    email = roster.email if roster else None
    if not email:
        return unknown_actor(user_id, name)
    csm = session.exec(select(CSM).where(func.lower(CSM.email) == email.strip().lower())).first()
    if csm is None:
        return unknown_actor(user_id, name)
    if csm.teams_aad_object_id or csm.teams_user_id:
        # Linked to another Teams identity already (the ids above did not match).
        logger.warning(
            "Teams user %s has the email of person %s, who is linked to another Teams user: "
            "not matched",
            user_id,
            csm.id,
        )
        return unknown_actor(user_id, name)
    if link:
        _link(session, csm, user_id, aad_object_id)
    return actor_of(csm, user_id)


def _link(session: Session, csm: CSM, user_id: str, aad_object_id: str | None) -> None:
    """Store the Teams ids a verified activity showed for this person (only those still empty)."""
    changed = False
    if not csm.teams_user_id:
        csm.teams_user_id = user_id
        changed = True
    if aad_object_id and not csm.teams_aad_object_id:
        csm.teams_aad_object_id = aad_object_id
        changed = True
    if changed:
        session.add(csm)
        session.flush()


@dataclass(frozen=True)
class Sharing:
    """Whether a conversation includes people of another organisation (guests, other tenants)."""

    external: bool
    reason: str = ""


class ConversationCache:
    """Per-conversation answers to "are outsiders in here?" from the roster, cached.

    A failed lookup counts as shared (nothing shown) and is asked again sooner.
    """

    def __init__(
        self,
        ttl: float = 900.0,
        failed_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = 500,
        max_pages: int = 40,
    ) -> None:
        self.ttl = ttl
        self.failed_ttl = failed_ttl
        self.clock = clock
        self.page_size = page_size
        self.max_pages = max_pages
        self._entries: dict[str, tuple[float, Sharing]] = {}
        self._lock = threading.Lock()

    async def sharing(self, turn_context: TurnContext, key: str, tenant_id: str | None) -> Sharing:
        now = self.clock()
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        found, ttl = await self._scan(turn_context, tenant_id)
        with self._lock:
            self._entries[key] = (now + ttl, found)
        return found

    async def _scan(
        self, turn_context: TurnContext, tenant_id: str | None
    ) -> tuple[Sharing, float]:
        token: str | None = None
        try:
            for _ in range(self.max_pages):
                page = await asyncio.wait_for(
                    TeamsInfo.get_paged_members(turn_context, token, self.page_size),
                    ROSTER_TIMEOUT,
                )
                for member in page.members or []:
                    role = (member.user_role or "").lower()
                    tenant = member.tenant_id
                    if role in GUEST_ROLES:
                        return Sharing(True, "guest members"), self.ttl
                    if tenant_id and tenant and tenant.lower() != tenant_id.lower():
                        return Sharing(True, "members of another organisation"), self.ttl
                token = page.continuation_token
                if not token:
                    return Sharing(False), self.ttl
        except Exception as exc:
            # Any failure to read the roster: we cannot tell, so nothing is shown here for now.
            logger.warning("Teams conversation roster lookup failed: %s", exc)
            return Sharing(True, "roster unavailable"), self.failed_ttl
        logger.warning("Teams conversation roster longer than %d pages", self.max_pages)
        return Sharing(True, "roster too long to check"), self.failed_ttl


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
