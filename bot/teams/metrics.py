"""Prometheus counters for the Teams edge (served by GET /metrics, next to the Slack ones)."""

from __future__ import annotations

from prometheus_client import Counter

ACTIVITIES = Counter(
    "csm_teams_activities_total",
    "Teams activities that passed the JWT check, by kind (message, invoke name, conversationUpdate...)",
    ["kind"],
)
REFUSED = Counter(
    "csm_teams_refused_total",
    "Requests to /api/messages refused before a turn ran, by reason",
    ["reason"],
)
CARD_ACTIONS = Counter(
    "csm_teams_card_actions_total", "Adaptive Card Action.Execute invokes, by verb", ["verb"]
)
HANDLER_ERRORS = Counter(
    "csm_teams_handler_errors_total",
    "Teams requests a handler refused or rejected (permission, validation, not found)",
    ["error"],
)
CHATS_CREATED = Counter(
    "csm_teams_chats_created_total",
    "1:1 chats the bot opened to reach a CSM who had never written to it, by outcome",
    ["outcome"],
)
