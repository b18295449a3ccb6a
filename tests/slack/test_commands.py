"""Slash commands answer in the ack, privately, with a Share button, within Block Kit limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import Session, select

from bot.slack.app import SlackEdge
from storage.models import Account, Milestone, Objective, SuccessPlan
from tests.slack.conftest import (
    ALEX,
    MARCO,
    STRANGER,
    ack_json,
    assert_valid_blocks,
    command_body,
    dispatch,
    mrkdwn_texts,
)
from tests.slack.fake_slack import FakeSlack


def run(edge: SlackEdge, command: str, text: str = "", **kwargs: str) -> dict:
    answer = ack_json(dispatch(edge, command_body(command, text, **kwargs)))
    if "blocks" in answer:
        assert_valid_blocks(answer["blocks"])
    return answer


def share_value(answer: dict) -> dict | None:
    for block in answer["blocks"]:
        if block.get("block_id") == "share":
            return json.loads(block["elements"][0]["value"])
    return None


def test_health_is_a_private_card_with_a_share_button(edge: SlackEdge) -> None:
    answer = run(edge, "/health", "acme")
    assert answer["response_type"] == "ephemeral"
    assert answer["blocks"][0]["text"]["text"].startswith("Acme Corp — ")
    assert "Acme Corp" in answer["text"]
    assert share_value(answer) == {"k": "health", "a": 1}
    # Dana owns Acme: the card offers her the sentiment buttons.
    action_ids = {
        e["action_id"] for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]
    }
    assert {"sentiment_green", "sentiment_amber", "sentiment_red"} <= action_ids


def test_plan_has_a_status_control_per_milestone_for_the_owner(edge: SlackEdge) -> None:
    answer = run(edge, "/plan", "acme")
    with Session(edge.services.container.engine) as session:
        ids = session.exec(select(Milestone.id).where(Milestone.account_id == 1)).all()
    menus = {
        b["block_id"]: b["accessory"]
        for b in answer["blocks"]
        if b.get("accessory", {}).get("action_id") == "milestone_menu"
    }
    assert set(menus) == {f"ms-{i}" for i in ids}
    some_id = ids[0]
    values = [o["value"] for o in menus[f"ms-{some_id}"]["options"]]
    assert values == [
        f"status:{some_id}:done",
        f"status:{some_id}:in_progress",
        f"status:{some_id}:at_risk",
        f"status:{some_id}:blocked",
        f"edit:{some_id}",
    ]
    assert share_value(answer) == {"k": "plan", "a": 1}


def test_plan_for_someone_who_may_not_change_it_has_no_controls(edge: SlackEdge) -> None:
    answer = run(edge, "/plan", "acme", user=MARCO)
    assert not any(b.get("accessory") for b in answer["blocks"])
    assert "Only the owner" in json.dumps(answer["blocks"])
    # Someone with no person record sees no plan at all, only who can add them.
    stranger = run(edge, "/plan", "acme", user=STRANGER)
    assert "Acme" not in json.dumps(stranger)
    assert "Ask Robin Admin (an admin) to add you" in stranger["text"]


def test_renewals_and_risks(edge: SlackEdge) -> None:
    renewals = run(edge, "/renewals", "30")
    assert renewals["blocks"][0]["text"]["text"] == "Renewals — next 30 days"
    assert share_value(renewals) == {"k": "renewals", "t": "30"}
    risks = run(edge, "/risks")
    assert risks["blocks"][0]["text"]["text"] == "Accounts at risk"
    assert "Acme Corp" in json.dumps(risks["blocks"])


def test_csm_help_and_questions(edge: SlackEdge) -> None:
    help_ = run(edge, "/csm", "help")
    assert "What I can do" in help_["blocks"][0]["text"]["text"]
    assert share_value(help_) is None  # nothing worth sharing
    assert "What I can do" in json.dumps(run(edge, "/csm")["blocks"])
    answer = run(edge, "/csm", "how is globex doing?")
    assert answer["blocks"][0]["text"]["text"].startswith("Globex — ")
    # Shared later, it re-asks the card by account id, not the free text.
    assert share_value(answer) == {"k": "health", "a": 2}


def test_csm_settings_opens_the_modal(edge: SlackEdge, fake: FakeSlack) -> None:
    response = dispatch(edge, command_body("/csm", "settings", response_url=fake.response_url()))
    assert response.status == 200 and response.body == ""
    [call] = fake.calls_to("views.open")
    view = call.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == "settings"
    assert_valid_blocks(view["blocks"], limit=100)
    assert {b.get("block_id") for b in view["blocks"]} >= {"digest_time", "timezone"}


def test_unknown_user_gets_a_clear_refusal_for_settings(edge: SlackEdge, fake: FakeSlack) -> None:
    answer = run(edge, "/csm", "settings", user=STRANGER)
    assert "don't know you" in answer["text"]
    assert fake.calls_to("views.open") == []


def test_unknown_and_empty_account_names(edge: SlackEdge) -> None:
    answer = run(edge, "/health", "acm corp")
    assert "Acme Corp" in json.dumps(answer)  # did you mean…
    assert "Which account" in run(edge, "/health")["text"]


def test_identity_by_email_is_looked_up_once_and_remembered(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    run(edge, "/health", "acme", user=ALEX)
    run(edge, "/plan", "acme", user=ALEX)
    assert len(fake.calls_to("users.info")) == 1
    with Session(edge.services.container.engine) as session:
        assert session.exec(select(Account).where(Account.id == 1)).one()
        from storage.models import CSM

        assert (
            session.exec(select(CSM).where(CSM.email == "alex@example.com")).one().slack_user_id
            == ALEX
        )


def test_account_names_are_escaped_so_they_ping_nobody(edge: SlackEdge) -> None:
    with Session(edge.services.container.engine) as session:
        acme = session.get(Account, 1)
        assert acme is not None
        acme.name = "<!channel> Acme <https://evil.example|click>"
        acme.updated_at = datetime.now(UTC)  # the name index notices renames by updated_at
        session.add(acme)
        session.commit()
    for command, text in (("/health", "acme"), ("/plan", "acme"), ("/risks", "")):
        answer = run(edge, command, text)
        texts = [*mrkdwn_texts(answer["blocks"]), answer["text"]]
        assert any("&lt;!channel&gt; Acme &lt;https://evil.example|click&gt;" in t for t in texts)
        assert not any("<!channel>" in t or "<https://evil" in t for t in texts), command


def test_external_channel_shows_only_its_mapped_account(edge: SlackEdge, fake: FakeSlack) -> None:
    fake.add_channel("CEXT", ext_shared=True)
    with Session(edge.services.container.engine) as session:
        globex = session.get(Account, 2)
        assert globex is not None and globex.name == "Globex"
        globex.slack_channel_id = "CEXT"
        session.add(globex)
        session.commit()
    # By default a channel shared with another organisation shows no account, not even its own.
    refused = run(edge, "/health", "globex", channel="CEXT")
    assert "Globex" not in str(refused) and "shared with another organisation" in str(refused)
    edge.services.container.settings.shared_channel_answers = True
    shown = run(edge, "/health", "globex", channel="CEXT")
    assert shown["blocks"][0]["text"]["text"].startswith("Globex — ")
    for command, text in (
        ("/health", "acme"),
        ("/plan", "acme"),
        ("/risks", ""),
        ("/renewals", ""),
    ):
        answer = run(edge, command, text, channel="CEXT")
        assert "shared with another organisation" in answer["text"], command
        assert "Acme" not in json.dumps(answer), command
    # The same questions in an internal channel answer normally.
    assert run(edge, "/health", "acme", channel="C111")["blocks"][0]["type"] == "header"
    assert len(fake.calls_to("conversations.info")) == 2  # once per channel, then cached


def test_long_plans_are_cut_with_and_n_more(edge: SlackEdge) -> None:
    with Session(edge.services.container.engine) as session:
        plan = session.exec(select(SuccessPlan).where(SuccessPlan.account_id == 1)).first()
        assert plan is not None and plan.id is not None
        objective = Objective(plan_id=plan.id, title="Everything everywhere", position=99)
        session.add(objective)
        session.flush()
        assert objective.id is not None
        for i in range(120):
            session.add(
                Milestone(
                    objective_id=objective.id,
                    account_id=1,
                    title=f"Step {i}",
                    position=i,
                    updated_at=datetime.now(UTC),
                )
            )
        session.commit()
    answer = run(edge, "/plan", "acme")
    assert len(answer["blocks"]) <= 50
    assert "more milestones" in json.dumps(answer["blocks"])
    assert share_value(answer) is not None  # the Share button survives the cut


def test_long_portfolio_lists_are_cut(edge: SlackEdge) -> None:
    # The admin sees every account: 60 in the demo, more than a message shows.
    from storage.models import CSM

    with Session(edge.services.container.engine) as session:
        admin = session.exec(select(CSM).where(CSM.role == "admin")).one()
        admin.slack_user_id = "UADMIN"
        session.add(admin)
        session.commit()
    answer = run(edge, "/renewals", "365", user="UADMIN")
    assert "all accounts" in json.dumps(answer["blocks"])
    assert "more renewals" in json.dumps(answer["blocks"])
    assert len(answer["blocks"]) <= 50


def test_renewals_and_risks_understand_words(edge: SlackEdge) -> None:
    quarter = run(edge, "/renewals", "next quarter")
    assert "quarter" in quarter["blocks"][0]["text"]["text"]
    team = run(edge, "/risks", "for the team", user=ALEX)
    assert "your team's accounts" in json.dumps(team["blocks"])


def test_a_channel_the_bot_cannot_see_shows_no_data_and_says_why(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    fake.fail("conversations.info", error="channel_not_found")
    answer = run(edge, "/health", "acme", channel="CPRIVATE")
    assert "not a member" in answer["text"]
    assert "Acme" not in json.dumps(answer["blocks"])
    # A DM the bot is not part of is nobody's shared channel: answered normally.
    fake.fail("conversations.info", error="channel_not_found")
    assert run(edge, "/health", "acme", channel="DOTHER")["blocks"][0]["type"] == "header"


def test_a_long_rate_limit_does_not_hold_the_ack(edge: SlackEdge, fake: FakeSlack) -> None:
    import time

    fake.fail("users.info", status=429, error="ratelimited", retry_after=30)
    started = time.monotonic()
    answer = run(edge, "/health", "acme", user=MARCO)
    assert time.monotonic() - started < 2.5  # answered within Slack's 3 s, not after 30
    # Slack could not say who Marco is: nothing is shown until it can, and he is told why.
    assert "couldn't check who you are" in answer["text"]
    assert "Acme" not in json.dumps(answer)
    assert len(fake.calls_to("users.info")) == 1
