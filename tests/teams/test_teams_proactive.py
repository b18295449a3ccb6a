"""Reaching people and channels the bot never talked in: 1:1 chats opened on demand
(POST /v3/conversations), the team roster linking CSMs, and accounts mapped to Teams channels
(CSV import and the data API) so account posts go to the channel, not to the owner's chat."""

from __future__ import annotations

from typing import Any

import pytest
from fake_connector import FakeConnector
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient
from teams_support import CHANNEL, TEAM, TENANT, install_in_team, link, teams_app

from bot.api import routes as api_routes
from bot.container import Container
from bot.teams.notifier import TeamsNotifier
from handlers.reply import Reply
from scheduler.config import SchedulerConfig
from scheduler.notifier import DeliveryError
from scheduler.routing import targets
from storage.models import CSM, Account
from storage.platform_models import TeamsConversation

BOT = "28:608cacfd-1cea-40c9-b678-4b93e69bb72b"  # the bot in the team capture
ACME_CHANNEL = "19:acme0000000000000000000000000001@thread.tacv2"
TOKEN = "teams-test-token"


def note(text: str = "Acme Corp turned red") -> Reply:
    return Reply(template="error", context={"message": text}, text=text, visibility="channel")


@pytest.fixture
def notifier(container: Container, connector: FakeConnector) -> TeamsNotifier:
    app = teams_app(container, connector)
    return TeamsNotifier(container, app=app)


def csm_id(container: Container, email: str) -> int:
    with Session(container.engine) as session:
        return session.exec(select(CSM).where(CSM.email == email)).one().id or 0


def chats(container: Container) -> dict[int | None, TeamsConversation]:
    with Session(container.engine) as session:
        rows = session.exec(
            select(TeamsConversation).where(TeamsConversation.conversation_type == "personal")
        ).all()
        return {r.csm_id: r for r in rows}


def test_a_csm_who_never_wrote_to_the_bot_gets_a_chat_opened_for_them(
    client: TestClient, connector: FakeConnector, container: Container, notifier: TeamsNotifier
) -> None:
    install_in_team(client, connector)
    dana = link(container, "dana@example.com", "29:dana")  # seen in a channel, never in a chat
    connector.calls.clear()

    first = notifier.send(f"csm:{dana}", note())
    second = notifier.send(f"csm:{dana}", note("Globex renews in 7 days"))

    [created] = connector.created()
    params = created.body
    assert params["members"] == [{"id": "29:dana"}]
    assert params["bot"]["id"] == BOT and params["isGroup"] is False
    assert params["channelData"]["tenant"]["id"] == TENANT
    posts = connector.sent()
    assert [p.conversation_id for p in posts] == ["a:1on1-29:dana"] * 2
    assert first and second and first != second
    row = chats(container)[dana]
    assert row.conversation_id == "a:1on1-29:dana" and row.tenant_id == TENANT and row.active
    assert row.reference["serviceUrl"] == connector.service_url


def test_a_chat_is_opened_with_the_entra_object_id_when_that_is_all_we_know(
    client: TestClient, connector: FakeConnector, container: Container, notifier: TeamsNotifier
) -> None:
    install_in_team(client, connector)
    connector.members["29:alex"] = {"id": "29:alex", "aadObjectId": "aad-alex", "name": "Alex"}
    with Session(container.engine) as session:
        alex = session.exec(select(CSM).where(CSM.email == "alex@example.com")).one()
        alex.teams_aad_object_id = "aad-alex"
        session.add(alex)
        session.commit()
        alex_id = alex.id or 0

    notifier.send(f"csm:{alex_id}", note())

    [created] = connector.created()
    assert created.body["members"][0]["id"] == "aad-alex"
    assert chats(container)[alex_id].conversation_id == "a:1on1-29:alex"


def test_people_the_bot_cannot_reach_fail_permanently_with_the_reason(
    client: TestClient, connector: FakeConnector, container: Container, notifier: TeamsNotifier
) -> None:
    install_in_team(client, connector)
    marco = link(container, "marco@example.com", "29:marco")
    connector.not_installed.add("29:marco")
    nobody = csm_id(container, "priya@example.com")  # never seen on Teams at all

    with pytest.raises(DeliveryError) as not_installed:
        notifier.send(f"csm:{marco}", note())
    with pytest.raises(DeliveryError) as unknown:
        notifier.send(f"csm:{nobody}", note())

    assert not_installed.value.permanent
    assert not_installed.value.reason == "app_not_installed_for_user"
    assert unknown.value.permanent and unknown.value.reason == "teams_user_unknown"
    assert marco not in chats(container) and connector.sent() == []


