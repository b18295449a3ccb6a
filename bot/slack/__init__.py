"""The Slack edge: a bolt app whose listeners parse a request, call a handler and render its Reply."""
