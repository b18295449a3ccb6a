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
LATE_ANSWERS = Counter(
    "csm_slack_late_answers_total",
    "Requests acknowledged before their work finished (answered afterwards)",
)
WORK_REFUSED = Counter(
    "csm_slack_work_refused_total", "Requests turned away because the work queue was full"
)
WEB_API_FAILURES = Counter(
    "csm_slack_web_api_failures_total",
    "Web API calls that failed on the network (timeout, dropped connection)",
    ["method"],
)
