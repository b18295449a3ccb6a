"""Every reply a user can get renders as valid Block Kit, through the real /csm command."""

from __future__ import annotations

import json

import pytest

from bot.slack.app import SlackEdge
from bot.slack.messages import MESSAGE_BLOCKS, fit_blocks, surface
from tests.slack.conftest import (
    DANA,
    ack_json,
    assert_valid_blocks,
    click_confirm,
    command_body,
    dispatch,
    mrkdwn_texts,
)
from tests.slack.fake_slack import FakeSlack


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("what changed at acme this week", "What changed — Acme Corp"),
        ("overdue milestones", "Overdue milestones — your book"),
        ("overdue milestones for acme", "Overdue milestones — Acme Corp"),
        ("my accounts", "Portfolio — your accounts"),
        ("escalate acme sev2 login is broken", "Open a SEV2 escalation for Acme Corp"),
        ("escalate acme", "What happened at Acme Corp, and how bad is it?"),
        (
            "renewals > $100k next quarter",
            "Renewals next quarter (1 Jan – 31 Mar 2027), your book, over $100k: 1 renewal",
        ),
        ("acme vs globex", "Side by side"),
        ("GRR for my book this year", "GRR — your book"),
        ("why did acme drop", "Why the score moved — Acme Corp"),
        ("any milestones due this week?", "Milestones due — your book"),
        ("expansion signals", "Expansion signals — your book"),
        ("what should I focus on today?", "Your focus for today"),
        ("upcoming qbrs", "QBRs — your book"),
        ("ack escalation 1", "Acknowledge escalation #1"),
        ("mark the acme reporting workshop done", "Mark “Reporting workshop” (Acme Corp) done?"),
        ("initech", "Initech — "),
        ("health of a", "Which account?"),
        ("blah blah", "I can't help with that."),
        ("order more coffee for the office", "I can't help with that."),
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


def test_an_escalation_is_posted_for_the_channel_once_confirmed(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    asked = ack_json(
        dispatch(
            edge, command_body("/csm", "escalate acme sev1 SSO outage for all users", user=DANA)
        )
    )
    assert asked["response_type"] == "ephemeral"
    click_confirm(edge, asked["blocks"], response_url=fake.response_url())
    shared = fake.calls_to("webhook:r1")[0].args
    assert shared["response_type"] == "in_channel"
    assert not any(b.get("block_id") == "share" for b in shared["blocks"])


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


def test_new_answers_escape_names_and_stay_within_block_kit(edge: SlackEdge) -> None:
    from sqlmodel import Session, select

    from storage.models import Account

    with Session(edge.services.container.engine) as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        acme.name = "Acme <!channel> & <https://evil.example|click>"
        acme.aliases = ["Acme"]
        session.add(acme)
        session.commit()
    for text in (
        "acme vs globex",
        "why did acme drop",
        "what should I focus on today?",
        "upcoming qbrs",
        "nps for acme",
        "expansion signals for acme",
        "escalate acme",
    ):
        answer = ack_json(dispatch(edge, command_body("/csm", text, user=DANA)))
        assert_valid_blocks(answer["blocks"])
        # Slack parses mrkdwn (and the fallback text); plain_text headers are shown as written.
        parsed = "\n".join([answer["text"], *mrkdwn_texts(answer["blocks"])])
        assert "<!channel>" not in parsed and "<https://evil" not in parsed, text
        assert "&lt;!channel&gt;" in parsed, text
