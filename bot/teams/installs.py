"""When the bot joins a team: remember every channel (so accounts can be mapped to any of them)
and who is in the team (so CSMs who never wrote to the bot can still get a 1:1 message)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo
from msrest.exceptions import ClientRequestError, HttpOperationError
from sqlmodel import Session

from bot.teams.identity import foreign_tenant, link_roster
from bot.teams.references import save_channels, tenant_of

if TYPE_CHECKING:
    from bot.container import Container

logger = logging.getLogger(__name__)

# A roster page as large as Teams serves; a team of thousands is still a handful of calls.
PAGE_SIZE = 500
MAX_PAGES = 50
LOOKUP_ERRORS = (HttpOperationError, ClientRequestError, TypeError)


async def remember_team(
    turn_context: TurnContext, container: Container, *, link: bool = True
) -> None:
    """Store the team's channels and link its members to CSMs by email; failures only log.

    link: False when the activity was not verified (Teams' local development mode): nothing
    unverified links a person to a Teams identity (docs/access.md).
    """
    activity = turn_context.activity
    tenant = tenant_of(activity)
    try:
        channels = await TeamsInfo.get_team_channels(turn_context)
    except LOOKUP_ERRORS as exc:
        logger.warning("could not list the team's channels: %s", exc)
        channels = []
    members: list[Any] = []
    token: str | None = None
    try:
        for _ in range(MAX_PAGES):
            page = await TeamsInfo.get_paged_team_members(turn_context, "", token, PAGE_SIZE)
            members += list(page.members or [])
            token = page.continuation_token
            if not token:
                break
    except LOOKUP_ERRORS as exc:
        logger.warning("could not read the team's roster: %s", exc)

    if not link or foreign_tenant(tenant, container.settings.microsoft_app_tenant_id):
        members = []  # another organisation's team (or an unverified one): nobody is linked

    def store(session: Session) -> None:
        save_channels(session, activity=activity, channels=[(c.id, c.name) for c in channels])
        link_roster(session, members=members, tenant_id=tenant)

    def run() -> None:
        with container.session() as session:
            store(session)

    await asyncio.to_thread(run)
