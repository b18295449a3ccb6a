"""The scheduler's Slack notifier: renders a Reply as Block Kit and posts it; failures become DeliveryError."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from jinja2 import TemplateNotFound
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlmodel import Session, select

from bot.container import Container
from bot.render import mrkdwn_escape
from bot.slack import audience
from bot.slack.messages import fallback_text, message
from bot.slack.services import CHANNEL_TTL, PROFILE_TTL, SlackProfile, TTLCache, cached_profile
from handlers import access
from handlers.reply import Reply
from scheduler.notifier import DeliveryError, LookupUnavailable
from storage.models import CSM, Account

logger = logging.getLogger(__name__)

# Errors no retry can fix for this message: the channel or the bot's access to it is gone, or
# Slack rejected the message itself.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "no_permission",
        "restricted_action",
        "cannot_dm_bot",
        "user_not_found",
        "users_not_found",
        "user_disabled",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "no_slack_user",
    }
)
# Errors that refuse the whole workspace: every post would fail the same way until an admin
# fixes the token or the app's scopes. They pause posting; nothing fails because of them.
WORKSPACE_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "team_access_not_granted",
        "not_allowed_token_type",
        "ekm_access_denied",
        "org_login_required",
        "team_added_to_org",
    }
)
# Errors of a history lookup that mean "cannot look here" rather than "not there".
LOOKUP_UNAVAILABLE = frozenset({"missing_scope", "not_in_channel", "channel_not_found"})
DEFAULT_RETRY_AFTER = 1.0
# Why a post was not made in a channel shared with another organisation, or with a guest or an
# outsider among its members (recorded, reported).
SHARED_CHANNEL = (
    "shared_channel: the channel is shared with another organisation or has guests (or who is "
    "in it cannot be checked), and only posts about the account mapped to it go there"
)
METADATA_EVENT = "csm_delivery"
LOOKUP_PAGES = 10
TIMEOUT = 10


class SlackNotifier:
    """Posts scheduled messages (reminders, alerts, digests) with chat.postMessage.

    Targets are a channel id ("C0123") or "csm:<id>" for a CSM's DM (their stored slack_user_id,
    else users.lookupByEmail). Each post carries its delivery id in the message metadata, and a
    post whose answer was lost is looked up with conversations.history before it is sent again.
    The client retries nothing itself (not even connection errors: a retried post may be a
    second post); the outbox decides. Posts go to SLACK_BOT_TOKEN's workspace (with
    multi-workspace install and no SLACK_BOT_TOKEN: the latest installed one).
    """

    platform = "slack"
    workspace = "default"

    def __init__(self, container: Container, *, client: WebClient | None = None) -> None:
        self.container = container
        self._client = _without_retries(client) if client is not None else None
        # Whether a channel is shared with another organisation or has a guest or an outsider
        # among its members, by channel id (it rarely changes).
        self._shared: TTLCache[str, bool] = TTLCache(CHANNEL_TTL, maxsize=1000)
        # users.info answers for the members' roll call, and auth.test's (team, grid, bot user).
        self._profiles: TTLCache[str, SlackProfile] = TTLCache(PROFILE_TTL)
        self._whoami: TTLCache[str, tuple[str | None, str | None, str | None]] = TTLCache(
            PROFILE_TTL
        )

    @property
    def client(self) -> WebClient:
        """SLACK_BOT_TOKEN's client; with multi-workspace install only, the latest install's."""
        if self._client is not None:
            return self._client
        settings = self.container.settings
        if not settings.slack_bot_token:
            from bot.slack.config import SlackOAuthConfig

            oauth = SlackOAuthConfig()
            if oauth.enabled:
                from bot.slack.oauth import latest_bot_token

                token = latest_bot_token(self.container, oauth)
                if token is None:
                    raise DeliveryError("not_installed")  # transient: someone may install it
                return _client(token, settings.slack_api_url)
        self._client = _client(settings.slack_bot_token, settings.slack_api_url)
        return self._client

    def send(self, target: str, reply: Reply) -> str:
        return self._post(target, reply, None)

    def send_tagged(self, target: str, reply: Reply, delivery_id: str) -> str:
        return self._post(target, reply, delivery_id)

    def _post(self, target: str, reply: Reply, delivery_id: str | None) -> str:
        return self.prepare_tagged(target, reply, delivery_id)()

    def prepare_tagged(
        self, target: str, reply: Reply, delivery_id: str | None
    ) -> Callable[[], str]:
        """Render and address the post now; the returned call makes the one HTTP request."""
        client = self.client
        channel = self._channel_for(target, client)
        if channel == target and not self._may_post(client, channel, reply):
            raise DeliveryError(SHARED_CHANNEL, permanent=True)
        payload = self._payload(reply)
        if delivery_id:
            payload["metadata"] = {
                "event_type": METADATA_EVENT,
                "event_payload": {"delivery_id": delivery_id},
            }

        def post() -> str:
            try:
                response = client.chat_postMessage(channel=channel, **payload)
            except SlackApiError as exc:
                raise delivery_error(exc) from exc
            except (SlackClientError, OSError) as exc:
                # The request may have reached Slack: the outbox looks it up before a re-send.
                raise DeliveryError("connection_error", unknown=True) from exc
            ts = str(response.get("ts") or "")
            if reply.attachments:
                # After the post is delivered: a failed upload is logged, never raised.
                self._send_files(client, target, reply, str(response.get("channel") or channel), ts)
            return ts

        return post

    def find_tagged(self, target: str, delivery_id: str, since: datetime) -> str | None:
        """The ts of the post carrying ``delivery_id`` in its metadata, made since ``since``."""
        client = self.client
        channel = self._channel_for(target, client)
        try:
            if not channel.startswith(("C", "G", "D")):
                # A user id: the post went to the app's DM with them.
                opened = client.conversations_open(users=channel)
                channel = str((opened.get("channel") or {}).get("id") or channel)
            cursor: str | None = None
            for _ in range(LOOKUP_PAGES):
                page = client.conversations_history(
                    channel=channel,
                    oldest=f"{since.timestamp():.6f}",
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
                for message in page.get("messages") or []:
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if (
                        metadata.get("event_type") == METADATA_EVENT
                        and payload.get("delivery_id") == delivery_id
                    ):
                        return str(message.get("ts") or "")
                cursor = ((page.get("response_metadata") or {}).get("next_cursor")) or None
                if not page.get("has_more") or not cursor:
                    return None
        except SlackApiError as exc:
            error = _error_code(exc)
            if error in LOOKUP_UNAVAILABLE:
                logger.error(
                    "cannot look up deliveries in %s (%s): grant channels:history, "
                    "groups:history, im:history and im:write so lost answers are never re-posted",
                    channel,
                    error,
                )
                raise LookupUnavailable(error) from exc
            raise delivery_error(exc) from exc
        except (SlackClientError, OSError) as exc:
            raise DeliveryError("connection_error") from exc
        logger.warning(
            "delivery %s: history lookup stopped after %d pages", delivery_id, LOOKUP_PAGES
        )
        return None

    def probe(self, reason: str) -> None:
        """auth.test, and the scope a missing_scope pause was waiting for; raises while refused."""
        try:
            response = self.client.auth_test()
        except SlackApiError as exc:
            raise delivery_error(exc) from exc
        except (SlackClientError, OSError) as exc:
            raise DeliveryError("connection_error") from exc
        needed = reason.split(":", 1)[1] if reason.startswith("missing_scope:") else ""
        if needed:
            granted = _granted_scopes(response.headers or {})
            missing = [s for s in needed.split(",") if s and s not in granted]
            if missing:
                raise DeliveryError(f"missing_scope:{','.join(missing)}", workspace=True)

    def pacing_key(self, target: str) -> str:
        return target

    def _send_files(
        self, client: WebClient, target: str, reply: Reply, channel: str, ts: str
    ) -> None:
        """Charts (and, in a DM, the draft deck) into the thread of the post just made.

        The post itself is delivered: a failed upload is logged, never raised, so the outbox does
        not post the message a second time. A deck never goes to a channel (it may be shared).
        """
        from bot.slack.files import upload
        from handlers.attachments import delivery_context, safe_files

        items = tuple(
            a for a in reply.attachments if a.kind == "chart" or target.startswith("csm:")
        )
        if len(items) < len(reply.attachments):
            logger.warning("not attaching a deck to a channel post (%s)", target)
        files, problems = safe_files(
            self.container.session,
            items,
            ctx=delivery_context(self.container.today()),
            models=self.container.health_models,
        )
        for problem in problems:
            logger.error("attachment for %s not made: %s", target, problem)
        try:
            charts = [f for f in files if f.is_image]
            upload(client, charts, channel=channel, thread_ts=ts or None)
            for pack in (f for f in files if not f.is_image):
                upload(
                    client, [pack], channel=channel, thread_ts=ts or None, comment=pack.description
                )
        except (SlackClientError, OSError) as exc:
            logger.error("file upload to %s failed: %s", target, exc)

    def _may_post(self, client: WebClient, channel: str, reply: Reply) -> bool:
        """The shared-channel rule (handlers.access) for a post to a channel, not a person's DM.

        A channel with a guest or a member of another organisation is a shared channel here,
        and so is one whose sharing or members cannot be checked (docs/access.md).
        """
        if channel[:1] in ("U", "W"):
            return True  # a user id: the post lands in the app's DM with them
        shared = self._shared.get(channel)
        if shared is None:
            try:
                data = client.conversations_info(channel=channel).get("channel") or {}
                shared = bool(data.get("is_ext_shared") or data.get("is_pending_ext_shared"))
                if not shared and audience.needs_check(channel):
                    shared = self._outsider(client, channel) is not None
            except SlackApiError as exc:
                refused = delivery_error(exc)
                if refused.workspace or refused.reason == "ratelimited":
                    raise refused from exc  # pause the workspace, or wait: as for the post
                if refused.unknown:
                    # Slack failed the lookup, nothing was posted: just try again later.
                    raise DeliveryError(refused.reason) from exc
                logger.warning("who is in %s cannot be checked: %s", channel, exc)
                shared = True
            except (SlackClientError, OSError) as exc:
                raise DeliveryError("connection_error") from exc
            else:
                self._shared.put(channel, shared)
        if not shared:
            return True
        with Session(self.container.engine) as session:
            mapped = session.exec(
                select(Account.id).where(Account.slack_channel_id == channel)
            ).all()
        return access.post_shown_in_shared_channel(
            mapped,
            reply.template,
            reply.context,
            today=self.container.today(),
            enabled=self.container.settings.shared_channel_answers,
        )

    def _outsider(self, client: WebClient, channel: str) -> str | None:
        """Why someone in the channel may not see account data, or None (bot.slack.audience).

        Raises the Web API's errors, which _may_post sorts as for conversations.info.
        """
        whoami = self._whoami.get("")
        if whoami is None:
            data = client.auth_test()
            whoami = (data.get("team_id"), data.get("enterprise_id"), data.get("user_id"))
            self._whoami.put("", whoami)
        team, enterprise, bot_user = whoami
        reason = audience.outsider(
            client,
            channel,
            lambda user: cached_profile(self._profiles, user, user, client, (team, enterprise)),
            skip={bot_user} if bot_user else set(),
        )
        if reason:
            logger.info(
                "%s has %s: posts there follow the shared-channel rule",
                channel,
                audience.DESCRIBED.get(reason, reason),
            )
        return reason

    def _payload(self, reply: Reply) -> dict[str, Any]:
        try:
            return message(reply)
        except TemplateNotFound:
            # A Reply without a Slack template still reaches people, as its escaped plain text.
            logger.warning("no Slack template %r; posting the text fallback", reply.template)
            return {"text": fallback_text(reply) or mrkdwn_escape(reply.template)}

    def _channel_for(self, target: str, client: WebClient) -> str:
        if not target.startswith("csm:"):
            return target
        csm_id = int(target.split(":", 1)[1])
        with Session(self.container.engine) as session:
            csm = session.get(CSM, csm_id)
        if csm is None:
            raise DeliveryError("no_slack_user", permanent=True)
        if csm.slack_user_id:
            return csm.slack_user_id
        try:
            found = client.users_lookupByEmail(email=csm.email)
        except SlackApiError as exc:
            raise delivery_error(exc) from exc
        except (SlackClientError, OSError) as exc:
            raise DeliveryError("connection_error") from exc
        user_id = (found.get("user") or {}).get("id")
        if not user_id:
            raise DeliveryError("no_slack_user", permanent=True)
        # Posting to a user id lands in the app's DM with them.
        return str(user_id)


def _client(token: str | None, base_url: str | None) -> WebClient:
    """A Web API client that retries nothing (an SDK retry of a post may be a second post)."""
    kwargs: dict[str, Any] = {"token": token, "timeout": TIMEOUT, "retry_handlers": []}
    if base_url:
        kwargs["base_url"] = base_url
    return WebClient(**kwargs)


def _without_retries(client: WebClient) -> WebClient:
    return WebClient(
        token=client.token, base_url=client.base_url, timeout=client.timeout, retry_handlers=[]
    )


def _granted_scopes(headers: Any) -> set[str]:
    for key, value in dict(headers).items():
        if key.lower() == "x-oauth-scopes":
            raw = value[0] if isinstance(value, list | tuple) else value
            return {s.strip() for s in str(raw).split(",") if s.strip()}
    return set()


def _error_code(exc: SlackApiError) -> str:
    data = exc.response.data
    return str(data.get("error") or "") if isinstance(data, dict) else ""


def delivery_error(exc: SlackApiError) -> DeliveryError:
    """Classify a Web API failure: 429 → retry after; 5xx → the post may be there (look it up);
    token or scopes refused → pause the workspace; dead channel or bad message → permanent."""
    response = exc.response
    status = int(response.status_code or 0)
    error = _error_code(exc)
    if status == 429 or error == "ratelimited":
        header = (response.headers or {}).get("Retry-After") or (response.headers or {}).get(
            "retry-after"
        )
        retry_after = _seconds(header)
        return DeliveryError("ratelimited", retry_after=retry_after or DEFAULT_RETRY_AFTER)
    if status >= 500 or error in ("fatal_error", "internal_error", "service_unavailable"):
        # Slack: "it's possible some aspect of the operation succeeded before the error".
        return DeliveryError(error or f"http_{status}", unknown=True)
    if error in WORKSPACE_ERRORS:
        needed = response.data.get("needed") if isinstance(response.data, dict) else None
        reason = f"missing_scope:{needed}" if error == "missing_scope" and needed else error
        return DeliveryError(reason, workspace=True)
    if error in PERMANENT_ERRORS:
        return DeliveryError(error, permanent=True)
    return DeliveryError(error or f"http_{status}")


def _seconds(value: Any) -> float | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
