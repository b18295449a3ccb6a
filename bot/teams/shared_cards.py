"""Cards a whole conversation shares (escalations, risk alerts): one card for everyone, kept up to
date with update_activity, and per-person views (Universal Actions ``refresh``) for those who act."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from botbuilder.schema import ConversationReference
from msrest.exceptions import ClientRequestError, HttpOperationError
from sqlmodel import Session

from bot.teams.cards import Refresh, message_for
from bot.teams.identity import teams_ids_of
from bot.teams.references import (
    THREAD_MARKER,
    channel_root,
    find_conversation,
    is_channel,
    reference_for,
    thread_of,
)
from handlers.reply import Reply
from storage.models import Account

if TYPE_CHECKING:
    from bot.container import Container
    from bot.teams.outbound import Outbound

logger = logging.getLogger(__name__)

T = TypeVar("T")

ESCALATION_VIEW_VERB = "escalation.view"
ALERT_VIEW_VERB = "alert.view"
SHARED_TEMPLATES = frozenset({"escalation", "risk_alert"})
# Failures of one edit or thread reply: logged, never raised at the person who clicked.
SEND_ERRORS = (HttpOperationError, ClientRequestError)


@dataclass(frozen=True)
class Clicked:
    """The message a card action came from: its conversation and its own activity id."""

    conversation_id: str | None = None
    activity_id: str | None = None


async def in_db(container: Container, work: Callable[[Session], T]) -> T:
    """Database work (sync SQLModel) in a worker thread, in one unit of work."""

    def run() -> T:
        with container.session() as session:
            return work(session)

    return await asyncio.to_thread(run)


def _shared(reply: Reply) -> tuple[str, dict[str, Any], int | None] | None:
    """(refresh verb, its data, the account) of a card with per-person views; None for the rest."""
    context = reply.context
    if reply.template == "escalation":
        escalation = context["escalation"]
        account = escalation.get("account") or {}
        return (
            ESCALATION_VIEW_VERB,
            {"escalation_id": escalation["id"]},
            account.get("id"),
        )
    if reply.template == "risk_alert":
        return ALERT_VIEW_VERB, {"alert_id": context["alert"]["id"]}, context["account"].get("id")
    return None


def is_shared(reply: Reply) -> bool:
    """A card with per-person views (so worth a database look-up for its refresh audience)."""
    return reply.template in SHARED_TEMPLATES


def refresh_for(session: Session, reply: Reply) -> Refresh | None:
    """Per-person views for the people who may act on the card's account (owner, manager, admins)."""
    from handlers.permissions import deciders

    shared = _shared(reply)
    if shared is None:
        return None
    verb, data, account_id = shared
    account = session.get(Account, account_id) if account_id else None
    people = deciders(session, account) if account is not None else []
    return Refresh(verb=verb, data=data, user_ids=tuple(teams_ids_of(session, people)))


def base_view(reply: Reply) -> Reply:
    """The card everybody in the conversation sees: nobody's personal view."""
    if "viewer" not in reply.context:
        return reply
    return replace(reply, context={**reply.context, "viewer": None})


def reference_to(session: Session, conversation_id: str) -> ConversationReference | None:
    """How to reach a conversation (or a thread of a channel) the bot has been in."""
    row = find_conversation(session, conversation_id)
    if row is None or not row.active:
        return None
    return reference_for(row, conversation_id)


def message_reference(
    session: Session, target: str, activity_id: str
) -> ConversationReference | None:
    """How to reach the message a notifier posted to ``target`` (a channel post is its own thread)."""
    row = find_conversation(session, target)
    if row is None or not row.active:
        return None
    if is_channel(row) and THREAD_MARKER not in target:
        return reference_for(row, thread_of(row.conversation_id, activity_id))
    return reference_for(row, target)


async def update_for_everyone(
    container: Container,
    outbound: Outbound,
    reply: Reply,
    copies: list[tuple[ConversationReference, str]],
) -> int:
    """Edit every posted copy of a shared card to the current state; returns how many were edited."""
    base = base_view(reply)
    refresh = await in_db(container, lambda s: refresh_for(s, base))
    edited = 0
    for reference, activity_id in copies:
        try:
            await outbound.update(reference, activity_id, message_for(base, refresh=refresh))
            edited += 1
        except SEND_ERRORS as exc:
            logger.warning(
                "could not update card %s in %s: %s",
                activity_id,
                reference.conversation.id if reference.conversation else "?",
                exc,
            )
    return edited


async def update_alert_cards(
    container: Container, outbound: Outbound, reply: Reply, clicked: Clicked
) -> int:
    """After an alert was acknowledged or snoozed: every copy the scheduler posted shows it."""
    from handlers.alerts import posted_cards

    alert_id = reply.context["alert"]["id"]

    def copies(session: Session) -> list[tuple[ConversationReference, str]]:
        found: list[tuple[ConversationReference, str]] = []
        for delivery in posted_cards(
            session, kind="risk_alert", subject=f"alert:{alert_id}", platform="teams"
        ):
            reference = message_reference(session, delivery.target, delivery.message_id or "")
            if reference is not None:
                found.append((reference, delivery.message_id or ""))
        seen = {(channel_root(r.conversation.id), a) for r, a in found}
        # The card clicked may be one the outbox does not know (posted before it kept ids).
        if clicked.conversation_id and clicked.activity_id:
            key = (channel_root(clicked.conversation_id), clicked.activity_id)
            reference = reference_to(session, clicked.conversation_id)
            if key not in seen and reference is not None:
                found.append((reference, clicked.activity_id))
        return found

    return await update_for_everyone(container, outbound, reply, await in_db(container, copies))