def test_the_team_roster_links_csms_so_they_can_be_reached(
    client: TestClient, connector: FakeConnector, container: Container, notifier: TeamsNotifier
) -> None:
    connector.members.update(
        {
            "29:priya": {
                "id": "29:priya",
                "name": "Priya",
                "email": "Priya@Example.com",
                "userPrincipalName": "priya@example.com",
                "aadObjectId": "aad-priya",
                "tenantId": TENANT,
                "userRole": "user",
            },
            "29:guest": {
                "id": "29:guest",
                "email": "marco@example.com",  # a guest using a CSM's address is never linked
                "tenantId": TENANT,
                "userRole": "guest",
            },
        }
    )

    install_in_team(client, connector)

    with Session(container.engine) as session:
        priya = session.exec(select(CSM).where(CSM.email == "priya@example.com")).one()
        marco = session.exec(select(CSM).where(CSM.email == "marco@example.com")).one()
        assert (priya.teams_user_id, priya.teams_aad_object_id) == ("29:priya", "aad-priya")
        assert marco.teams_user_id is None
    notifier.send(f"csm:{priya.id}", note())
    assert [c.conversation_id for c in connector.sent()] == ["a:1on1-29:priya"]


def api_client(container: Container) -> TestClient:
    container.settings = container.settings.model_copy(update={"api_token": TOKEN})
    return TestClient(Starlette(routes=api_routes(container)))


def acme(container: Container) -> Account:
    with Session(container.engine) as session:
        return session.exec(select(Account).where(Account.name == "Acme Corp")).one()


def test_accounts_map_to_teams_channels_and_account_posts_go_there(
    client: TestClient, connector: FakeConnector, container: Container, notifier: TeamsNotifier
) -> None:
    connector.channels[TEAM] = [
        {"id": CHANNEL, "name": "General"},
        {"id": ACME_CHANNEL, "name": "acme-corp"},
    ]
    install_in_team(client, connector)  # the bot can post in every channel of the team
    config = SchedulerConfig(platforms=("teams",), routes={"risk_alert": ("account_channel",)})
    account = acme(container)
    owner = f"csm:{account.owner_id}"
    assert targets("risk_alert", platform="teams", config=config, account=account, csm_id=account.owner_id) == [owner]  # fmt: skip
    api = api_client(container)
    headers = {"Authorization": f"Bearer {TOKEN}"}

    csv = (
        f"external_id,name,teams_conversation_id\n{account.external_id},Acme Corp,{ACME_CHANNEL}\n"
    )
    imported = api.post(
        "/api/v1/import/accounts", content=csv, headers={**headers, "Content-Type": "text/csv"}
    )

    assert imported.status_code == 200, imported.text
    account = acme(container)
    assert account.teams_conversation_id == ACME_CHANNEL
    [where] = targets(
        "risk_alert", platform="teams", config=config, account=account, csm_id=account.owner_id
    )
    assert where == ACME_CHANNEL
    connector.calls.clear()
    notifier.send(where, note())
    assert [c.conversation_id for c in connector.sent()] == [ACME_CHANNEL]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f"{ACME_CHANNEL};messageid=1759944781430", "a channel, not one of its threads"),
        ("C0123ABCD", "not a Teams channel id"),
    ],
)
def test_a_bad_teams_channel_is_refused_and_nothing_changes(
    container: Container, value: str, reason: str
) -> None:
    api = api_client(container)
    before = acme(container).teams_conversation_id
    row: dict[str, Any] = {
        "external_id": acme(container).external_id,
        "name": "Acme Corp",
        "teams_conversation_id": value,
    }

    answer = api.post(
        "/api/v1/import/accounts",
        json={"rows": [row]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert answer.status_code == 422, answer.text
    assert reason in answer.text
    assert acme(container).teams_conversation_id == before


def test_the_csv_import_reads_the_teams_column(container: Container, tmp_path: Any) -> None:
    from storage.csv_import import import_csv

    path = tmp_path / "accounts.csv"
    path.write_text(
        f"external_id,name,teams_conversation_id\n{acme(container).external_id},Acme Corp,{ACME_CHANNEL}\n"
    )

    import_csv(container.engine, "accounts", path)

    assert acme(container).teams_conversation_id == ACME_CHANNEL


def test_channels_created_later_are_remembered_and_deleted_ones_stop(
    client: TestClient, connector: FakeConnector, container: Container, notifier: TeamsNotifier
) -> None:
    from teams_support import activity

    install_in_team(client, connector)
    created = activity("conversation_update_members_added_team.json", connector)
    created.pop("membersAdded")
    created["id"] = "f:channel-created"  # a new activity, not the install delivered again
    created["conversation"]["tenantId"] = TENANT
    created["channelData"].update(
        eventType="channelCreated",
        channel={"id": ACME_CHANNEL, "name": "acme-corp"},
        tenant={"id": TENANT},
    )
    assert client.post("/api/messages", json=created).status_code == 200
    connector.calls.clear()

    notifier.send(ACME_CHANNEL, note())
    deleted = {
        **created,
        "id": "f:channel-deleted",
        "channelData": {**created["channelData"], "eventType": "channelDeleted"},
    }
    assert client.post("/api/messages", json=deleted).status_code == 200

    assert [c.conversation_id for c in connector.sent()] == [ACME_CHANNEL]
    with pytest.raises(DeliveryError) as gone:
        notifier.send(ACME_CHANNEL, note())
    assert gone.value.reason == "bot_removed"
