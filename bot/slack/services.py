"""What Slack listeners share: the Web API client, who a Slack user is, what a channel may show, event receipts."""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from bot.config import Settings
from bot.container import Container
from bot.slack import audience
from bot.slack.metrics import WEB_API_FAILURES
from bot.slack.worker import SlackWorker
from handlers import access
from handlers.context import Actor, ChatContext
from handlers.identity import actor_for, unknown_actor
from storage.models import Account
from storage.platform_models import SlackEventReceipt

logger = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

# How long answers from Slack and the database are trusted: short for who-is-who (roles change),
# longer for channel sharing (rarely changes; a wrong "not shared" would leak data, so not hours).
ACTOR_TTL = 60.0
PROFILE_TTL = 3600.0
CHANNEL_TTL = 300.0
FAILED_LOOKUP_TTL = 10.0
RECEIPT_RETENTION = timedelta(days=2)
_PRUNE_EVERY = 500


# What a Web API call can raise: Slack's own errors, and the network's (timeouts, refused or
# dropped connections surface as OSError subclasses or http.client errors, not SlackClientError).
WEB_API_ERRORS: tuple[type[Exception], ...] = (SlackClientError, OSError, http.client.HTTPException)
# Seconds a Web API call may take; every call is made after the ack, so this bounds a worker.
WEB_API_TIMEOUT = 10


def web_api_failed(method: str, exc: Exception) -> None:
    """Log a failed call once, the same way everywhere (network failures are also counted)."""
    if not isinstance(exc, SlackClientError) or "timed out" in str(exc).lower():
        WEB_API_FAILURES.labels(method).inc()
    logger.warning("%s failed: %s: %s", method, type(exc).__name__, exc)


# A request handler may wait this long for a rate limit to pass; longer waits fail instead, since
# Slack wants commands and clicks acknowledged within 3 s (and retries events after 3 s).
MAX_RETRY_AFTER = 2.0


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries a 429 after its Retry-After, but only when that wait is short."""

    def __init__(self, max_retry_count: int = 1, max_wait: float = MAX_RETRY_AFTER) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = 1.0  # what the base handler assumes without a header
        for key, value in response.headers.items():
            if key.lower() == "retry-after":
                raw = value[0] if isinstance(value, list) else value
                with suppress(TypeError, ValueError):
                    wait = float(raw)
        return wait <= self.max_wait


def web_client(settings: Settings, *, retry_rate_limits: bool = True) -> WebClient:
    """A Web API client on settings.slack_api_url that retries connection errors, 5xx and (optionally) 429.

    The scheduler's notifier passes retry_rate_limits=False: its outbox honours Retry-After itself
    instead of sleeping inside a send.
    """
    handlers: list[RetryHandler] = [ConnectionErrorRetryHandler(max_retry_count=1)]
    if retry_rate_limits:
        handlers.append(BoundedRateLimitRetryHandler(max_retry_count=1))
        handlers.append(ServerErrorRetryHandler(max_retry_count=2))
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=WEB_API_TIMEOUT,
        retry_handlers=handlers,
    )


class TTLCache(Generic[K, V]):
    """A small thread-safe map whose entries expire; bounded so a busy workspace cannot grow it forever."""

    def __init__(self, ttl: float, maxsize: int = 10_000) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, value = item
            if expires < time.monotonic():
                del self._data[key]
                return None
            return value

    def put(self, key: K, value: V, ttl: float | None = None) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + (self.ttl if ttl is None else ttl), value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


@dataclass(frozen=True)
class ChannelInfo:
    """Whether a channel is shared with another organisation, and the accounts it may show.

    visible is False when conversations.info failed (a private channel the bot is not in): the
    channel is then treated as external, and the user is told why. inspected is False when it
    failed for a DM (one between two people, which the bot is not in): answered privately,
    but nothing is posted there for everyone, since a guest or an outsider may be in it.
    """

    external: bool
    account_ids: frozenset[int] = frozenset()
    visible: bool = True
    inspected: bool = True


@dataclass(frozen=True)
class SlackProfile:
    """What users.info says about a person: email, name, and whether they may not see data."""

    email: str | None
    name: str | None
    barred: str | None = None  # access.GUEST or access.EXTERNAL


def profile_of(user: dict[str, Any], home: tuple[str | None, str | None]) -> SlackProfile:
    """A users.info user as a SlackProfile; ``home`` is our (team id, enterprise id).

    Guests (single- and multi-channel) and people of another organisation (is_stranger, or a
    Slack Connect member whose team is neither ours nor in our Enterprise Grid) are barred.
    """
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    email = profile.get("email") if isinstance(profile.get("email"), str) else None
    name = user.get("real_name") or user.get("name")
    barred = None
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        barred = access.GUEST
    elif user.get("is_stranger") or _foreign_team(user, home):
        barred = access.EXTERNAL
    return SlackProfile(email=email, name=str(name) if name else None, barred=barred)


def cached_profile(
    cache: TTLCache[str, SlackProfile],
    key: str,
    user_id: str,
    client: WebClient,
    home: tuple[str | None, str | None],
) -> SlackProfile:
    """users.info's answer as a SlackProfile, cached under ``key``; raises what the call raises."""
    cached = cache.get(key)
    if cached is not None:
        return cached
    user = client.users_info(user=user_id).get("user") or {}
    found = profile_of(user if isinstance(user, dict) else {}, home)
    cache.put(key, found)
    return found


