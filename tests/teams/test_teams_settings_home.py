"""Settings as a form (Slack's settings modal on Teams), the welcome card on install, and the Home card."""

from __future__ import annotations

from typing import Any

from fake_connector import FakeConnector
from sqlmodel import Session, select
from starlette.testclient import TestClient
from teams_support import (
    CARD,
    DANA_TEAMS_ID,
    TENANT,
    activity,
    buttons,
    card_of,
    inputs,
    invoke,
    link,
    personal_message,
    shown,
)

from bot.container import Container
from storage.models import CSM, AuditLog

CHAT = {"id": "a:personal-dana", "conversationType": "personal"}


def dana(container: Container) -> CSM:
    with Session(container.engine) as session:
        return session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()


def save(client: TestClient, connector: FakeConnector, **fields: str) -> dict[str, Any]:
    body = invoke(connector, "settings.save", fields, DANA_TEAMS_ID, conversation=CHAT)
    answer = client.post("/api/messages", json=body).json()
    assert answer["statusCode"] == 200 and answer["type"] == CARD, answer
    return answer["value"]


def test_settings_is_a_form_with_the_current_values(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", DANA_TEAMS_ID)

    client.post("/api/messages", json=personal_message(connector, "settings"))

    [answer] = connector.sent()
    form = card_of(answer)
    fields = inputs(form)
    me = dana(container)
    assert fields["digest_time"]["type"] == "Input.Time"
    assert fields["digest_time"]["value"] == me.digest_time
    assert fields["timezone"]["value"] == me.timezone
    assert fields["digest_weekends"]["type"] == "Input.Toggle"
    assert "settings.save" in buttons(form)


def test_invalid_settings_come_back_next_to_their_fields_and_change_nothing(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", DANA_TEAMS_ID)
    before = dana(container)

    card = save(client, connector, digest_time="25:00", timezone="Mars/Olympus")

    text = shown(card)
    assert "“25:00” is not a time" in text and "“Mars/Olympus” is not a timezone" in text
    assert inputs(card)["timezone"]["value"] == "Mars/Olympus"  # what was typed stays
    after = dana(container)
    assert (after.digest_time, after.timezone) == (before.digest_time, before.timezone)
    with Session(container.engine) as session:
        assert session.exec(select(AuditLog)).all() == []


def test_saving_settings_changes_them_and_is_audited(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", DANA_TEAMS_ID)

    card = save(
        client, connector, digest_time="7:15", timezone="Europe/Berlin", digest_weekends="true"
    )

    assert "Saved." in shown(card) and inputs(card)["digest_time"]["value"] == "07:15"
    me = dana(container)
    assert (me.digest_time, me.timezone, me.digest_weekends) == ("07:15", "Europe/Berlin", True)
    with Session(container.engine) as session:
        [audit] = session.exec(select(AuditLog).where(AuditLog.action == "settings.update")).all()
        assert audit.source == "teams" and audit.after["timezone"] == "Europe/Berlin"


def test_installing_the_app_sends_a_welcome_card(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", "29:<USERID>")  # the capture's user
    install = activity("conversation_update_members_added_personal.json", connector)
    install["channelData"]["tenant"]["id"] = TENANT
    install["recipient"]["id"] = install["membersAdded"][0]["id"]  # the bot is what was added

    assert client.post("/api/messages", json=install).status_code == 200

    [welcome] = connector.sent()
    card = card_of(welcome)
    assert "Hi Dana! I'm CSM Assistant" in shown(card)
    assert {"home.open", "settings.open", "escalation.new_form"} <= buttons(card)


def test_home_is_a_card_by_message_and_by_button(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", DANA_TEAMS_ID)

    client.post("/api/messages", json=personal_message(connector, "home"))
    body = invoke(connector, "home.open", {}, DANA_TEAMS_ID, conversation=CHAT)
    pressed = client.post("/api/messages", json=body).json()["value"]

    [said] = connector.sent()
    for card in (card_of(said), pressed):
        text = shown(card)
        assert text.startswith("Dana Whitfield — ") or "Dana Whitfield — " in text
        assert "Renewals in 30 days" in text and "Overdue milestones" in text
        assert {"settings.open", "escalation.new_form"} <= buttons(card)


def test_the_form_tunes_working_hours_and_what_interrupts(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    link(container, "dana@example.com", DANA_TEAMS_ID)
    same = {"digest_time": "08:30", "timezone": "America/New_York", "digest_weekends": "false"}

    refused = save(
        client, connector, **same, work_start="10:00", work_end="10:00", interrupts="red"
    )
    assert "end different from their start" in shown(refused)
    assert dana(container).work_end == "18:00"

    card = save(
        client, connector, **same, work_start="07:30", work_end="16:00", interrupts="amber,red"
    )
    assert "Saved." in shown(card)
    fields = inputs(card)
    assert (fields["work_start"]["value"], fields["interrupts"]["value"]) == ("07:30", "red,amber")
    me = dana(container)
    assert (me.work_start, me.work_end, me.interrupts) == ("07:30", "16:00", ["red", "amber"])
    # Nothing ticked: nothing interrupts, everything waits for the digest.
    save(client, connector, **same, work_start="07:30", work_end="16:00", interrupts="")
    assert dana(container).interrupts == []
