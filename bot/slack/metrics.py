"""Prometheus counters for the Slack edge (served by GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

REQUESTS = Counter(
    "csm_slack_requests_total", "Slack requests that reached a listener, by kind", ["kind"]
)
HANDLER_ERRORS = Counter(
    "csm_slack_handler_errors_total",
    "Requests a handler refused or rejected (permission, validation, not found)",
    ["error"],
)
DUPLICATE_EVENTS = Counter(
    "csm_slack_duplicate_events_total", "Events API retries recognised by event_id and skipped"
)