def _foreign_team(user: dict[str, Any], home: tuple[str | None, str | None]) -> bool:
    team, enterprise = home
    theirs = user.get("team_id")
    if not team or not theirs or theirs == team:
        return False
    grid = user.get("enterprise_user")
    their_enterprise = grid.get("enterprise_id") if isinstance(grid, dict) else None
    return not (enterprise and their_enterprise == enterprise)


@dataclass
class SlackServices:
    """Per-process state of the Slack edge; listeners get it through register(app, services)."""

    container: Container
    client: WebClient
    actors: TTLCache[str, Actor] = field(default_factory=lambda: TTLCache(ACTOR_TTL))
    profiles: TTLCache[str, SlackProfile] = field(default_factory=lambda: TTLCache(PROFILE_TTL))
    channels: TTLCache[str, ChannelInfo] = field(default_factory=lambda: TTLCache(CHANNEL_TTL))
    # auth.test's answer by team: our workspace, our Enterprise Grid, the bot's own user id.
    whoami: TTLCache[str, tuple[str | None, str | None, str | None]] = field(
        default_factory=lambda: TTLCache(PROFILE_TTL)
    )
    # Why a channel may not get account data posted for everyone ("" = it may), by team:channel.
    audiences: TTLCache[str, str] = field(default_factory=lambda: TTLCache(CHANNEL_TTL))
    worker: SlackWorker = field(default_factory=SlackWorker)
    _receipts: int = 0

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.container.session() as session:
            yield session

    # -- identity ------------------------------------------------------------------------------
    def actor(
        self,
        user_id: str,
        *,
        client: WebClient | None = None,
        team_id: str | None = None,
        home: tuple[str | None, str | None] | None = None,
    ) -> Actor:
        """The person behind a Slack user: by stored slack_user_id, else by users.info's email.

        users.info is asked (and cached) even for linked people: a guest or an external user sees
        no account data, whatever record their email would match. client and team_id are the
        request's (multi-workspace installs have a token per team); home is our workspace and
        Enterprise Grid ids as bolt's authorization found them (else auth.test is asked).
        """
        key = f"{team_id or ''}:{user_id}"
        cached = self.actors.get(key)
        if cached is not None:
            return cached
        ttl: float | None = None
        web = client or self.client
        profile = self._profile(key, user_id, web, home or self._home(web, team_id))
        with self.session() as session:
            actor = actor_for(session, platform="slack", user_id=user_id)
            if profile is None:
                # Slack could not tell us: a linked person keeps their (verified) link for now;
                # anyone else sees nothing until Slack answers (asked again soon).
                ttl = FAILED_LOOKUP_TTL
                if not actor.known:
                    actor = unknown_actor(user_id, barred=access.UNVERIFIED)
            elif profile.barred:
                actor = unknown_actor(user_id, profile.name, barred=profile.barred)
            elif not actor.known and (profile.email or profile.name):
                actor = actor_for(
                    session,
                    platform="slack",
                    user_id=user_id,
                    email=profile.email,
                    name=profile.name,
                )
        self.actors.put(key, actor, ttl=ttl)
        return actor

    def _home(self, client: WebClient, team_id: str | None) -> tuple[str | None, str | None]:
        """Our workspace and Enterprise Grid ids (auth.test, cached); the request's team if unknown."""
        team, enterprise, _bot = self._whoami(client, team_id)
        return team, enterprise

    def _whoami(
        self, client: WebClient, team_id: str | None
    ) -> tuple[str | None, str | None, str | None]:
        """auth.test (cached): our workspace, Enterprise Grid and the bot's user id."""
        key = team_id or ""
        cached = self.whoami.get(key)
        if cached is not None:
            return cached
        try:
            data = client.auth_test()
        except WEB_API_ERRORS as exc:
            web_api_failed("auth.test", exc)
            return team_id, None, None
        found = (data.get("team_id") or team_id, data.get("enterprise_id"), data.get("user_id"))
        self.whoami.put(key, found)
        return found

    def _profile(
        self, key: str, user_id: str, client: WebClient, home: tuple[str | None, str | None]
    ) -> SlackProfile | None:
        """What users.info says about the user, cached; None when Slack could not tell us."""
        try:
            return cached_profile(self.profiles, key, user_id, client, home)
        except WEB_API_ERRORS as exc:
            web_api_failed("users.info", exc)
            return None

    # -- channels ------------------------------------------------------------------------------
    def channel(
        self, channel_id: str, *, client: WebClient | None = None, team_id: str | None = None
    ) -> ChannelInfo:
        """Whether a channel is externally shared (conversations.info), and the accounts mapped to it."""
        key = f"{team_id or ''}:{channel_id}"
        cached = self.channels.get(key)
        if cached is not None:
            return cached
        ttl: float | None = None
        visible = inspected = True
        try:
            data = (client or self.client).conversations_info(channel=channel_id).get("channel")
            data = data or {}
            external = bool(data.get("is_ext_shared") or data.get("is_pending_ext_shared"))
        except WEB_API_ERRORS as exc:
            # conversations.info fails for DMs the bot is not in; a DM is not an organisation's
            # shared channel. Anything else we cannot see is treated as external (shows nothing).
            external = not channel_id.startswith("D")
            visible = not external
            inspected = False
            ttl = FAILED_LOOKUP_TTL
            web_api_failed("conversations.info", exc)
        account_ids = self.mapped_accounts(channel_id) if external else frozenset()
        info = ChannelInfo(
            external=external, account_ids=account_ids, visible=visible, inspected=inspected
        )
        self.channels.put(key, info, ttl=ttl)
        return info

    def outsiders(
        self,
        channel_id: str,
        *,
        client: WebClient | None = None,
        team_id: str | None = None,
        home: tuple[str | None, str | None] | None = None,
    ) -> str | None:
        """Why a post for everyone in the channel could reach someone who may not see account
        data (a guest, another organisation's member, or we cannot tell), or None; cached.

        Not part of chat_context: answers only the asker sees need no roll call, and this may
        take a page of conversations.members plus a users.info per member not yet cached.
        """
        if not audience.needs_check(channel_id):
            return None
        key = f"{team_id or ''}:{channel_id}"
        cached = self.audiences.get(key)
        if cached is not None:
            return cached or None
        web = client or self.client
        team, enterprise, bot_user = self._whoami(web, team_id)
        where = home or (team, enterprise)
        ttl: float | None = None
        try:
            reason = audience.outsider(
                web,
                channel_id,
                lambda user: cached_profile(
                    self.profiles, f"{team_id or ''}:{user}", user, web, where
                ),
                skip={bot_user} if bot_user else set(),
            )
        except WEB_API_ERRORS as exc:
            web_api_failed("conversations.members/users.info", exc)
            reason, ttl = audience.UNKNOWN, FAILED_LOOKUP_TTL  # closed: treated as outsiders
        self.audiences.put(key, reason or "", ttl=ttl)
        return reason

    def for_everyone(
        self,
        ctx: ChatContext,
        channel_id: str | None,
        *,
        client: WebClient | None = None,
        team_id: str | None = None,
        home: tuple[str | None, str | None] | None = None,
    ) -> tuple[ChatContext, str | None]:
        """The context for an answer everyone in the channel will read (Share, a reply to an
        @mention): a channel with a guest or an outsider in it is a shared channel for this.
        Returns the context and why it was narrowed (None when it was not)."""
        if ctx.external or not channel_id:
            return ctx, None
        reason = self.outsiders(channel_id, client=client, team_id=team_id, home=home)
        if not reason:
            return ctx, None
        narrowed = replace(
            ctx,
            external=True,
            allowed_account_ids=access.shared_channel_accounts(
                self.mapped_accounts(channel_id),
                enabled=self.container.settings.shared_channel_answers,
            ),
        )
        return narrowed, reason

    def mapped_accounts(self, channel_id: str) -> frozenset[int]:
        """The accounts whose slack_channel_id is this channel."""
        with self.session() as session:
            ids = session.exec(
                select(Account.id).where(Account.slack_channel_id == channel_id)
            ).all()
        return frozenset(i for i in ids if i is not None)

    def chat_context(
        self,
        user_id: str | None,
        channel_id: str | None = None,
        *,
        thread_key: str | None = None,
        client: WebClient | None = None,
        team_id: str | None = None,
        request_key: str | None = None,
        home: tuple[str | None, str | None] | None = None,
    ) -> ChatContext:
        """The ChatContext for a Slack request: who asks, and what the channel may show.

        Makes Web API calls on a cold cache: call it after the ack (in the worker).
        """
        where = {"client": client, "team_id": team_id}
        actor = self.actor(user_id, home=home, **where) if user_id else unknown_actor(None)
        info = self.channel(channel_id, **where) if channel_id else ChannelInfo(external=False)
        return ChatContext(
            platform="slack",
            actor=actor,
            today=self.container.today(),
            thread_key=thread_key,
            external=info.external,
            allowed_account_ids=access.shared_channel_accounts(
                info.account_ids, enabled=self.container.settings.shared_channel_answers
            ),
            request_key=request_key,
            audience_known=info.inspected,
        )

    # -- events --------------------------------------------------------------------------------
    def first_delivery(self, event_id: str | None) -> bool:
        """True the first time an Events API event_id is seen; Slack's retries get False."""
        if not event_id:
            return True
        try:
            with self.session() as session:
                session.add(SlackEventReceipt(event_id=event_id))
        except IntegrityError:
            return False
        self._receipts += 1
        if self._receipts % _PRUNE_EVERY == 0:
            self.prune_receipts()
        return True

    def prune_receipts(self) -> int:
        """Forget receipts older than Slack's retry window (with a wide margin)."""
        cutoff = datetime.now(UTC) - RECEIPT_RETENTION
        with self.session() as session:
            result = session.exec(  # type: ignore[call-overload]
                delete(SlackEventReceipt).where(col(SlackEventReceipt.received_at) < cutoff)
            )
            return int(result.rowcount or 0)


def api_error(exc: Exception) -> str | None:
    """The Slack error code of a failed Web API call ('channel_not_found'), if there is one."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "") or None
    return None
