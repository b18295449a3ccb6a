"""Global bolt middleware: attaches the asker's ChatContext (built lazily, after the ack) to every request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltContext, BoltResponse

from bot.slack.metrics import REQUESTS
from bot.slack.services import SlackServices
from handlers.context import ChatContext


def request_kind(body: dict[str, Any]) -> str:
    """command, block_actions, view_submission, event:<type>... for metrics and logs."""
    if "command" in body:
        return "command"
    kind = str(body.get("type") or "unknown")
    if kind == "event_callback":
        event = body.get("event")
        return "event:" + str(event.get("type") if isinstance(event, dict) else None)
    return kind


def request_key(body: dict[str, Any]) -> str | None:
    """The platform's own id of a request, for whatever it creates (ChatContext.request_key).

    A modal's view id survives resubmission; a command's or click's trigger id is unique to it.
    """
    view = body.get("view")
    if body.get("type") == "view_submission" and isinstance(view, dict) and view.get("id"):
        return f"slack:view:{view['id']}"
    trigger = body.get("trigger_id")
    return f"slack:trigger:{trigger}" if isinstance(trigger, str) and trigger else None


def home_of(context: BoltContext) -> tuple[str | None, str | None] | None:
    """Our workspace and Enterprise Grid ids, as bolt's authorization of this request found them."""
    result = context.authorize_result
    if result is None:
        return None
    return (result.team_id, result.enterprise_id)


class LazyChat:
    """A ChatContext built on first use (in the worker, after the ack) and then reused."""

    def __init__(self, build: Callable[[], ChatContext]) -> None:
        self._build = build
        self._value: ChatContext | None = None
        self._lock = threading.Lock()

    def get(self) -> ChatContext:
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value


def chat_context_middleware(services: SlackServices) -> Callable[..., BoltResponse]:
    """Attaches how to build the ChatContext; nothing here calls Slack or the database.

    users.info and conversations.info on a cold cache take as long as Slack takes: they run when
    a listener's work first asks for the context, never before the 3-second acknowledgement.
    """

    def attach_chat_context(
        context: BoltContext, body: dict[str, Any], next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        kind = request_kind(body)
        REQUESTS.labels(kind).inc()
        if not kind.startswith("event:"):
            user_id, channel_id = context.user_id, context.channel_id
            client, team_id, key = context.client, context.team_id, request_key(body)
            home = home_of(context)
            context["chat"] = LazyChat(
                lambda: services.chat_context(
                    user_id,
                    channel_id,
                    client=client,
                    team_id=team_id,
                    request_key=key,
                    home=home,
                )
            )
        return next()

    return attach_chat_context
