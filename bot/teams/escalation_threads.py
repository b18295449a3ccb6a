"""Escalation threads on Teams: the card is a thread's first message, edited in place for everyone,
and every update (acknowledged, assigned, note, resolved) is a reply in that thread."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botbuilder.schema import ConversationReference
from sqlmodel import Session

from bot.teams.cards import Refresh, message_for
from bot.teams.identity import foreign_tenant
from bot.teams.references import channel_root, find_conversation, thread_of
from bot.teams.shared_cards import (
    SEND_ERRORS,
    Clicked,
    base_view,
    in_db,
    reference_to,
    refresh_for,
    update_for_everyone,
)
from handlers.errors import HandlerError, PermissionDenied
from handlers.escalations import attach_teams_card, update_reply
from handlers.reply import Reply

if TYPE_CHECKING:
    from bot.container import Container
    from bot.teams.outbound import Outbound

logger = logging.getLogger(__name__)

HIDDEN_TARGET = (
    "I can't post in the escalation channel (CSM_TEAMS_ESCALATION_CHANNEL): add me to its team "
    "first. Nothing was opened."
)
SHARED_TARGET = (
    "The escalation channel belongs to another organisation's tenant, so escalations can't be "
    "posted there. Ask an admin to point CSM_TEAMS_ESCALATION_CHANNEL at an internal channel. "
    "Nothing was opened."
)
NOWHERE = "I don't know where to post this escalation. Nothing was opened."


@dataclass(frozen=True)
class Target:
    """Where a new escalation's card goes: the escalation channel (a new post, its own thread)
    or the conversation it was opened in (the card is the answer there)."""

    conversation_id: str
    elsewhere: bool


@dataclass(frozen=True)
class Posted:
    """Where an escalation's card went, or why it could not go there."""

    conversation_id: str | None
    activity_id: str | None = None
    error: str | None = None


def escalation_target(
    session: Session, container: Container, origin: str | None
) -> Target | HandlerError:
    """CSM_TEAMS_ESCALATION_CHANNEL when set (it must be a channel the bot is in, in our tenant),
    else the conversation the escalation was opened in."""
    settings = container.settings
    configured = (settings.teams_escalation_channel or "").strip()
    if configured:
        row = find_conversation(session, configured)
        if row is None or not row.active or row.conversation_type != "channel":
            return PermissionDenied(HIDDEN_TARGET)
        if foreign_tenant(row.tenant_id, settings.microsoft_app_tenant_id):
            return PermissionDenied(SHARED_TARGET)
        return Target(conversation_id=channel_root(configured), elsewhere=True)
    if not origin:
        return PermissionDenied(NOWHERE)
    return Target(conversation_id=origin, elsewhere=False)


def confirmation(reply: Reply, posted: Posted) -> Reply:
    """What the opener is told where they asked: the escalation is in its channel's thread (or why not)."""
    escalation = reply.context["escalation"]
    if posted.activity_id:
        text = f"Escalation #{escalation['id']} opened; updates land in its thread in the escalation channel."
    else:
        text = f"Escalation #{escalation['id']} opened, but not posted: {posted.error}"
    return Reply(
        template="escalation_opened",
        context={
            **reply.context,
            "posted": bool(posted.activity_id),
            "error": posted.error,
        },
        text=text,
    )


class EscalationThreads:
    """Posts escalation cards and keeps them, and their threads, up to date."""

    def __init__(self, container: Container, outbound: Outbound) -> None:
        self.container = container
        self.outbound = outbound

    async def attach(self, escalation_id: int, conversation_id: str, activity_id: str) -> None:
        await in_db(
            self.container,
            lambda s: attach_teams_card(
                s,
                escalation_id=escalation_id,
                conversation_id=conversation_id,
                activity_id=activity_id,
            ),
        )

    async def post_card(self, reply: Reply, target: Target) -> Posted:
        """Post a just-opened escalation's card as a new channel post (its thread) and remember it."""
        base = base_view(reply)

        def lookup(session: Session) -> tuple[ConversationReference | None, Refresh | None]:
            return reference_to(session, target.conversation_id), refresh_for(session, base)

        reference, refresh = await in_db(self.container, lookup)
        if reference is None:
            return Posted(conversation_id=None, error="the bot is not in that conversation")
        try:
            activity_id = await self.outbound.send(reference, message_for(base, refresh=refresh))
        except SEND_ERRORS as exc:
            logger.warning("posting escalation to %s failed: %s", target.conversation_id, exc)
            return Posted(conversation_id=target.conversation_id, error=_reason(exc))
        conversation = (
            thread_of(target.conversation_id, activity_id)
            if target.elsewhere
            else target.conversation_id
        )
        await self.attach(int(reply.context["escalation"]["id"]), conversation, activity_id)
        return Posted(conversation_id=conversation, activity_id=activity_id)

    async def become_card(self, reply: Reply, clicked: Clicked) -> bool:
        """The message clicked (the open form) turns into the escalation's card, for everyone."""
        if not (clicked.conversation_id and clicked.activity_id):
            return False
        await self.attach(
            int(reply.context["escalation"]["id"]), clicked.conversation_id, clicked.activity_id
        )
        return await self._edit_card(reply, clicked.conversation_id, clicked.activity_id)

    async def _edit_card(self, reply: Reply, conversation_id: str, activity_id: str) -> bool:
        reference = await in_db(self.container, lambda s: reference_to(s, conversation_id))
        if reference is None:
            return False
        edited = await update_for_everyone(
            self.container, self.outbound, reply, [(reference, activity_id)]
        )
        return edited == 1

    async def publish_update(self, reply: Reply, clicked: Clicked) -> None:
        """After a change: the card shows it to everyone, and a reply in its thread says what changed."""
        escalation = reply.context["escalation"]
        conversation = escalation.get("teams_conversation_id")
        activity_id = escalation.get("teams_activity_id")
        if not (conversation and activity_id):
            # A card from before threads were kept: the message clicked is the card from now on.
            if not (clicked.conversation_id and clicked.activity_id):
                return
            conversation, activity_id = clicked.conversation_id, clicked.activity_id
            await self.attach(int(escalation["id"]), conversation, activity_id)
        await self._edit_card(reply, conversation, activity_id)
        if not reply.context.get("update") or reply.context.get("existing"):
            return  # nothing changed, or the same note again: its reply went out the first time
        reference = await in_db(self.container, lambda s: reference_to(s, conversation))
        if reference is None:
            return
        try:
            await self.outbound.send(reference, message_for(update_reply(reply)))
        except SEND_ERRORS as exc:
            logger.warning("thread reply for escalation %s failed: %s", escalation["id"], exc)


def _reason(exc: Exception) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"http_{status}" if status else "connection_error"
