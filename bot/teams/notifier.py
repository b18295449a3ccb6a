"""Proactive Teams sends for the scheduler: one POST on a long-lived connector client, or a new 1:1 chat."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ChannelAccount, ConversationReference
from botframework.connector.auth import AuthenticationConstants
from msrest.exceptions import ClientRequestError, HttpOperationError
from sqlmodel import Session

from bot.teams import metrics
from bot.teams.cards import message_for
from bot.teams.outbound import Outbound
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
from handlers.reply import Reply
from scheduler.notifier import DeliveryError, LookupUnavailable
from storage.models import CSM

if TYPE_CHECKING:
    from botframework.connector.aio import ConnectorClient

    from bot.container import Container
    from bot.teams.app import TeamsApp

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The channelData key carrying the outbox's delivery id on every proactive message.
DELIVERY_ID_KEY = "csmDeliveryId"
# The connector may have posted the message before answering these: the outcome is unknown.
UNKNOWN_STATUSES = frozenset({500, 502, 503, 504})
# What Microsoft documents as worth retrying without doubt (nothing was posted).
RETRY_STATUSES = frozenset({412, 429})
# The conversation is gone or the bot is no longer in it / blocked: retrying cannot help.
GONE_STATUSES = frozenset({403, 404})
# Why a post was not made in a conversation with guests or people of another tenant (recorded).
SHARED_CHANNEL = (
    "shared_channel: the conversation includes people of another organisation (or its roster "
    "cannot be read), and only posts about the account mapped to it go there"
)
TIMEOUT = 30.0


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


class _EventLoop:
    """One asyncio loop on its own thread for the life of the notifier: the connector clients
    (and their aiohttp sessions) made on it are reused by every send instead of made per send."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self._loop.run_forever, name="teams-notifier-loop", daemon=True
                ).start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


