"""Proactive Teams sends for the scheduler: stored reference → continue_conversation, rate-limited, retried."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botbuilder.core import TurnContext
from botbuilder.schema import ChannelAccount, ConversationReference
from msrest.exceptions import ClientRequestError, HttpOperationError
from sqlmodel import Session

from bot.teams import metrics
from bot.teams.cards import Refresh, message_for
from bot.teams.outbound import Outbound
from bot.teams.ratelimit import ThreadRateLimiter
from bot.teams.references import (
    CSM_TARGET_PREFIX,
    channel_root,
    find_conversation,
    mark_inactive,
    reference_for,
    save_created_chat,
    tenant_anchor,
)
from bot.teams.shared_cards import refresh_for
from handlers import access
from handlers.context import ChatContext
from handlers.reply import Reply
from storage.models import CSM

if TYPE_CHECKING:
    from bot.container import Container
    from bot.teams.app import TeamsApp

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What Microsoft documents as worth retrying for Teams sends; other 5xx go back to the outbox.
RETRY_STATUSES = frozenset({412, 429, 502, 504})
# The conversation is gone or the bot is no longer in it / blocked: retrying cannot help.
GONE_STATUSES = frozenset({403, 404})
# Why a post was not made in a conversation with guests or people of another tenant (recorded).
SHARED_CHANNEL = (
    "shared_channel: the conversation includes people of another organisation (or its roster "
    "cannot be read), and only posts about the account mapped to it go there"
)


def _delivery_error(
    reason: str, retry_after: float | None = None, permanent: bool = False
) -> Exception:
    # Imported late: the scheduler package may be mid-build in a fresh checkout, and only it needs this.
    from scheduler.notifier import DeliveryError

    return DeliveryError(reason, retry_after=retry_after, permanent=permanent)


@dataclass(frozen=True)
class NewChat:
    """What it takes to open a 1:1 chat with a CSM the bot has never talked to."""

    csm_id: int
    member: ChannelAccount
    tenant_id: str
    service_url: str
    bot_id: str


def _retry_after(exc: HttpOperationError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; rare for Teams, and the backoff covers it


class TeamsNotifier:
    """Implements scheduler.notifier.Notifier for Teams.

    Targets are a conversation id (a chat, a channel, or ``<channel>;messageid=<root>`` for a thread)
    or ``csm:<id>`` for the personal chat with that CSM. A channel or group chat must have been seen
    before (install or message). A CSM's personal chat is opened on demand (``create_conversation``
    with the tenant and their Teams or Entra id) when they never wrote to the bot, then stored.
    """

    platform = "teams"

    def __init__(
        self,
        container: Container,
        *,
        app: TeamsApp | None = None,
        limiter: ThreadRateLimiter | None = None,
        max_attempts: int = 4,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if app is None:
            from bot.teams.app import TeamsApp

            app = TeamsApp(container)
        self.container = container
        self.app = app
        self.limiter = limiter or ThreadRateLimiter()
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        # Longer waits than this go back to the outbox instead of holding a worker.
        self.max_wait = max_wait
        self.sleep = sleep
        self.jitter = jitter

    def send(self, target: str, reply: Reply) -> str:
        """Post ``reply`` to ``target``; returns the Teams activity id or raises DeliveryError."""
        new_chat: NewChat | None = None
        reference: ConversationReference | None = None
        team_id: str | None = None
        with self.container.session() as session:
            row = find_conversation(session, target)
            if row is None:
                new_chat = self._new_chat(session, target)
                key = stored_id = target
            else:
                if not row.active:
                    raise _delivery_error("bot_removed", permanent=True)
                reference = reference_for(row, target)
                stored_id = row.conversation_id
                team_id = row.team_id
                key = reference.conversation.id
            # Shared cards (alerts, escalations) carry per-person views for those who may act.
            refresh = refresh_for(session, reply)
        attempt = 0
        while True:
            wait = self.limiter.delay(key)
            if wait > self.max_wait:
                raise _delivery_error("ratelimited", retry_after=wait)
            wait = self.limiter.reserve(key)
            if wait > 0:
                self.sleep(wait)
            try:
                if new_chat is not None:
                    return _run(self._open_chat(new_chat, reply, refresh))
                assert reference is not None
                return _run(self._send_once(reference, reply, refresh, team_id=team_id))
            except HttpOperationError as exc:
                status = getattr(exc.response, "status_code", None)
                reason = f"http_{status}"
                if new_chat is not None and status in GONE_STATUSES:
                    # Teams opens a chat only with someone who has the app (installed for them,
                    # or in a team they are in): an admin has to install it for them.
                    metrics.CHATS_CREATED.labels("not_installed").inc()
                    raise _delivery_error("app_not_installed_for_user", permanent=True) from exc
                if status in GONE_STATUSES:
                    with self.container.session() as session:
                        mark_inactive(session, conversation_id=stored_id)
                    raise _delivery_error(reason, permanent=True) from exc
                if status not in RETRY_STATUSES:
                    # 413 (too big) and other 4xx will fail the same way again; 5xx may not.
                    permanent = status is not None and 400 <= status < 500 and status != 401
                    raise _delivery_error(reason, permanent=permanent) from exc
                retry_after = _retry_after(exc)
            except ClientRequestError as exc:
                reason, retry_after = "connection_error", None
                logger.info("Teams send to %s: %s", key, exc)
            attempt += 1
            delay = self._backoff(attempt, retry_after)
            if attempt >= self.max_attempts or delay > self.max_wait:
                raise _delivery_error(reason, retry_after=delay)
            logger.info(
                "Teams send to %s failed (%s); retry %d in %.1fs", key, reason, attempt, delay
            )
            self.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter (50-100 % of the step), never shorter than Retry-After."""
        step = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        delay = step * (0.5 + 0.5 * self.jitter())
        return max(delay, retry_after or 0.0)

    def _new_chat(self, session: Session, target: str) -> NewChat:
        """How to open the chat with a CSM who never wrote to the bot; DeliveryError if we can't."""
        if not target.startswith(CSM_TARGET_PREFIX):
            raise _delivery_error("conversation_not_found", permanent=True)
        try:
            csm = session.get(CSM, int(target[len(CSM_TARGET_PREFIX) :]))
        except ValueError:
            csm = None
        if csm is None:
            raise _delivery_error("conversation_not_found", permanent=True)
        member_id = csm.teams_user_id or csm.teams_aad_object_id
        if not member_id:
            # Nobody told us who they are on Teams: they must write to the bot, or be in a team
            # the bot was added to (its roster links them by email).
            raise _delivery_error("teams_user_unknown", permanent=True)
        configured = self.container.settings.microsoft_app_tenant_id
        anchor = tenant_anchor(session, configured)
        tenant = configured or (anchor.tenant_id if anchor else None)
        if anchor is None or not tenant:
            raise _delivery_error("conversation_not_found", permanent=True)
        bot_id = anchor.bot_id or (f"28:{self.app.app_id}" if self.app.app_id else None)
        if not bot_id:
            raise _delivery_error("conversation_not_found", permanent=True)
        return NewChat(
            csm_id=csm.id or 0,
            member=ChannelAccount(id=member_id, aad_object_id=csm.teams_aad_object_id),
            tenant_id=tenant,
            service_url=anchor.service_url,
            bot_id=bot_id,
        )

    async def _open_chat(self, chat: NewChat, reply: Reply, refresh: Refresh | None) -> str:
        outbound = Outbound(self.app.adapter, self.app.app_id, retries=False)
        created = await outbound.create_personal(
            service_url=chat.service_url,
            tenant_id=chat.tenant_id,
            bot_id=chat.bot_id,
            member=chat.member,
            activity=message_for(reply, refresh=refresh),
        )
        metrics.CHATS_CREATED.labels("created").inc()

        def store() -> None:
            with self.container.session() as session:
                save_created_chat(
                    session,
                    reference=created.reference,
                    csm_id=chat.csm_id,
                    tenant_id=chat.tenant_id,
                )

        await asyncio.to_thread(store)
        return created.activity_id

    async def _send_once(
        self,
        reference: ConversationReference,
        reply: Reply,
        refresh: Refresh | None = None,
        *,
        team_id: str | None = None,
    ) -> str:
        adapter = self.app.adapter
        outcome: dict[str, Any] = {}

        async def callback(turn_context: TurnContext) -> None:
            client = turn_context.turn_state.get(adapter.BOT_CONNECTOR_CLIENT_KEY)
            if client is not None:
                # Our loop does the retrying (with Retry-After and jitter); msrest must not add its own.
                client.config.retry_policy.retries = 0
            # The continuation event has a made-up id; without this the post would "reply" to it.
            turn_context.activity.id = None
            if not await self._may_post(turn_context, reply, team_id):
                outcome["refused"] = True
                return
            try:
                response = await turn_context.send_activity(message_for(reply, refresh=refresh))
            except Exception as exc:
                # Handed back to send(); the adapter's error hook would swallow it.
                outcome["error"] = exc
                return
            outcome["id"] = response.id if response is not None else ""
            if reply.attachments:
                await self._send_files(turn_context, reference, reply)

        await adapter.continue_conversation(reference, callback, self.app.app_id or None)
        if "error" in outcome:
            raise outcome["error"]
        if outcome.get("refused"):
            raise _delivery_error(SHARED_CHANNEL, permanent=True)
        return str(outcome.get("id") or "")

    async def _may_post(self, turn_context: TurnContext, reply: Reply, team_id: str | None) -> bool:
        """The shared-channel rule (handlers.access) for a post to a channel or group chat.

        Who is in it comes from the roster, as for a message there (bot.teams.identity): the
        team's when the conversation is a team's channel, else the chat's.
        """
        conversation = turn_context.activity.conversation
        if conversation is None or (conversation.conversation_type or "personal") == "personal":
            return True
        # A continuation turn carries no channelData; the roster lookup reads the team from it.
        turn_context.activity.channel_data = {"team": {"id": team_id}} if team_id else {}
        mapped_to = channel_root(conversation.id or "")
        key = team_id or mapped_to
        tenant = self.container.settings.microsoft_app_tenant_id
        sharing = await self.app.bot.conversations.sharing(turn_context, key, tenant)
        if not sharing.external:
            return True
        from bot.teams.bot import mapped_accounts

        def allowed() -> bool:
            with self.container.session() as session:
                ctx = ChatContext(
                    platform="scheduler",
                    actor=access.system_actor(),
                    today=self.container.today(),
                    external=True,
                    allowed_account_ids=mapped_accounts(session, mapped_to),
                )
            return access.post_shown_here(ctx, reply.template, reply.context)

        return await asyncio.to_thread(allowed)

    async def _send_files(
        self, turn_context: TurnContext, reference: ConversationReference, reply: Reply
    ) -> None:
        """Charts as Image cards after the post; the draft deck by file consent, in a personal
        chat only. The post is delivered: a failure here is logged, not retried (no double post)."""
        from bot.teams.files import chart_message, consent_message
        from handlers.attachments import delivery_context, safe_files

        personal = getattr(reference.conversation, "conversation_type", None) == "personal"
        for item in reply.attachments:
            if item.kind == "qbr_pack" and not personal:
                logger.warning("not offering a deck outside a personal chat")
                continue
            files, problems = await asyncio.to_thread(
                safe_files,
                self.container.session,
                (item,),
                ctx=delivery_context(self.container.today()),
                models=self.container.health_models,
            )
            for problem in problems:
                logger.error("attachment not made: %s", problem)
            for out in files:
                activity = (
                    chart_message(out)
                    if out.is_image
                    else consent_message(out, {"kind": "qbr_pack", **item.data})
                )
                try:
                    await turn_context.send_activity(activity)
                except (HttpOperationError, ClientRequestError) as exc:
                    logger.error("Teams attachment send failed: %s", exc)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
