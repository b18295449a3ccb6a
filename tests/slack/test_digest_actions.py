"""Acting from a digest or an urgent batch (the list stays as it was), and the settings that tune them."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from bot.slack.app import SlackEdge
from scheduler.models import Alert
from storage.models import CSM, AuditLog
from tests.slack.conftest import (
    DANA,
    MARCO,
    ack_json,
    assert_valid_blocks,
    block_actions_body,
    command_body,
    dispatch,
    view_submission_body,
)
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_actions import opened_view, webhook_posts


def _alert(edge: SlackEdge) -> int:
    with Session(edge.services.container.engine) as session:
        alert = Alert(
            account_id=1,  # Acme Corp, Dana's
            kind="band_change",
            event_key="digest-line-1",
            title="Health turned red",
            severity=3,
            category="red",
            delivery="urgent",
            delivered_in="urgent_alerts:x",
        )
        session.add(alert)
        session.commit()
        return alert.id or 0


def _menu(edge: SlackEdge, fake: FakeSlack, value: str, user: str = DANA) -> None:
    action = {
        "type": "overflow",
        "action_id": "alert_menu",
        "selected_option": {"value": value},
    }
    body = block_actions_body(action, response_url=fake.response_url(), user=user, ephemeral=False)
    assert dispatch(edge, body).status == 200


def test_acknowledging_a_listed_alert_answers_privately_and_keeps_the_list(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    alert_id = _alert(edge)
    _menu(edge, fake, f"snooze:{alert_id}", user=MARCO)  # not Marco's account
    _menu(edge, fake, f"ack:{alert_id}")
    refused, done = webhook_posts(fake)
    assert refused["replace_original"] is False and "Only" in refused["text"]
    assert done["replace_original"] is False and done["response_type"] == "ephemeral"
    assert "Acknowledged by Dana Whitfield: Acme Corp: Health turned red" in done["text"]
    assert_valid_blocks(done["blocks"])
    with Session(edge.services.container.engine) as session:
        stored = session.get(Alert, alert_id)
        assert stored is not None and stored.status == "acknowledged"
        assert stored.acknowledged_by_id == 1
        assert session.exec(select(AuditLog).where(AuditLog.action == "alert.acknowledge")).one()


def test_a_listed_alert_opens_its_health_card_and_a_bad_choice_changes_nothing(
    edge: SlackEdge, fake: FakeSlack
) -> None:
    alert_id = _alert(edge)
    _menu(edge, fake, "health:1")
    _menu(edge, fake, f"delete:{alert_id}")
    card, refused = webhook_posts(fake)
    assert card["replace_original"] is False and card["response_type"] == "ephemeral"
    assert "Acme Corp" in json.dumps(card["blocks"])
    assert_valid_blocks(card["blocks"])
    assert refused["replace_original"] is False and "not one I know" in refused["text"]
    with Session(edge.services.container.engine) as session:
        assert session.get(Alert, alert_id).status == "open"  # type: ignore[union-attr]


def test_a_digest_line_button_answers_below_the_digest(edge: SlackEdge, fake: FakeSlack) -> None:
    for value in ('{"k":"qbr","a":1}', '{"k":"renewal","a":1}', '{"k":"nonsense","a":1}'):
        action = {"type": "button", "action_id": "digest_open", "value": value}
        body = block_actions_body(action, response_url=fake.response_url(), ephemeral=False)
        assert dispatch(edge, body).status == 200
    prep, renewal = webhook_posts(fake)  # an unknown kind is ignored
    for post in (prep, renewal):
        assert post["replace_original"] is False and post["response_type"] == "ephemeral"
        assert_valid_blocks(post["blocks"])
    assert "QBR prep" in prep["text"] and "Acme Corp" in renewal["text"]
    # The prep's draft deck follows, after the ack, in Dana's DM (never in a channel).
    (deck,) = fake.uploaded()
    assert deck.channel_id == "DUDANA" and deck.filename.endswith(".pptx")


def test_settings_tune_working_hours_and_what_interrupts(edge: SlackEdge, fake: FakeSlack) -> None:
    dispatch(edge, command_body("/csm", "settings", response_url=fake.response_url()))
    view = opened_view(fake)
    assert_valid_blocks(view["blocks"], limit=100)
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["work_start"]["element"]["initial_time"] == "09:00"
    assert blocks["work_end"]["element"]["initial_time"] == "18:00"
    options = blocks["interrupts"]["element"]["options"]
    assert len(options) == 9
    assert [o["value"] for o in blocks["interrupts"]["element"]["initial_options"]] == [
        "red",
        "sev1",
        "renewal_detractor",
    ]

    def submit(start: str, end: str, kinds: list[str]) -> dict:  # type: ignore[type-arg]
        body = view_submission_body(
            view,
            {
                "digest_time": {"type": "timepicker", "selected_time": "08:00"},
                "timezone": {"type": "plain_text_input", "value": "Europe/Rome"},
                "digest_weekends": {"type": "checkboxes", "selected_options": []},
                "work_start": {"type": "timepicker", "selected_time": start},
                "work_end": {"type": "timepicker", "selected_time": end},
                "interrupts": {
                    "type": "checkboxes",
                    "selected_options": [{"value": k} for k in kinds],
                },
            },
        )
        return ack_json(dispatch(edge, body))

    bad = submit("10:00", "10:00", ["red"])
    assert bad["response_action"] == "errors" and "work_end" in bad["errors"]
    assert submit("07:30", "16:00", ["amber", "red"]) == {}
    with Session(edge.services.container.engine) as session:
        dana = session.get(CSM, 1)
        assert dana is not None
        assert (dana.work_start, dana.work_end, dana.interrupts, dana.timezone) == (
            "07:30",
            "16:00",
            ["red", "amber"],
            "Europe/Rome",
        )
    [post] = webhook_posts(fake)
    assert "07:30–16:00" in post["text"] and "health turned amber" in post["text"]
    # Nothing ticked: nothing interrupts, everything waits for the digest.
    assert submit("07:30", "16:00", []) == {}
    with Session(edge.services.container.engine) as session:
        assert session.get(CSM, 1).interrupts == []  # type: ignore[union-attr]
    assert "Nothing interrupts you" in webhook_posts(fake)[-1]["text"]
