"""The scheduler's Slack notifier: renders a Reply as Block Kit and posts it; failures become DeliveryError."""

from __future__ import annotations

import logging
from typing import Any

from jinja2 import TemplateNotFound
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlmodel import Session, select

from bot.container import Container
from bot.render import mrkdwn_escape
from bot.slack.messages import fallback_text, message
from bot.slack.services import CHANNEL_TTL, TTLCache, web_client
from handlers import access
from handlers.context import ChatContext
from handlers.reply import Reply
from scheduler.notifier import DeliveryError
from storage.models import CSM, Account

logger = logging.getLogger(__name__)

# Errors no retry can fix: the channel or the bot's access is gone, or Slack rejected the message.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "account_inactive",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
        "restricted_action",
        "cannot_dm_bot",
        "user_not_found",
        "users_not_found",
        "user_disabled",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "no_slack_user",
    }
)
DEFAULT_RETRY_AFTER = 1.0
# Why a post was not made in a channel shared with another organisation (recorded, reported).
SHARED_CHANNEL = (
    "shared_channel: the channel is shared with another organisation (or its sharing cannot be "
    "checked), and only posts about the account mapped to it go there"
)


class SlackNotifier:
    """Posts scheduled messages (reminders, alerts, digests) with chat.postMessage.

    Targets are a channel id ("C0123") or "csm:<id>" for a CSM's DM (their stored slack_user_id,
    else users.lookupByEmail). The client does not retry 429s itself: the outbox honours
    Retry-After, so a rate limit never blocks a dispatcher thread. Posts go to SLACK_BOT_TOKEN's
    workspace (with multi-workspace install and no SLACK_BOT_TOKEN: the latest installed one).
    """

    platform = "slack"

    def __init__(self, container: Container, *, client: WebClient | None = None) -> None:
        self.container = container
        self._client = client
        # Whether a channel is shared with another organisation, by channel id (it rarely changes).
        self._shared: TTLCache[str, bool] = TTLCache(CHANNEL_TTL, maxsize=1000)

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
                settings = settings.model_copy(update={"slack_bot_token": token})
                return web_client(settings, retry_rate_limits=False)
        self._client = web_client(settings, retry_rate_limits=False)
        return self._client

    def send(self, target: str, reply: Reply) -> str:
        client = self.client
        channel = self._channel_for(target, client)
        if channel == target and not self._may_post(client, channel, reply):
            raise DeliveryError(SHARED_CHANNEL, permanent=True)
        payload = self._payload(reply)
        try:
            response = client.chat_postMessage(channel=channel, **payload)
        except SlackApiError as exc:
            raise delivery_error(exc) from exc
        except (SlackClientError, OSError) as exc:
            raise DeliveryError("connection_error") from exc
        ts = str(response.get("ts") or "")
        if reply.attachments:
            self._send_files(client, target, reply, str(response.get("channel") or channel), ts)
        return ts

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

        A channel whose sharing cannot be checked counts as shared (docs/access.md).
        """
        if channel[:1] in ("U", "W"):
            return True  # a user id: the post lands in the app's DM with them
        shared = self._shared.get(channel)
        if shared is None:
            try:
                data = client.conversations_info(channel=channel).get("channel") or {}
            except SlackApiError as exc:
                logger.warning("conversations.info for %s failed: %s", channel, exc)
                shared = True
            except (SlackClientError, OSError) as exc:
                raise DeliveryError("connection_error") from exc
            else:
                shared = bool(data.get("is_ext_shared") or data.get("is_pending_ext_shared"))
                self._shared.put(channel, shared)
        if not shared:
            return True
        with Session(self.container.engine) as session:
            mapped = session.exec(select(Account.id).where(Account.slack_channel_id == channel))
            ctx = ChatContext(
                platform="scheduler",
                actor=access.system_actor(),
                today=self.container.today(),
                external=True,
                allowed_account_ids=frozenset(i for i in mapped.all() if i is not None),
            )
        return access.post_shown_here(ctx, reply.template, reply.context)

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


def delivery_error(exc: SlackApiError) -> DeliveryError:
    """Classify a Web API failure: 429 → retry after, 5xx → retry, dead channel or bot → permanent."""
    response = exc.response
    status = int(response.status_code or 0)
    error = str(response.get("error") or "") if isinstance(response.data, dict) else ""
    if status == 429 or error == "ratelimited":
        header = (response.headers or {}).get("Retry-After") or (response.headers or {}).get(
            "retry-after"
        )
        retry_after = _seconds(header)
        return DeliveryError("ratelimited", retry_after=retry_after or DEFAULT_RETRY_AFTER)
    if status >= 500:
        return DeliveryError(f"http_{status}")
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
