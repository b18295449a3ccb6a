"""The admin messages about deliveries render on every platform, within limits, with data escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.render import render_text
from bot.slack.messages import message
from bot.teams.cards import render_card
from handlers.delivery_reports import delivery_paused_reply, delivery_report_reply
from handlers.reply import Reply
from tests.slack.conftest import assert_valid_blocks, mrkdwn_texts

NOW = datetime(2026, 11, 30, 10, tzinfo=UTC)


def failures(count: int) -> list[dict[str, object]]:
    return [
        {
            "id": n,
            "kind": "risk_alert",
            "subject": f"alert:{n}",
            "target": "<!channel>" if n == 0 else f"C{n:04d}",
            "error": "channel_not_found",
            "text": "Acme <https://evil|click>",
        }
        for n in range(count)
    ]


def report(count: int) -> Reply:
    return delivery_report_reply(
        platform="slack",
        cause="channel_not_found",
        since=NOW - timedelta(hours=1),
        until=NOW,
        failures=failures(count),
    )


def paused() -> Reply:
    return delivery_paused_reply(
        platform="slack",
        workspace="default",
        reason="missing_scope:chat:write",
        since=NOW,
        probe_seconds=60,
    )


@pytest.mark.parametrize("reply", [report(1), report(350), paused()], ids=["one", "many", "pause"])
def test_slack_blocks_are_valid_and_escaped(reply: Reply) -> None:
    payload = message(reply)
    assert_valid_blocks(payload["blocks"])
    assert all(
        "<!channel>" not in t and "<https://evil" not in t for t in mrkdwn_texts(payload["blocks"])
    )


@pytest.mark.parametrize("reply", [report(1), report(350), paused()], ids=["one", "many", "pause"])
def test_teams_cards_and_text_render(reply: Reply) -> None:
    card = render_card(reply)
    assert card is not None and card["version"] == "1.5"
    assert render_text(reply).strip()


def test_a_report_of_350_lists_ten_and_counts_the_rest() -> None:
    reply = report(350)
    text = render_text(reply)
    assert "350 deliveries failed on slack: channel_not_found" in text
    assert "…and 340 more" in text
    assert "csm-bot outbox retry --since 2026-11-30T09:00" in text
    assert len(reply.context["window"]["ids"]) == 350
