"""Storing and finding Teams conversation references (kept in the database, never only in memory)."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ConversationReference
from sqlmodel import Session, select

from storage.models import utcnow
from storage.platform_models import TeamsConversation

logger = logging.getLogger(__name__)

THREAD_MARKER = ";messageid="
CSM_TARGET_PREFIX = "csm:"


def channel_root(conversation_id: str) -> str:
    """The channel a thread belongs to: Teams writes threads as ``<channel>;messageid=<root>``."""
    return conversation_id.split(THREAD_MARKER, 1)[0]


def _part(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def tenant_of(activity: Activity) -> str | None:
    """The tenant an activity came from (channelData.tenant.id, else conversation.tenantId)."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = _text(_part(data, "tenant").get("id"))
    if not tenant and activity.conversation is not None:
        tenant = _text(activity.conversation.tenant_id)
    return tenant


def team_of(activity: Activity) -> str | None:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    return _text(_part(data, "team").get("id")) or _text(data.get("teamsTeamId"))


def shared_channel(activity: Activity) -> bool:
    """A Teams shared channel (channelData.channel.membershipType "shared"): other organisations'
    people may be in it."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    kind = _part(data, "channel").get("membershipType")
    return isinstance(kind, str) and kind.lower() == "shared"


def save_reference(
    session: Session, *, activity: Activity, csm_id: int | None = None, active: bool = True
) -> TeamsConversation | None:
    """Insert or refresh the stored reference of the conversation an activity came from."""
    if activity.conversation is None or not activity.conversation.id or not activity.service_url:
        return None
    reference = TurnContext.get_conversation_reference(activity)
    # Proactive sends start new messages: they must not reply to whatever activity we saw last.
    reference.activity_id = None
    conversation_type = activity.conversation.conversation_type or "personal"
    key = activity.conversation.id
    if conversation_type == "channel":
        key = channel_root(key)
        reference.conversation.id = key
    user = activity.from_property
    row = session.exec(
        select(TeamsConversation).where(TeamsConversation.conversation_id == key)
    ).first()
    if row is None:
        row = TeamsConversation(conversation_id=key, service_url=activity.service_url)
    row.conversation_type = conversation_type
    row.tenant_id = tenant_of(activity)
    # The service URL can move (Microsoft rebalances regions): always keep the newest one.
    row.service_url = activity.service_url
    row.bot_id = activity.recipient.id if activity.recipient else None
    row.team_id = team_of(activity)
    if conversation_type == "personal" and user is not None and user.id:
        row.user_id = user.id
        row.aad_object_id = user.aad_object_id
        if csm_id is not None:
            row.csm_id = csm_id
    row.reference = reference.serialize()
    row.active = active
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def mark_inactive(session: Session, *, conversation_id: str) -> None:
    """The bot was removed or uninstalled there: keep the row (for the record) but stop sending."""
    row = session.exec(
        select(TeamsConversation).where(
            TeamsConversation.conversation_id == channel_root(conversation_id)
        )
    ).first()
    if row is not None:
        row.active = False
        row.updated_at = utcnow()
        session.add(row)
        session.flush()


def find_conversation(session: Session, target: str) -> TeamsConversation | None:
    """The stored conversation for a notifier target: a conversation id or ``csm:<id>``."""
    if target.startswith(CSM_TARGET_PREFIX):
        try:
            csm_id = int(target[len(CSM_TARGET_PREFIX) :])
        except ValueError:
            return None
        return session.exec(
            select(TeamsConversation)
            .where(
                TeamsConversation.csm_id == csm_id,
                TeamsConversation.conversation_type == "personal",
            )
            .order_by(TeamsConversation.active.desc(), TeamsConversation.updated_at.desc())  # type: ignore[attr-defined]
        ).first()
    return session.exec(
        select(TeamsConversation).where(TeamsConversation.conversation_id == channel_root(target))
    ).first()


def reference_for(row: TeamsConversation, target: str) -> ConversationReference:
    """The ConversationReference to continue; a thread target keeps its ``;messageid=`` suffix."""
    reference = ConversationReference().deserialize(dict(row.reference))
    if THREAD_MARKER in target and reference.conversation is not None:
        reference.conversation.id = target
    return reference


def thread_of(conversation_id: str, activity_id: str) -> str:
    """The thread a new channel post starts (``<channel>;messageid=<post>``)."""
    return f"{channel_root(conversation_id)}{THREAD_MARKER}{activity_id}"


def is_channel(row: TeamsConversation) -> bool:
    return row.conversation_type == "channel"


def tenant_anchor(session: Session, tenant_id: str | None) -> TeamsConversation | None:
    """A conversation the bot is active in, in this tenant (newest first): where to get the
    service URL and the bot's id for opening a chat with someone it has not talked to yet."""
    query = select(TeamsConversation).where(TeamsConversation.active == True)  # noqa: E712
    if tenant_id:
        query = query.where(TeamsConversation.tenant_id == tenant_id)
    return session.exec(query.order_by(TeamsConversation.updated_at.desc())).first()  # type: ignore[attr-defined]


def save_created_chat(
    session: Session,
    *,
    reference: ConversationReference,
    csm_id: int,
    tenant_id: str,
) -> TeamsConversation:
    """Store the 1:1 chat the bot just opened with a CSM, so later sends continue it."""
    key = reference.conversation.id
    row = session.exec(
        select(TeamsConversation).where(TeamsConversation.conversation_id == key)
    ).first()
    if row is None:
        row = TeamsConversation(conversation_id=key, service_url=reference.service_url)
    row.conversation_type = "personal"
    row.tenant_id = tenant_id
    row.service_url = reference.service_url
    row.bot_id = reference.bot.id if reference.bot else None
    row.user_id = reference.user.id if reference.user else None
    row.aad_object_id = reference.user.aad_object_id if reference.user else None
    row.csm_id = csm_id
    row.reference = reference.serialize()
    row.active = True
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def save_channels(
    session: Session, *, activity: Activity, channels: list[tuple[str, str | None]]
) -> int:
    """Store a reference for every channel of the team an activity came from; returns how many
    were new. The bot can post in any channel of a team it is in, not only where it was added."""
    team = session.exec(
        select(TeamsConversation).where(
            TeamsConversation.conversation_id == channel_root(activity.conversation.id)
        )
    ).first()
    if team is None:
        return 0
    new = 0
    for channel_id, name in channels:
        if not channel_id:
            continue
        row = session.exec(
            select(TeamsConversation).where(TeamsConversation.conversation_id == channel_id)
        ).first()
        if row is None:
            row = TeamsConversation(conversation_id=channel_id, service_url=team.service_url)
            new += 1
        reference = ConversationReference().deserialize(dict(team.reference))
        reference.conversation.id = channel_id
        reference.conversation.name = name
        row.conversation_type = "channel"
        row.tenant_id = team.tenant_id
        row.service_url = team.service_url
        row.bot_id = team.bot_id
        row.team_id = team.team_id
        row.reference = reference.serialize()
        row.active = True
        row.updated_at = utcnow()
        session.add(row)
    session.flush()
    return new
