"""What every listener does the same way: run a handler for a ChatContext and shape the answer for Slack."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltContext
from slack_sdk.errors import SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient
from sqlmodel import Session

from bot.slack.asks import Ask, run, share_of
from bot.slack.messages import message, notice
from bot.slack.metrics import HANDLER_ERRORS
from bot.slack.services import BoundedRateLimitRetryHandler, SlackServices
from handlers.context import ChatContext
from handlers.errors import HandlerError
from handlers.reply import Reply

logger = logging.getLogger(__name__)

# Replies worth showing the channel; refusals, help and "which account?" stay private.
SHAREABLE = frozenset(
    {
        "health_card",
        "success_plan",
        "account_changes",
        "milestones_overdue",
        "renewals",
        "risks",
        "my_accounts",
        "qbr_prep",
        "account_renewal",
    }
)


def chat_of(context: BoltContext) -> ChatContext:
    """The ChatContext the middleware attached to this request."""
    return context["chat"]


class InternalError(HandlerError):
    """A bug or an outage on our side, told to the user plainly (the traceback goes to the log)."""


def handled(services: SlackServices, work: Callable[[Session], Reply]) -> Reply | HandlerError:
    """Run a handler in one unit of work; an error the user caused comes back instead of raising.

    Anything else is logged with its traceback and answered with a short apology: a Slack user
    would otherwise see only "dispatch_failed", or nothing at all after a lazy listener.
    """
    try:
        with services.session() as session:
            return work(session)
    except HandlerError as exc:
        # The unit of work rolled back: a refused or invalid change leaves nothing behind.
        HANDLER_ERRORS.labels(type(exc).__name__).inc()
        return exc
    except Exception:
        logger.exception("handler failed")
        HANDLER_ERRORS.labels("InternalError").inc()
        return InternalError("Sorry, something went wrong on my side. It has been logged.")


def ask_reply(services: SlackServices, ctx: ChatContext, ask: Ask) -> Reply | HandlerError:
    models = services.container.health_models
    return handled(services, lambda session: run(session, ctx, models, ask))


def private_payload(result: Reply | HandlerError, ask: Ask | None) -> dict[str, Any]:
    """An ephemeral answer: the rendered Reply with a Share button when it is worth sharing."""
    if isinstance(result, HandlerError):
        return notice(result.message)
    share = None
    if ask is not None and result.template in SHAREABLE:
        share = share_of(ask, result).encoded()
    return message(result, share=share)


def public_payload(result: Reply | HandlerError) -> dict[str, Any]:
    """An answer everyone in the conversation sees (threads, shared messages): no Share button."""
    if isinstance(result, HandlerError):
        return notice(result.message)
    return message(result)


def webhook(url: str) -> WebhookClient:
    """A response_url client that rides out a 429 or a 5xx like the Web API client does."""
    return WebhookClient(
        url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=1),
            BoundedRateLimitRetryHandler(max_retry_count=1),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def send_to_response_url(url: str | None, payload: dict[str, Any], **options: Any) -> None:
    """Post to a response_url; a failure is logged (the user already got the ack) but not hidden."""
    if not url:
        logger.warning("no response_url to post %s to", options or "a reply")
        return
    try:
        response = webhook(url).send_dict({**payload, **options})
    except (SlackClientError, OSError) as exc:
        # The change is saved and acknowledged; a lost follow-up must not turn into a 500.
        logger.error("response_url post failed: %s", exc)
        return
    if response.status_code != 200:
        logger.error("response_url post failed: %s %s", response.status_code, response.body)


# The kind that re-asks a refreshed reply (after a click or a modal) for its Share button.
_REFRESHED_KIND = {"success_plan": "plan", "health_card": "health"}


def refreshed_payload(result: Reply | HandlerError, *, ephemeral: bool) -> dict[str, Any]:
    """A reply that replaces the message it came from: Share button only if the original was private."""
    if isinstance(result, HandlerError) or not ephemeral:
        return public_payload(result)
    account = result.context.get("account") or {}
    kind = _REFRESHED_KIND.get(result.template)
    ask = Ask(kind=kind, account_id=account.get("id")) if kind and account.get("id") else None
    return private_payload(result, ask)