class TeamsNotifier:
    """Implements scheduler.notifier.TrackingNotifier for Teams.

    Targets are a conversation id (a chat, a channel, or ``<channel>;messageid=<root>`` for a thread)
    or ``csm:<id>`` for the personal chat with that CSM. A channel or group chat must have been seen
    before (install or message). A CSM's personal chat is opened on demand (``create_conversation``
    with the tenant and their Teams or Entra id) when they never wrote to the bot, then stored.

    Each send is one request (no retry inside: the outbox paces, waits out Retry-After and retries,
    shared by every replica). The delivery id rides in the activity's channelData; the Bot
    Connector has no way for a bot to read a conversation back, so ``find_tagged`` cannot look a
    post up (see README: on Teams a lost answer is sent again).
    """

    platform = "teams"

    def __init__(self, container: Container, *, app: TeamsApp | None = None) -> None:
        if app is None:
            from bot.teams.app import TeamsApp

            app = TeamsApp(container)
        self.container = container
        self.app = app
        self.workspace = container.settings.microsoft_app_tenant_id or "default"
        self._loop = _EventLoop()
        self._clients: dict[str, ConnectorClient] = {}

    def send(self, target: str, reply: Reply) -> str:
        """Post ``reply`` to ``target``; returns the Teams activity id or raises DeliveryError."""
        return self.prepare_tagged(target, reply, None)()

    def send_tagged(self, target: str, reply: Reply, delivery_id: str) -> str:
        return self.prepare_tagged(target, reply, delivery_id)()

    def find_tagged(self, target: str, delivery_id: str, since: datetime) -> str | None:
        raise LookupUnavailable("the Bot Connector cannot read a conversation back")

    def probe(self, reason: str) -> None:
        """Get a token for the connector with the configured credentials (no app id: local use)."""
        if not self.app.app_id:
            return
        try:
            self._loop.run(self._token())
        except (ClientRequestError, OSError) as exc:
            raise DeliveryError("connection_error") from exc
        except Exception as exc:  # MSAL reports refused credentials with several types
            raise DeliveryError(f"auth: {exc}", workspace=True) from exc

    def pacing_key(self, target: str) -> str:
        """A channel and its threads are one "thread" for Teams' limits."""
        return channel_root(target)

    # -- sending --------------------------------------------------------------------------

    def prepare_tagged(
        self, target: str, reply: Reply, delivery_id: str | None
    ) -> Callable[[], str]:
        """Find the conversation and render the card now; the returned call makes the one request."""
        new_chat: NewChat | None = None
        reference: ConversationReference | None = None
        team_id: str | None = None
        with self.container.session() as session:
            row = find_conversation(session, target)
            if row is None:
                new_chat = self._new_chat(session, target)
                stored_id = target
            else:
                if not row.active:
                    raise DeliveryError("bot_removed", permanent=True)
                reference = reference_for(row, target)
                stored_id = row.conversation_id
                team_id = row.team_id
            # Shared cards (alerts, escalations) carry per-person views for those who may act.
            refresh = refresh_for(session, reply)
        if reference is not None and (
            (reference.conversation.conversation_type or "personal") != "personal"
        ):
            try:
                allowed = self._loop.run(self._allowed_here(reference, reply, team_id))
            except (ClientRequestError, OSError, TimeoutError) as exc:
                raise DeliveryError("connection_error") from exc
            if not allowed:
                raise DeliveryError(SHARED_CHANNEL, permanent=True)
        activity: Activity = message_for(reply, refresh=refresh)
        if delivery_id:
            data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
            activity.channel_data = {**data, DELIVERY_ID_KEY: delivery_id}

        def post() -> str:
            try:
                if new_chat is not None:
                    return self._loop.run(self._open_chat(new_chat, activity))
                assert reference is not None
                return self._loop.run(self._post(reference, activity, reply))
            except HttpOperationError as exc:
                raise self._classify(exc, stored_id, new_chat is not None) from exc
            except (ClientRequestError, OSError, TimeoutError) as exc:
                logger.info("Teams send to %s: %s", target, exc)
                raise DeliveryError("connection_error", unknown=True) from exc

        return post

    def _classify(self, exc: HttpOperationError, stored_id: str, new_chat: bool) -> DeliveryError:
        status = getattr(exc.response, "status_code", None)
        reason = f"http_{status}"
        if new_chat and status in GONE_STATUSES:
            # Teams opens a chat only with someone who has the app (installed for them, or in a
            # team they are in): an admin has to install it for them.
            metrics.CHATS_CREATED.labels("not_installed").inc()
            return DeliveryError("app_not_installed_for_user", permanent=True)
        if status in GONE_STATUSES:
            with self.container.session() as session:
                mark_inactive(session, conversation_id=stored_id)
            return DeliveryError(reason, permanent=True)
        if status == 429:
            return DeliveryError("ratelimited", retry_after=_retry_after(exc) or 1.0)
        if status == 401:
            # Our credentials are refused: every post would fail alike. Pause and probe.
            return DeliveryError(reason, workspace=True)
        if status in UNKNOWN_STATUSES:
            return DeliveryError(reason, retry_after=_retry_after(exc), unknown=True)
        if status in RETRY_STATUSES:
            return DeliveryError(reason, retry_after=_retry_after(exc))
        # 413 (too big) and other 4xx will fail the same way again.
        permanent = status is not None and 400 <= status < 500
        return DeliveryError(reason, permanent=permanent)

    def _new_chat(self, session: Session, target: str) -> NewChat:
        """How to open the chat with a CSM who never wrote to the bot; DeliveryError if we can't."""
        if not target.startswith(CSM_TARGET_PREFIX):
            raise DeliveryError("conversation_not_found", permanent=True)
        try:
            csm = session.get(CSM, int(target[len(CSM_TARGET_PREFIX) :]))
        except ValueError:
            csm = None
        if csm is None:
            raise DeliveryError("conversation_not_found", permanent=True)
        member_id = csm.teams_user_id or csm.teams_aad_object_id
        if not member_id:
            # Nobody told us who they are on Teams: they must write to the bot, or be in a team
            # the bot was added to (its roster links them by email).
            raise DeliveryError("teams_user_unknown", permanent=True)
        configured = self.container.settings.microsoft_app_tenant_id
        anchor = tenant_anchor(session, configured)
        tenant = configured or (anchor.tenant_id if anchor else None)
        if anchor is None or not tenant:
            raise DeliveryError("conversation_not_found", permanent=True)
        bot_id = anchor.bot_id or (f"28:{self.app.app_id}" if self.app.app_id else None)
        if not bot_id:
            raise DeliveryError("conversation_not_found", permanent=True)
        return NewChat(
            csm_id=csm.id or 0,
            member=ChannelAccount(id=member_id, aad_object_id=csm.teams_aad_object_id),
            tenant_id=tenant,
            service_url=anchor.service_url,
            bot_id=bot_id,
        )

    async def _open_chat(self, chat: NewChat, activity: Activity) -> str:
        outbound = Outbound(self.app.adapter, self.app.app_id, retries=False)
        created = await outbound.create_personal(
            service_url=chat.service_url,
            tenant_id=chat.tenant_id,
            bot_id=chat.bot_id,
            member=chat.member,
            activity=activity,
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

    async def _client(self, service_url: str) -> ConnectorClient:
        client = self._clients.get(service_url)
        if client is None:
            identity = self.app.adapter.create_claims_identity(self.app.app_id or "")
            identity.claims[AuthenticationConstants.SERVICE_URL_CLAIM] = service_url
            factory = self.app.authentication.create_connector_factory(identity)
            client = await factory.create(service_url, None)
            # The outbox does the retrying (shared pacing, Retry-After); msrest must not re-post.
            client.config.retry_policy.retries = 0
            self._clients[service_url] = client
        return client

    def _addressed(self, reference: ConversationReference, activity: Activity) -> Activity:
        # What TurnContext.apply_conversation_reference fills in; a new message, no reply-to.
        activity.channel_id = reference.channel_id
        activity.service_url = reference.service_url
        activity.conversation = reference.conversation
        activity.from_property = reference.bot
        activity.recipient = reference.user
        return activity

    async def _post(
        self, reference: ConversationReference, activity: Activity, reply: Reply
    ) -> str:
        client = await self._client(reference.service_url)
        response = await client.conversations.send_to_conversation(
            reference.conversation.id, self._addressed(reference, activity)
        )
        activity_id = str(getattr(response, "id", "") or "")
        if reply.attachments:
            await self._send_files(client, reference, reply)
        return activity_id

    async def _allowed_here(
        self, reference: ConversationReference, reply: Reply, team_id: str | None
    ) -> bool:
        """The shared-channel rule, checked on a turn of the conversation (the roster lookup
        needs one) before the post; the post itself goes out on its own request."""
        outcome: dict[str, bool] = {}

        async def callback(turn_context: TurnContext) -> None:
            turn_context.activity.id = None
            outcome["allowed"] = await self._may_post(turn_context, reply, team_id)

        await self.app.adapter.continue_conversation(reference, callback, self.app.app_id or None)
        return outcome.get("allowed", False)

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
                mapped = mapped_accounts(session, mapped_to)
            return access.post_shown_in_shared_channel(
                mapped,
                reply.template,
                reply.context,
                today=self.container.today(),
                enabled=self.container.settings.shared_channel_answers,
            )

        return await asyncio.to_thread(allowed)

    async def _send_files(
        self, client: ConnectorClient, reference: ConversationReference, reply: Reply
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
                    await client.conversations.send_to_conversation(
                        reference.conversation.id, self._addressed(reference, activity)
                    )
                except (HttpOperationError, ClientRequestError) as exc:
                    logger.error("Teams attachment send failed: %s", exc)

    async def _token(self) -> None:
        identity = self.app.adapter.create_claims_identity(self.app.app_id)
        factory = self.app.authentication.create_connector_factory(identity)
        client = await factory.create("https://smba.trafficmanager.net/teams/", None)
        client.config.credentials.get_access_token(force_refresh=True)
