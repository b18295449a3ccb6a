"""What every listener does the same way: run a handler for a ChatContext and shape the answer for Slack."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.slack.asks import Ask, run, share_of
from bot.slack.messages import message, notice
from bot.slack.metrics import HANDLER_ERRORS
from bot.slack.services import (
    WEB_API_ERRORS,
    BoundedRateLimitRetryHandler,
    SlackServices,
    web_api_failed,
)
from bot.slack.worker import BUSY, FAILED, LATE
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


BUSY_TEXT = "I'm swamped right now and couldn't start on that. Try again in a moment."
APOLOGY = "Sorry, something went wrong on my side. It has been logged."


def text_field(data: dict[str, Any], key: str) -> str:
    """A string field of a payload; anything else (missing, a number, a list) reads as ""."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


_ID = re.compile(r"^[0-9]{1,18}$")


def as_id(text: str) -> int | None:
    """A database id written in a button value ("42"); None for anything else."""
    return int(text) if _ID.match(text) else None


def ack_or_later(
    services: SlackServices,
    ack: Ack,
    work: Callable[[], dict[str, Any] | None],
    *,
    response_url: str | None,
) -> None:
    """Ack with what ``work`` returns if it is ready within the worker's budget, else ack empty
    now and post it to ``response_url`` when it is. ``work`` returns the answer (ack arguments)
    or None when it answered some other way (a modal opened)."""

    def late(payload: dict[str, Any] | None) -> None:
        if payload:
            send_to_response_url(response_url, payload)

    outcome = services.worker.run(work, late=late)
    if outcome is BUSY:
        ack(response_type="ephemeral", **notice(BUSY_TEXT))
    elif outcome is FAILED:
        ack(response_type="ephemeral", **notice(APOLOGY))
    elif outcome is LATE or outcome is None:
        ack()
    else:
        ack(**outcome)  # type: ignore[arg-type]


def after_ack(services: SlackServices, work: Callable[[], Any]) -> None:
    """Run a click's work after its (empty) ack; dropped, and logged, when the queue is full."""
    if not services.worker.later(work):
        logger.warning("a Slack interaction was acknowledged but not handled: queue full")


def chat_of(context: BoltContext) -> ChatContext:
    """The ChatContext of this request (built on first use: call it from the work, not the ack)."""
    return context["chat"].get()


class InternalError(HandlerError):
    """A bug or an outage on our side, told to the user plainly (the traceback goes to the log)."""


def handled(services: SlackServices, work: Callable[[Session], Reply]) -> Reply | HandlerError:
    """Run a handler in one unit of work; an error the user caused comes back instead of raising.

    Anything else is logged with its traceback and answered with a short apology: a Slack user
    would otherwise see only "dispatch_failed", or nothing at all after a lazy listener.
    """
    for attempt in (1, 2):
        try:
            with services.session() as session:
                return work(session)
        except HandlerError as exc:
            # The unit of work rolled back: a refused or invalid change leaves nothing behind.
            HANDLER_ERRORS.labels(type(exc).__name__).inc()
            return exc
        except IntegrityError:
            if attempt == 1:
                # Another request with the same platform id (a resubmitted modal) committed
                # first; run again, and the handler finds what that one created.
                logger.info("unique key taken by a concurrent request; running once more")
                continue
            logger.exception("handler failed")
            break
        except Exception:
            logger.exception("handler failed")
            break
    HANDLER_ERRORS.labels("InternalError").inc()
    return InternalError(APOLOGY)


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
    except WEB_API_ERRORS as exc:
        # The change is saved and acknowledged; a lost follow-up must not turn into a 500.
        web_api_failed("response_url", exc)
        return
    if response.status_code != 200:
        logger.error("response_url post failed: %s %s", response.status_code, response.body)


class Responder:
    """Answers a click through its response_url, like bolt's respond(), but never raises: a
    payload without a response_url, or a post that fails, is logged (the click was acked)."""

    def __init__(self, url: str | None) -> None:
        self.url = url

    @classmethod
    def of(cls, body: dict[str, Any]) -> Responder:
        return cls(text_field(body, "response_url") or None)

    def __call__(self, **payload: Any) -> None:
        send_to_response_url(self.url, payload)


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


MODAL_FAILED = "I couldn't open the form: Slack didn't answer in time. Try again in a moment."


def open_modal(client: WebClient, trigger_id: str, view: dict[str, Any]) -> dict[str, Any] | None:
    """views.open for a trigger (valid for 3 s); on failure, the ephemeral answer that says so."""
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except WEB_API_ERRORS as exc:
        web_api_failed("views.open", exc)
        return {"response_type": "ephemeral", **notice(MODAL_FAILED)}
    return None
