"""Proactive sends: stored references from installs, continue_conversation to the fake connector, retries."""

from __future__ import annotations

from typing import Any

import pytest
from fake_connector import FakeConnector
from sqlmodel import Session, select
from starlette.testclient import TestClient
from teams_support import TENANT, activity, teams_app

from bot.container import Container
from bot.teams.notifier import TeamsNotifier
from handlers.reply import Reply
from scheduler.notifier import DeliveryError, Notifier
from storage.models import CSM
from storage.platform_models import TeamsConversation

BOT_ID = "28:f5d48856-5b42-41a0-8c3a-c5f944b679b0"
USER_ID = "29:<USERID>"
PERSONAL = "***"  # Microsoft's placeholder conversation id in the personal-install capture
CHANNEL = "19:0b7f32667e064dd9b25d7969801541f4@thread.tacv2"


def alert() -> Reply:
    return Reply(
        template="error",
        context={"message": "Acme Corp turned red"},
        text="Acme Corp turned red",
        visibility="channel",
    )


@pytest.fixture
def notifier(container: Container, connector: FakeConnector) -> TeamsNotifier:
    return TeamsNotifier(container, app=teams_app(container, connector))


@pytest.fixture
def installed(client: TestClient, connector: FakeConnector, container: Container) -> FakeConnector:
    """Dana installs the app (personal) and the bot is added to a team: two stored references."""
    with Session(container.engine) as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
        dana.teams_user_id = USER_ID
        session.add(dana)
        session.commit()
    personal = activity("conversation_update_members_added_personal.json", connector)
    personal["recipient"]["id"] = BOT_ID
    personal["channelData"]["tenant"]["id"] = TENANT
    assert client.post("/api/messages", json=personal).status_code == 200
    team = activity("conversation_update_members_added_team.json", connector)
    assert client.post("/api/messages", json=team).status_code == 200
    # The personal install got a welcome (help) card; the team install stays quiet.
    assert [c.conversation_id for c in connector.sent()] == [PERSONAL]
    connector.calls.clear()
    return connector


def test_teams_notifier_is_a_scheduler_notifier(notifier: TeamsNotifier) -> None:
    assert isinstance(notifier, Notifier)
    assert notifier.platform == "teams"


def test_installs_store_references(installed: FakeConnector, container: Container) -> None:
    with Session(container.engine) as session:
        rows = {r.conversation_id: r for r in session.exec(select(TeamsConversation)).all()}
    assert set(rows) == {PERSONAL, CHANNEL}
    assert rows[PERSONAL].csm_id is not None and rows[PERSONAL].user_id == USER_ID
    assert rows[CHANNEL].team_id == "19:zFLSDFWsesfzcmKArqKJ-65aOXJz@sgf462H2wz41@thread.tacv2"
    assert rows[CHANNEL].tenant_id == TENANT


def test_send_to_a_csm_posts_a_new_message_in_their_personal_chat(
    installed: FakeConnector, notifier: TeamsNotifier, container: Container
) -> None:
    with Session(container.engine) as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()

    message_id = notifier.send(f"csm:{dana.id}", alert())

    [call] = installed.sent()
    assert call.conversation_id == PERSONAL
    assert call.activity_id is None  # a new message, not a reply
    assert call.body["attachments"][0]["content"]["version"] == "1.5"
    assert call.body["summary"] == "Acme Corp turned red"
    assert message_id.startswith("1:activity-")


def test_send_to_a_channel_and_to_a_thread(
    installed: FakeConnector, notifier: TeamsNotifier
) -> None:
    notifier.send(CHANNEL, alert())
    notifier.send(f"{CHANNEL};messageid=1700000000000", alert())

    assert [c.conversation_id for c in installed.sent()] == [
        CHANNEL,
        f"{CHANNEL};messageid=1700000000000",
    ]


def test_each_post_carries_its_delivery_id_in_channel_data(
    installed: FakeConnector, notifier: TeamsNotifier
) -> None:
    notifier.send_tagged(CHANNEL, alert(), "d-42")

    [call] = installed.sent()
    assert call.body["channelData"]["csmDeliveryId"] == "d-42"
    assert call.body["conversation"]["id"] == CHANNEL


def test_a_429_is_one_attempt_and_hands_retry_after_to_the_outbox(
    installed: FakeConnector, notifier: TeamsNotifier
) -> None:
    installed.failures = [(429, {"Retry-After": "3"})]

    with pytest.raises(DeliveryError) as caught:
        notifier.send(CHANNEL, alert())

    # The outbox waits it out, for every replica (shared pacing), instead of a sleep in here.
    assert installed.attempts() == 1
    assert caught.value.retry_after == 3.0 and not caught.value.permanent
    assert not caught.value.unknown


@pytest.mark.parametrize(("status", "unknown"), [(412, False), (502, True), (504, True)])
def test_transient_errors_are_one_attempt_and_a_gateway_timeout_is_an_unknown_outcome(
    installed: FakeConnector, notifier: TeamsNotifier, status: int, unknown: bool
) -> None:
    installed.failures = [(status, {})]

    with pytest.raises(DeliveryError) as caught:
        notifier.send(CHANNEL, alert())

    assert installed.attempts() == 1  # msrest adds no retries of its own
    assert caught.value.reason == f"http_{status}" and not caught.value.permanent
    assert caught.value.unknown is unknown


def test_refused_credentials_pause_the_tenant(
    installed: FakeConnector, notifier: TeamsNotifier
) -> None:
    installed.failures = [(401, {})]

    with pytest.raises(DeliveryError) as caught:
        notifier.send(CHANNEL, alert())

    assert caught.value.workspace and not caught.value.permanent


