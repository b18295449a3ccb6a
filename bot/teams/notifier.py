"""Proactive Teams sends for the scheduler: stored reference → one POST on a long-lived connector client."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botbuilder.schema import Activity, ConversationReference
from botframework.connector.auth import AuthenticationConstants
from msrest.exceptions import ClientRequestError, HttpOperationError

from bot.teams.cards import message_for
from bot.teams.references import channel_root, find_conversation, mark_inactive, reference_for
from handlers.reply import Reply
from scheduler.notifier import DeliveryError, LookupUnavailable

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
TIMEOUT = 30.0


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
    or ``csm:<id>`` for the personal chat with that CSM. The conversation must have been seen before
    (install or message); otherwise the send fails permanently with ``conversation_not_found``.

    Each send is one POST (no retry inside: the outbox paces, waits out Retry-After and retries,
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
        return self._send(target, reply, None)

    def send_tagged(self, target: str, reply: Reply, delivery_id: str) -> str:
        return self._send(target, reply, delivery_id)

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

    def _send(self, target: str, reply: Reply, delivery_id: str | None) -> str:
        return self.prepare_tagged(target, reply, delivery_id)()

    def prepare_tagged(
        self, target: str, reply: Reply, delivery_id: str | None
    ) -> Callable[[], str]:
        """Find the conversation and render the card now; the returned call makes the one POST."""
        with self.container.session() as session:
            row = find_conversation(session, target)
            if row is None:
                raise DeliveryError("conversation_not_found", permanent=True)
            if not row.active:
                raise DeliveryError("bot_removed", permanent=True)
            reference = reference_for(row, target)
            stored_id = row.conversation_id
        activity: Activity = message_for(reply)
        if delivery_id:
            data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
            activity.channel_data = {**data, DELIVERY_ID_KEY: delivery_id}
        # What TurnContext.apply_conversation_reference would fill in; a new message, no reply-to.
        activity.channel_id = reference.channel_id
        activity.service_url = reference.service_url
        activity.conversation = reference.conversation
        activity.from_property = reference.bot
        activity.recipient = reference.user

        def post() -> str:
            try:
                return self._loop.run(self._post(reference, activity))
            except HttpOperationError as exc:
                raise self._classify(exc, stored_id) from exc
            except (ClientRequestError, OSError, TimeoutError) as exc:
                logger.info("Teams send to %s: %s", target, exc)
                raise DeliveryError("connection_error", unknown=True) from exc

        return post

    def _classify(self, exc: HttpOperationError, stored_id: str) -> DeliveryError:
        status = getattr(exc.response, "status_code", None)
        reason = f"http_{status}"
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

    async def _post(self, reference: ConversationReference, activity: Activity) -> str:
        client = await self._client(reference.service_url)
        response = await client.conversations.send_to_conversation(
            reference.conversation.id, activity
        )
        return str(getattr(response, "id", "") or "")

    async def _token(self) -> None:
        identity = self.app.adapter.create_claims_identity(self.app.app_id)
        factory = self.app.authentication.create_connector_factory(identity)
        client = await factory.create("https://smba.trafficmanager.net/teams/", None)
        client.config.credentials.get_access_token(force_refresh=True)
