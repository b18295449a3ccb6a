"""Events API: mentions and DMs answered in thread, bots and edits ignored, retries run once, App Home."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, func, select

from bot.slack.app import SlackEdge
from storage.models import CSM, ConversationState
from storage.platform_models import SlackEventReceipt
from tests.slack.conftest import (
    DANA,
    MARCO,
    assert_valid_blocks,
    dispatch,
    event_body,
    mrkdwn_texts,
)
from tests.slack.fake_slack import BOT_USER_ID, FakeSlack

JSON = "application/json"


def send(edge: SlackEdge, body: str, headers: dict[str, str] | None = None) -> None:
    response = dispatch(edge, body, content_type=JSON, headers=headers)
    assert response.status == 200, response.body


def posts(fake: FakeSlack) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls_to("chat.postMessage")]


def test_a_mention_is_answered_in_its_thread(edge: SlackEdge, fake: FakeSlack) -> None:
    body = event_body(
        "app_mention.json",
        text=f"<@{BOT_USER_ID}> how is globex doing?",
        user=DANA,
        ts="1700000100.000100",
    )
    send(edge, body)
    [post] = posts(fake)
    assert post["channel"] == "C111"
    assert post["thread_ts"] == "1700000100.000100"
    assert_valid_blocks(post["blocks"])
    assert post["blocks"][0]["text"]["text"].startswith("Globex — ")


def test_a_top_level_dm_is_answered_in_a_thread_and_remembered(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    send(edge, event_body("message_im.json", text="how is acme doing?", user=DANA))
    [post] = posts(fake)
    assert (post["channel"], post["thread_ts"]) == ("D111", "1726133700.887259")
    assert post["blocks"][0]["text"]["text"].startswith("Acme Corp — ")
    with Session(edge.services.container.engine) as session:
        state = session.get(ConversationState, "slack:D111:1726133700.887259")
        assert state is not None and state.account_id == 1


def test_a_follow_up_in_the_dm_thread_uses_the_thread(edge: SlackEdge, fake: FakeSlack) -> None:
    send(
        edge,
        event_body(
            "message_im.json", text="how is globex doing?", user=DANA, ts="1726133698.626339"
        ),
    )
    follow_up = event_body(
        "message_im_assistant_thread.json",
        event_id="Ev222",
        text="and its success plan?",
        user=DANA,
    )
    send(edge, follow_up)
    first, second = posts(fake)
    assert first["blocks"][0]["text"]["text"].startswith("Globex — ")
    assert second["thread_ts"] == "1726133698.626339"  # the parent's ts: same thread
    assert second["blocks"][0]["text"]["text"] == "Success plan — Globex"


def test_bot_messages_and_edits_are_ignored(edge: SlackEdge, fake: FakeSlack) -> None:
    send(edge, event_body("message_im.json", event_id="Ev1", bot_id="B999", text="how is acme?"))
    send(
        edge,
        event_body(
            "message_im.json",
            event_id="Ev2",
            subtype="message_changed",
            text="how is acme?",
        ),
    )
    send(edge, event_body("app_mention.json", event_id="Ev3", bot_id="B999", text="<@U1> risks"))
    assert posts(fake) == []


def test_a_retried_event_is_processed_once(edge: SlackEdge, fake: FakeSlack) -> None:
    body = event_body(
        "app_mention.json", event_id="EvRETRY", text="<@U1> what renews next quarter?", user=DANA
    )
    send(edge, body)
    # Slack did not see our 200 in time and retries the very same event.
    send(edge, body, headers={"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"})
    send(edge, body, headers={"x-slack-retry-num": "2", "x-slack-retry-reason": "http_timeout"})
    assert len(posts(fake)) == 1
    with Session(edge.services.container.engine) as session:
        assert session.exec(select(func.count()).select_from(SlackEventReceipt)).one() == 1


def test_an_answer_in_an_external_channel_shows_no_other_account(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    fake.add_channel("CEXT", ext_shared=True)
    send(edge, event_body("app_mention.json", channel="CEXT", text="<@U1> how is acme?", user=DANA))
    [post] = posts(fake)
    assert "Acme" not in json.dumps(post)
    assert "shared with another organisation" in post["text"]


def test_app_home_shows_the_portfolio_within_100_blocks(edge: SlackEdge, fake: FakeSlack) -> None:
    send(
        edge,
        event_body(
            "message_im.json",
            event_id="EvHome",
            type="app_home_opened",
            tab="home",
            user=DANA,
            channel="D111",
        ),
    )
    [call] = fake.calls_to("views.publish")
    assert call.args["user_id"] == DANA
    view = call.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["type"] == "home"
    assert_valid_blocks(view["blocks"], limit=100)
    text = "\n".join(mrkdwn_texts(view["blocks"]))
    assert "Acme Corp" in text  # Dana's amber account
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert headers[1:] == ["Red and amber", "Renewals in the next 30 days", "Overdue milestones"]


def test_app_home_for_everyone_is_cut_to_fit(edge: SlackEdge, fake: FakeSlack) -> None:
    # The admin sees every account: the longest Home there is.
    with Session(edge.services.container.engine) as session:
        admin = session.exec(select(CSM).where(CSM.role == "admin")).one()
        admin.slack_user_id = "UNEW"
        session.add(admin)
        session.commit()
    send(
        edge,
        event_body(
            "message_im.json",
            event_id="EvHome2",
            type="app_home_opened",
            tab="home",
            user="UNEW",
            channel="D222",
        ),
    )
    view = fake.calls_to("views.publish")[0].args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert_valid_blocks(view["blocks"], limit=100)
    assert "more" in json.dumps(view["blocks"])


def test_a_mention_in_a_channel_with_a_guest_is_answered_to_the_asker_alone(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    """The thread reply would be read by the guest: the answer goes ephemeral, nothing public."""
    fake.add_guest("UGUEST", "pat@acme.example")
    fake.set_members("C111", [DANA, "UGUEST"])
    send(edge, event_body("app_mention.json", text="<@U1> how is acme doing?", user=DANA))
    assert posts(fake) == []
    [private] = [c.args for c in fake.calls_to("chat.postEphemeral")]
    assert private["user"] == DANA and private["channel"] == "C111"
    blocks = (
        private["blocks"] if isinstance(private["blocks"], list) else json.loads(private["blocks"])
    )
    assert "Only you can see this" in json.dumps(blocks[0])
    assert any("Acme Corp" in json.dumps(b) for b in blocks[1:])
    assert_valid_blocks(blocks)


def test_a_mention_in_a_channel_of_colleagues_is_answered_in_the_thread(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    fake.set_members("C111", [DANA, MARCO])
    send(edge, event_body("app_mention.json", text="<@U1> how is acme doing?", user=DANA))
    [post] = posts(fake)
    assert post["channel"] == "C111" and post["blocks"][0]["text"]["text"].startswith("Acme Corp")
    assert fake.calls_to("chat.postEphemeral") == []
