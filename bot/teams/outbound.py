"""Messages the bot starts itself: post to a stored conversation, edit a posted card, open a 1:1 chat."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botbuilder.core import TurnContext
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ConversationReference,
)

if TYPE_CHECKING:
    from botbuilder.integration.aiohttp import CloudAdapter

logger = logging.getLogger(__name__)

TEAMS_CHANNEL = "msteams"


@dataclass(frozen=True)
class NewChat:
    """A 1:1 chat the bot opened, and the id of the first message it posted there."""

    reference: ConversationReference
    activity_id: str


class Outbound:
    """Proactive calls through the adapter, each in its own continuation turn.

    ``retries=False`` turns msrest's own retrying off, for callers (the notifier) that retry
    themselves with Retry-After and jitter; inside a user's turn msrest may retry as it likes.
    """

    def __init__(self, adapter: CloudAdapter, app_id: str | None, *, retries: bool = True) -> None:
        self.adapter = adapter
        self.app_id = app_id or None
        self.retries = retries

    def _quiet(self, turn_context: TurnContext) -> None:
        client = turn_context.turn_state.get(self.adapter.BOT_CONNECTOR_CLIENT_KEY)
        if client is not None and not self.retries:
            client.config.retry_policy.retries = 0
        # The continuation event has a made-up id; without this a post would "reply" to it.
        turn_context.activity.id = None

    async def _run(self, reference: ConversationReference, work: Any) -> Any:
        outcome: dict[str, Any] = {}

        async def callback(turn_context: TurnContext) -> None:
            self._quiet(turn_context)
            try:
                outcome["value"] = await work(turn_context)
            except Exception as exc:
                # Handed back to the caller; the adapter's error hook would swallow it.
                outcome["error"] = exc

        await self.adapter.continue_conversation(reference, callback, self.app_id)
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    async def send(self, reference: ConversationReference, activity: Activity) -> str:
        """Post a new message in the conversation; returns its activity id."""

        async def post(turn_context: TurnContext) -> str:
            response = await turn_context.send_activity(activity)
            return response.id if response is not None and response.id else ""

        return str(await self._run(reference, post) or "")

    async def update(
        self, reference: ConversationReference, activity_id: str, activity: Activity
    ) -> None:
        """Replace a message the bot posted (everyone in the conversation sees the new one)."""

        async def edit(turn_context: TurnContext) -> None:
            activity.id = activity_id
            await turn_context.update_activity(activity)

        await self._run(reference, edit)

    async def create_personal(
        self,
        *,
        service_url: str,
        tenant_id: str,
        bot_id: str,
        member: ChannelAccount,
        activity: Activity,
    ) -> NewChat:
        """Open (or find) the 1:1 chat with ``member`` and post ``activity`` in it.

        Teams creates the chat only for someone who has the app (installed for them, or in a team
        they are in); otherwise it answers 403, which the caller reports.
        """
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=bot_id),
            members=[member],
            tenant_id=tenant_id,
            channel_data={"tenant": {"id": tenant_id}},
        )
        outcome: dict[str, Any] = {}

        async def callback(turn_context: TurnContext) -> None:
            self._quiet(turn_context)
            conversation = turn_context.activity.conversation
            reference = ConversationReference(
                bot=ChannelAccount(id=bot_id),
                user=member,
                conversation=ConversationAccount(
                    id=conversation.id,
                    conversation_type="personal",
                    tenant_id=tenant_id,
                    is_group=False,
                ),
                channel_id=TEAMS_CHANNEL,
                service_url=turn_context.activity.service_url or service_url,
            )
            outcome["reference"] = reference
            try:
                response = await turn_context.send_activity(activity)
            except Exception as exc:
                outcome["error"] = exc
                return
            outcome["id"] = response.id if response is not None and response.id else ""

        await self.adapter.create_conversation(
            self.app_id or "",
            callback,
            parameters,
            TEAMS_CHANNEL,
            service_url,
        )
        if "error" in outcome:
            raise outcome["error"]
        return NewChat(reference=outcome["reference"], activity_id=str(outcome.get("id") or ""))
