"""manifest.yml declares exactly what the app listens to, within Slack's manifest limits."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.slack.listeners.commands import COMMANDS

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def test_manifest_matches_the_app() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert len(manifest["display_information"]["name"]) <= 35
    commands = manifest["features"]["slash_commands"]
    assert {c["command"] for c in commands} == {*COMMANDS, "/csm"}
    for command in commands:
        assert 2 <= len(command["command"]) <= 32 and command["command"].startswith("/")
        assert command["url"].endswith("/slack/events")
        assert command["description"]
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_home_opened",
        "app_mention",
        "message.im",
    }
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # What the code calls: users.info + email, conversations.info, chat.postMessage, DMs.
    assert {"commands", "chat:write", "users:read", "users:read.email", "channels:read"} <= scopes
    assert {"app_mentions:read", "im:history"} <= scopes
    # files_upload_v2 (charts, QBR decks) and conversations.open for the DM they go to.
    assert {"files:write", "im:write"} <= scopes
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
