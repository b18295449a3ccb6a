"""Every reply a user can get renders as valid Block Kit, through the real /csm command."""

from __future__ import annotations

import json

import pytest

from bot.slack.app import SlackEdge
from bot.slack.messages import MESSAGE_BLOCKS, fit_blocks, surface
from tests.slack.conftest import DANA, ack_json, assert_valid_blocks, command_body, dispatch


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("what changed at acme this week", "What changed — Acme Corp"),
        ("overdue milestones", "Overdue milestones — your accounts"),
        ("overdue milestones for acme", "Overdue milestones — Acme Corp"),
        ("my accounts", "Portfolio — your accounts"),
        ("escalate acme sev2 login is broken", "Escalation #"),
        ("initech", "Initech — "),
        ("health of a", "Which account?"),
        ("blah blah", "I didn't catch that."),
        ("renewals next quarter", "Renewals — "),
        ("anything I should worry about?", "Accounts at risk"),
        ("health map", "Health map"),
        ("team map", "*Protect* ("),
    ],
)
def test_every_answer_is_valid_block_kit(edge: SlackEdge, text: str, expect: str) -> None:
    answer = ack_json(dispatch(edge, command_body("/csm", text, user=DANA)))
    assert_valid_blocks(answer["blocks"])
    assert expect in json.dumps(answer["blocks"], ensure_ascii=False)
    assert answer["text"]


def test_an_escalation_is_posted_for_the_channel(edge: SlackEdge) -> None:
    answer = ack_json(dispatch(edge, command_body("/csm", "escalate acme sev1 outage", user=DANA)))
    assert answer["response_type"] == "in_channel"
    assert not any(b.get("block_id") == "share" for b in answer["blocks"])


def test_the_backstop_cuts_oversized_block_lists() -> None:
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"row {i}"}} for i in range(80)
    ]
    cut = fit_blocks(blocks, MESSAGE_BLOCKS)
    assert len(cut) == 50 and cut[-1]["elements"][0]["text"] == "…and 31 more not shown here"
    big = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}} for _ in range(10)]
    cut = fit_blocks(big, MESSAGE_BLOCKS, 12_000)
    assert len(json.dumps(cut)) <= 12_000 and "more not shown" in json.dumps(cut[-1])
    assert_valid_blocks(cut)


def test_home_error_view_is_valid() -> None:
    view = surface("home_error", {"message": "<!channel> database down"})
    assert_valid_blocks(view["blocks"], limit=100)
    assert "&lt;!channel&gt;" in view["blocks"][0]["text"]["text"]


def test_an_account_renewal_answer(edge: SlackEdge) -> None:
    answer = ack_json(dispatch(edge, command_body("/csm", "when does acme renew?", user=DANA)))
    assert_valid_blocks(answer["blocks"])
    assert answer["blocks"][0]["text"]["text"] == "Renewal — Acme Corp"
