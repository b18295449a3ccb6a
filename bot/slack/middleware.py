"""Global bolt middleware: attaches the asker's ChatContext (CSM actor, channel limits) to every request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import BoltContext, BoltResponse

from bot.slack.metrics import REQUESTS
from bot.slack.services import SlackServices


def request_kind(body: dict[str, Any]) -> str:
    """command, block_actions, view_submission, event:<type>... for metrics and logs."""
    if "command" in body:
        return "command"
    kind = str(body.get("type") or "unknown")
    if kind == "event_callback":
        return "event:" + str((body.get("event") or {}).get("type"))
    return kind


def chat_context_middleware(services: SlackServices) -> Callable[..., BoltResponse]:
    """Builds the ChatContext once per request, before any listener runs.

    Events are skipped: their listeners build it lazily after the ack (users.info or
    conversations.info on a cold cache must not delay the 3-second acknowledgement).
    """

    def attach_chat_context(
        context: BoltContext, body: dict[str, Any], next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        kind = request_kind(body)
        REQUESTS.labels(kind).inc()
        if not kind.startswith("event:"):
            context["chat"] = services.chat_context(
                context.user_id, context.channel_id, client=context.client, team_id=context.team_id
            )
        return next()

    return attach_chat_context