def test_teams_cannot_look_a_post_up(notifier: TeamsNotifier) -> None:
    from datetime import UTC, datetime

    from scheduler.notifier import LookupUnavailable

    with pytest.raises(LookupUnavailable):
        notifier.find_tagged(CHANNEL, "d-1", datetime.now(UTC))


def test_a_channel_and_its_threads_share_one_pacing_key(notifier: TeamsNotifier) -> None:
    assert notifier.pacing_key(f"{CHANNEL};messageid=1700000000000") == CHANNEL
    assert notifier.pacing_key(CHANNEL) == CHANNEL


def test_sends_reuse_one_event_loop_and_connector_client(
    installed: FakeConnector, notifier: TeamsNotifier
) -> None:
    notifier.send(CHANNEL, alert())
    first = dict(notifier._clients)
    notifier.send(CHANNEL, alert())
    assert notifier._clients == first and len(first) == 1


def test_bot_removed_is_permanent_and_remembered(
    installed: FakeConnector, notifier: TeamsNotifier, container: Container
) -> None:
    installed.failures = [(403, {})]

    with pytest.raises(DeliveryError) as first:
        notifier.send(CHANNEL, alert())
    with pytest.raises(DeliveryError) as second:
        notifier.send(CHANNEL, alert())

    assert first.value.permanent and first.value.reason == "http_403"
    assert second.value.permanent and second.value.reason == "bot_removed"
    assert installed.attempts() == 1
    with Session(container.engine) as session:
        row = session.exec(
            select(TeamsConversation).where(TeamsConversation.conversation_id == CHANNEL)
        ).one()
    assert row.active is False


def test_message_too_big_is_permanent(installed: FakeConnector, notifier: TeamsNotifier) -> None:
    installed.failures = [(413, {})]

    with pytest.raises(DeliveryError) as caught:
        notifier.send(CHANNEL, alert())

    assert caught.value.permanent and caught.value.reason == "http_413"


@pytest.mark.parametrize("target", ["19:never-seen@thread.tacv2", "csm:9999", "csm:not-a-number"])
def test_unknown_targets_fail_permanently_without_a_call(
    installed: FakeConnector, notifier: TeamsNotifier, target: str
) -> None:
    with pytest.raises(DeliveryError) as caught:
        notifier.send(target, alert())

    assert caught.value.permanent and caught.value.reason == "conversation_not_found"
    assert installed.calls == []


def test_uninstall_and_removal_stop_sends(
    installed: FakeConnector, client: TestClient, notifier: TeamsNotifier
) -> None:
    uninstall = activity("conversation_update_members_added_personal.json", installed)
    uninstall.update(type="installationUpdate", action="remove")
    uninstall.pop("membersAdded")
    removed = activity("conversation_update_members_added_team.json", installed)
    removed["membersRemoved"] = removed.pop("membersAdded")
    removed["channelData"]["eventType"] = "teamMemberRemoved"
    # New activities, not redeliveries of the installs (those are skipped by activity id).
    uninstall["id"], removed["id"] = "f:uninstall-1", "f:removed-1"

    assert client.post("/api/messages", json=uninstall).status_code == 200
    assert client.post("/api/messages", json=removed).status_code == 200

    for target in ("csm:1", CHANNEL):
        with pytest.raises(DeliveryError) as caught:
            notifier.send(target, alert())
        assert caught.value.reason == "bot_removed"
    assert installed.sent() == []


def test_the_fake_connector_throttles_the_eighth_send_in_a_second(
    installed: FakeConnector, notifier: TeamsNotifier
) -> None:
    for _ in range(7):
        notifier.send(CHANNEL, alert())
    with pytest.raises(DeliveryError) as caught:
        notifier.send(f"{CHANNEL};messageid=1700000000000", alert())  # same thread for Teams
    assert caught.value.reason == "ratelimited" and caught.value.retry_after
    kept = [c for c in installed.accepted if (c.conversation_id or "").startswith(CHANNEL)]
    assert installed.throttled == 1 and len(kept) == 7


def test_send_works_from_inside_a_running_event_loop(
    installed: FakeConnector, notifier: TeamsNotifier
) -> None:
    import asyncio

    async def scheduler_job() -> Any:
        return notifier.send(CHANNEL, alert())

    assert asyncio.run(scheduler_job()).startswith("1:activity-")


def test_a_scheduled_prep_with_the_deck_offers_it_in_the_personal_chat_only(
    installed: FakeConnector, notifier: TeamsNotifier, container: Container
) -> None:
    from scheduler.builders import build_reply
    from storage.models import Account

    with Session(container.engine) as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        spec = {
            "kind": "qbr_prep",
            "account_id": acme.id,
            "csm_id": dana.id,
            "today": "2026-11-23",
            "attach": "qbr_pack",
        }
    reply = build_reply(container.engine, container.health_models, spec)

    notifier.send(f"csm:{dana.id}", reply)
    prep, offer = installed.sent()
    assert prep.conversation_id == offer.conversation_id == PERSONAL
    (consent,) = offer.body["attachments"]
    assert consent["contentType"] == "application/vnd.microsoft.teams.card.file.consent"
    assert consent["content"]["acceptContext"]["account_id"] == acme.id

    # To a team channel the prep goes alone: a draft deck is not for a shared conversation.
    installed.calls.clear()
    notifier.send(CHANNEL, reply)
    assert len(installed.sent()) == 1
