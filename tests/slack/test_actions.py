"""Buttons and modals: milestone status and edit, sentiment, Share in channel, account choices."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, func, select

from bot.slack.app import SlackEdge
from storage.models import AuditLog, IndicatorReading, Milestone, MilestoneEvent
from tests.slack.conftest import (
    ALEX,
    DANA,
    MARCO,
    STRANGER,
    ack_json,
    assert_valid_blocks,
    block_actions_body,
    command_body,
    dispatch,
    view_submission_body,
)
from tests.slack.fake_slack import FakeSlack


def open_milestone(edge: SlackEdge) -> Milestone:
    """An Acme Corp milestone (Dana owns Acme) that is neither blocked nor done."""
    with Session(edge.services.container.engine) as session:
        found = session.exec(
            select(Milestone)
            .where(Milestone.account_id == 1, col(Milestone.status).not_in(("blocked", "done")))
            .order_by(col(Milestone.id))
        ).first()
    assert found is not None
    return found


def click(edge: SlackEdge, fake: FakeSlack, action: dict[str, Any], **kwargs: Any) -> None:
    body = block_actions_body(action, response_url=fake.response_url(), **kwargs)
    assert dispatch(edge, body).status == 200


def status_click(
    edge: SlackEdge, fake: FakeSlack, milestone_id: int, status: str, user: str
) -> None:
    action = {
        "type": "overflow",
        "action_id": "milestone_menu",
        "selected_option": {"value": f"status:{milestone_id}:{status}"},
    }
    click(edge, fake, action, user=user)


def counts(edge: SlackEdge, milestone_id: int) -> tuple[str, int, int]:
    with Session(edge.services.container.engine) as session:
        milestone = session.get(Milestone, milestone_id)
        assert milestone is not None
        events = session.exec(
            select(func.count(MilestoneEvent.id)).where(MilestoneEvent.milestone_id == milestone_id)
        ).one()
        audits = session.exec(select(func.count(AuditLog.id))).one()
        return milestone.status, events, audits


def webhook_posts(fake: FakeSlack) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls_to("webhook:r1")]


def opened_view(fake: FakeSlack) -> dict[str, Any]:
    view = fake.calls_to("views.open")[-1].args["view"]
    return json.loads(view) if isinstance(view, str) else view


def test_owner_moves_a_milestone_and_the_message_updates_in_place(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    milestone = open_milestone(edge)
    status_click(edge, fake, milestone.id or 0, "blocked", DANA)

    status, events, audits = counts(edge, milestone.id or 0)
    assert status == "blocked" and events >= 1 and audits >= 1
    with Session(edge.services.container.engine) as session:
        event = session.exec(
            select(MilestoneEvent).where(MilestoneEvent.milestone_id == milestone.id)
        ).all()[-1]
        assert (event.field, event.from_value, event.to_value) == (
            "status",
            milestone.status,
            "blocked",
        )
        assert event.actor_label == "dana@example.com"
        audit = session.exec(select(AuditLog).order_by(col(AuditLog.id).desc())).first()
        assert audit is not None and audit.action == "milestone.status" and audit.source == "slack"
    [post] = webhook_posts(fake)
    assert post["replace_original"] is True
    assert_valid_blocks(post["blocks"])
    [block] = [b for b in post["blocks"] if b.get("block_id") == f"ms-{milestone.id}"]
    assert "Blocked" in block["text"]["text"]
    # Still Dana's private copy: the Share button stays.
    assert any(b.get("block_id") == "share" for b in post["blocks"])


def test_a_manager_may_move_their_teams_milestone(edge: SlackEdge, fake: FakeSlack) -> None:
    milestone = open_milestone(edge)
    status_click(
        edge, fake, milestone.id or 0, "at_risk" if milestone.status != "at_risk" else "done", ALEX
    )
    assert counts(edge, milestone.id or 0)[0] != milestone.status


def test_another_csm_is_refused_and_nothing_changes(edge: SlackEdge, fake: FakeSlack) -> None:
    milestone = open_milestone(edge)
    before = counts(edge, milestone.id or 0)
    for user in (MARCO, STRANGER):
        status_click(edge, fake, milestone.id or 0, "blocked", user)
    assert counts(edge, milestone.id or 0) == before
    posts = webhook_posts(fake)
    assert len(posts) == 2
    for post in posts:
        assert post["replace_original"] is False and post["response_type"] == "ephemeral"
        assert "Nothing was changed" in post["text"] or "don't know you" in post["text"]
    assert "Only Dana Whitfield (the owner)" in posts[0]["text"]


def test_edit_opens_a_modal_and_invalid_input_comes_back_inline(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    milestone = open_milestone(edge)
    click(
        edge,
        fake,
        {
            "type": "overflow",
            "action_id": "milestone_menu",
            "selected_option": {"value": f"edit:{milestone.id}"},
        },
    )
    view = opened_view(fake)
    assert view["callback_id"] == "milestone_edit"
    assert_valid_blocks(view["blocks"], limit=100)
    assert fake.calls_to("views.open")[-1].args["trigger_id"] == "111.222.valid"

    bad = view_submission_body(
        view,
        {
            "due_date": {"type": "datepicker", "selected_date": "2020-01-01"},
            "owner": {"type": "static_select", "selected_option": {"value": "nobody@nowhere"}},
            "note": {"type": "plain_text_input", "value": "x" * 600},
        },
    )
    answer = ack_json(dispatch(edge, bad))
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"due_date", "owner", "note"}
    assert "past" in answer["errors"]["due_date"]
    assert counts(edge, milestone.id or 0)[1:] == (0, 0) or webhook_posts(fake) == []

    good = view_submission_body(
        view,
        {
            "due_date": {"type": "datepicker", "selected_date": "2027-01-15"},
            "owner": {"type": "static_select", "selected_option": {"value": "marco@example.com"}},
            "note": {"type": "plain_text_input", "value": "Customer asked for <!here> a delay"},
        },
    )
    response = dispatch(edge, good)
    assert response.status == 200 and response.body == ""  # closes the modal
    with Session(edge.services.container.engine) as session:
        changed = session.get(Milestone, milestone.id)
        assert changed is not None
        assert changed.due_date is not None and changed.due_date.isoformat() == "2027-01-15"
        assert changed.note == "Customer asked for <!here> a delay"
    [post] = webhook_posts(fake)
    assert post["replace_original"] is True
    assert_valid_blocks(post["blocks"])
    text = json.dumps(post["blocks"])
    assert "&lt;!here&gt;" in text and "<!here>" not in text


def test_edit_by_another_csm_is_refused_before_any_modal(edge: SlackEdge, fake: FakeSlack) -> None:
    milestone = open_milestone(edge)
    click(
        edge,
        fake,
        {
            "type": "overflow",
            "action_id": "milestone_menu",
            "selected_option": {"value": f"edit:{milestone.id}"},
        },
        user=MARCO,
    )
    assert fake.calls_to("views.open") == []
    assert "Only" in webhook_posts(fake)[0]["text"]


def sentiment_modal(edge: SlackEdge, fake: FakeSlack, user: str = DANA) -> dict[str, Any]:
    value = json.dumps({"a": 1, "n": "Acme Corp", "v": "red"})
    click(
        edge,
        fake,
        {"type": "button", "action_id": "sentiment_red", "value": value},
        user=user,
    )
    view = opened_view(fake)
    assert view["callback_id"] == "sentiment"
    assert_valid_blocks(view["blocks"], limit=100)
    return view


def sentiment_today(edge: SlackEdge) -> IndicatorReading | None:
    with Session(edge.services.container.engine) as session:
        return session.exec(
            select(IndicatorReading).where(
                IndicatorReading.account_id == 1,
                IndicatorReading.indicator_key == "csm_sentiment",
                IndicatorReading.day == edge.services.container.today(),
            )
        ).first()


def test_owner_sets_sentiment_from_the_health_card(edge: SlackEdge, fake: FakeSlack) -> None:
    view = sentiment_modal(edge, fake)
    submit = view_submission_body(
        view,
        {
            "value": {"type": "radio_buttons", "selected_option": {"value": "red"}},
            "reason": {"type": "plain_text_input", "value": "Champion left"},
        },
    )
    assert dispatch(edge, submit).status == 200
    reading = sentiment_today(edge)
    assert reading is not None and reading.value == 1.0 and reading.note == "Champion left"
    [post] = webhook_posts(fake)
    assert post["replace_original"] is True
    assert_valid_blocks(post["blocks"])
    assert "Champion left" in json.dumps(post["blocks"])


def test_sentiment_by_another_csm_is_refused_inline(edge: SlackEdge, fake: FakeSlack) -> None:
    before = sentiment_today(edge)
    view = sentiment_modal(edge, fake, user=MARCO)
    submit = view_submission_body(
        view,
        {
            "value": {"type": "radio_buttons", "selected_option": {"value": "green"}},
            "reason": {"type": "plain_text_input", "value": "All good"},
        },
        user=MARCO,
    )
    answer = ack_json(dispatch(edge, submit))
    assert answer["response_action"] == "errors"
    assert "Nothing was changed" in answer["errors"]["reason"]
    after = sentiment_today(edge)
    assert (after.value, after.note) == (before.value, before.note) if before else after is None
    assert webhook_posts(fake) == []


def test_share_posts_the_answer_in_channel_and_removes_the_private_copy(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    click(edge, fake, {"type": "button", "action_id": "share", "value": '{"k":"health","a":1}'})
    shared, deleted = webhook_posts(fake)
    assert shared["response_type"] == "in_channel" and shared["replace_original"] is False
    assert_valid_blocks(shared["blocks"])
    assert shared["blocks"][0]["text"]["text"].startswith("Acme Corp — ")
    assert not any(b.get("block_id") == "share" for b in shared["blocks"])
    assert deleted["delete_original"] is True


def test_share_into_an_external_channel_is_refused(edge: SlackEdge, fake: FakeSlack) -> None:
    fake.add_channel("CEXT", ext_shared=True)
    click(
        edge,
        fake,
        {"type": "button", "action_id": "share", "value": '{"k":"health","a":1}'},
        channel="CEXT",
    )
    [post] = webhook_posts(fake)
    assert post["response_type"] == "ephemeral"
    assert "shared with another organisation" in post["text"]


def test_choosing_an_account_replaces_the_question(edge: SlackEdge, fake: FakeSlack) -> None:
    click(
        edge, fake, {"type": "button", "action_id": "choose_account", "value": '{"k":"plan","a":2}'}
    )
    [post] = webhook_posts(fake)
    assert post["replace_original"] is True
    assert post["blocks"][0]["text"]["text"] == "Success plan — Globex"
    assert_valid_blocks(post["blocks"])


def test_settings_modal_validates_then_saves(edge: SlackEdge, fake: FakeSlack) -> None:
    from storage.models import CSM
    from tests.slack.conftest import command_body

    dispatch(edge, command_body("/csm", "settings", response_url=fake.response_url()))
    view = opened_view(fake)
    bad = view_submission_body(
        view,
        {
            "digest_time": {"type": "timepicker", "selected_time": "07:45"},
            "timezone": {"type": "plain_text_input", "value": "Mars/Olympus"},
            "digest_weekends": {"type": "checkboxes", "selected_options": []},
        },
    )
    answer = ack_json(dispatch(edge, bad))
    assert answer["response_action"] == "errors" and "timezone" in answer["errors"]
    good = view_submission_body(
        view,
        {
            "digest_time": {"type": "timepicker", "selected_time": "07:45"},
            "timezone": {"type": "plain_text_input", "value": "Europe/Berlin"},
            "digest_weekends": {"type": "checkboxes", "selected_options": [{"value": "weekends"}]},
        },
    )
    assert dispatch(edge, good).status == 200
    with Session(edge.services.container.engine) as session:
        dana = session.get(CSM, 1)
        assert dana is not None
        assert (dana.digest_time, dana.timezone, dana.digest_weekends) == (
            "07:45",
            "Europe/Berlin",
            True,
        )
    [post] = webhook_posts(fake)
    assert post["response_type"] == "ephemeral" and "07:45" in post["text"]


def test_alert_buttons_acknowledge_for_the_owner_and_refuse_others(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    from scheduler.models import Alert

    with Session(edge.services.container.engine) as session:
        alert = Alert(account_id=1, kind="band_change", event_key="t1", title="Acme turned amber")
        session.add(alert)
        session.commit()
        alert_id = alert.id
    click(
        edge,
        fake,
        {"type": "button", "action_id": "alert_snooze", "value": str(alert_id)},
        user=MARCO,
        ephemeral=False,
    )
    click(
        edge,
        fake,
        {"type": "button", "action_id": "alert_acknowledge", "value": str(alert_id)},
        user=DANA,
        ephemeral=False,
    )
    refused, updated = webhook_posts(fake)
    assert refused["replace_original"] is False and "Only" in refused["text"]
    assert updated["replace_original"] is True
    assert_valid_blocks(updated["blocks"])
    assert "Acknowledged by Dana Whitfield" in json.dumps(updated["blocks"])
    with Session(edge.services.container.engine) as session:
        stored = session.get(Alert, alert_id)
        assert stored is not None and stored.status == "acknowledged"


def test_escalation_buttons_move_it_along(edge: SlackEdge, fake: FakeSlack) -> None:
    from storage.models import Escalation
    from tests.slack.conftest import click_confirm, command_body

    asked = ack_json(dispatch(edge, command_body("/csm", "escalate acme sev2 login is broken")))
    click_confirm(edge, asked["blocks"], response_url=fake.response_url())
    opened = webhook_posts(fake)[0]
    fake.reset()
    buttons = [e for b in opened["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["escalation_acknowledge", "escalation_resolve"]
    escalation_id = int(buttons[0]["value"])
    click(
        edge,
        fake,
        {"type": "button", "action_id": "escalation_acknowledge", "value": str(escalation_id)},
        ephemeral=False,
    )
    [post] = webhook_posts(fake)
    assert post["replace_original"] is True
    assert_valid_blocks(post["blocks"])
    after = [
        e["action_id"] for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert after == ["escalation_resolve"]
    with Session(edge.services.container.engine) as session:
        escalation = session.get(Escalation, escalation_id)
        assert escalation is not None and escalation.status == "acknowledged"


def test_nothing_is_shared_into_a_dm_the_bot_cannot_see(edge: SlackEdge, fake: FakeSlack) -> None:
    # /health in a DM between Dana and someone else: the bot is not in it, so it cannot tell
    # whether the other person is a guest or from another organisation (a Slack Connect DM).
    fake.fail("conversations.info", error="channel_not_found", times=5)
    answer = ack_json(dispatch(edge, command_body("/health", "acme", channel="DOTHER")))
    assert answer["blocks"][0]["text"]["text"].startswith("Acme Corp — ")  # privately: fine
    assert not any(b.get("block_id") == "share" for b in answer["blocks"])

    # A Share button from before (or a forged one) posts nothing for the conversation.
    click(
        edge,
        fake,
        {"type": "button", "action_id": "share", "value": '{"k":"health","a":1}'},
        channel="DOTHER",
    )
    [post] = webhook_posts(fake)
    assert post["response_type"] == "ephemeral" and "Acme" not in json.dumps(post)
    assert "can't see who is in this conversation" in post["text"]
