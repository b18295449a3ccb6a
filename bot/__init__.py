"""Platform edges and wiring: Slack, Teams, the local chat, the HTTP server and the CLI."""
