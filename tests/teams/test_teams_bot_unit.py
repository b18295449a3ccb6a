"""The ActivityHandler on botbuilder's TestAdapter: no network, the real handlers and database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botbuilder.core import InvokeResponse
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ConversationAccount, Entity
from sqlmodel import Session, select
from teams_support import TENANT

from bot.container import Container
from bot.teams.bot import CsmTeamsBot
from bot.teams.identity import ConversationCache, RosterCache, Sharing
from storage.models import CSM, Account, Milestone
from storage.platform_models import TeamsConversation

BOT = ChannelAccount(id="28:bot", name="CSM Assistant")


def adapter_for(
    user_id: str, conversation_type: str = "personal", conversation_id: str = "a:unit"
) -> TestAdapter:
    template = Activity(
        channel_id="msteams",
        service_url="https://smba.example.invalid/",
        from_property=ChannelAccount(id=user_id, name="Tester"),
        recipient=BOT,
        conversation=ConversationAccount(
            id=conversation_id, conversation_type=conversation_type, tenant_id=TENANT
        ),
    )
    return TestAdapter(template_or_conversation=template)


def message(text: str, tenant: str = TENANT, entities: list[Any] | None = None) -> Activity:
    return Activity(
        type=ActivityTypes.message,
        text=text,
        channel_data={"tenant": {"id": tenant}},
        entities=entities,
    )


def run(adapter: TestAdapter, bot: CsmTeamsBot, activity: Activity) -> list[Activity]:
    asyncio.run(adapter.process_activity(activity, bot.on_turn))
    out = list(adapter.activity_buffer)
    adapter.activity_buffer.clear()
    return out


def link(container: Container, email: str, teams_id: str) -> int:
    with Session(container.engine) as session:
        csm = session.exec(select(CSM).where(CSM.email == email)).one()
        csm.teams_user_id = teams_id
        session.add(csm)
        session.commit()
        return csm.id or 0


def card_text(activity: Activity) -> str:
    import json

    return json.dumps(activity.attachments[0].content, ensure_ascii=False)


class InternalConversations(ConversationCache):
    """TestAdapter has no Bot Connector to list members: every chat counts as internal here
    (the HTTP tests check the roster scan against the fake connector)."""

    async def sharing(self, turn_context: Any, key: str, tenant_id: str | None) -> Sharing:
        return Sharing(False)


@pytest.fixture
def bot(container: Container) -> CsmTeamsBot:
    return CsmTeamsBot(container, RosterCache(), conversations=InternalConversations())


def test_known_csm_asks_in_a_personal_chat(bot: CsmTeamsBot, container: Container) -> None:
    link(container, "dana@example.com", "29:dana")

    [reply] = run(adapter_for("29:dana"), bot, message("plan acme"))

    assert reply.attachments[0].content_type == "application/vnd.microsoft.card.adaptive"
    assert "Acme Corp" in card_text(reply) and "milestone.status" in card_text(reply)
    with Session(container.engine) as session:
        row = session.exec(select(TeamsConversation)).one()
    assert row.conversation_id == "a:unit" and row.csm_id is not None


def test_unknown_user_without_a_roster_sees_no_account_data(bot: CsmTeamsBot) -> None:
    # TestAdapter has no Bot Connector: the roster lookup fails and the user stays unknown.
    [reply] = run(adapter_for("29:nobody"), bot, message("plan acme"))

    assert "Acme Corp" not in card_text(reply)
    assert "I don't know you yet" in card_text(reply)
    assert bot.roster.lookups == 1


def test_a_chat_whose_members_cannot_be_listed_counts_as_shared(container: Container) -> None:
    link(container, "dana@example.com", "29:dana")
    # The default conversation check asks the connector, which TestAdapter does not have.
    bot = CsmTeamsBot(container, RosterCache())

    mention = Entity().deserialize(
        {"type": "mention", "text": "<at>CSM Assistant</at>", "mentioned": {"id": BOT.id}}
    )
    activity = message("<at>CSM Assistant</at> health globex", entities=[mention])

    [reply] = run(adapter_for("29:dana", "groupChat", "19:group@thread.v2"), bot, activity)

    assert "Globex" not in card_text(reply)
    assert "shared with another organisation" in card_text(reply)


def test_mention_is_removed_before_parsing_in_a_channel(
    bot: CsmTeamsBot, container: Container
) -> None:
    link(container, "dana@example.com", "29:dana")
    # As it arrives off the wire: an Entity whose fields sit in additional_properties.
    mention = Entity().deserialize(
        {
            "type": "mention",
            "text": "<at>CSM Assistant</at>",
            "mentioned": {"id": BOT.id, "name": BOT.name},
        }
    )
    activity = message("<at>CSM Assistant</at> health globex", entities=[mention])

    [reply] = run(
        adapter_for("29:dana", "channel", "19:chan@thread.tacv2;messageid=1"), bot, activity
    )

    assert "Globex" in card_text(reply)


def test_channel_chatter_without_mention_gets_no_answer(bot: CsmTeamsBot) -> None:
    assert (
        run(
            adapter_for("29:dana", "channel", "19:chan@thread.tacv2"), bot, message("health globex")
        )
        == []
    )


def test_guest_tenant_is_external_even_with_a_known_id(
    bot: CsmTeamsBot, container: Container
) -> None:
    link(container, "dana@example.com", "29:dana")

    [reply] = run(adapter_for("29:dana"), bot, message("health acme", tenant="another-tenant"))

    assert "Acme" not in card_text(reply)


def test_invoke_is_answered_with_an_invoke_response(bot: CsmTeamsBot, container: Container) -> None:
    dana_id = link(container, "dana@example.com", "29:dana")
    with Session(container.engine) as session:
        acme = session.exec(
            select(Account).where(Account.owner_id == dana_id, Account.name == "Acme Corp")
        ).one()
        milestone = session.exec(
            select(Milestone).where(
                Milestone.account_id == acme.id, Milestone.status != "in_progress"
            )
        ).first()
    invoke = Activity(
        type=ActivityTypes.invoke,
        name="adaptiveCard/action",
        channel_data={"tenant": {"id": TENANT}},
        value={
            "action": {
                "type": "Action.Execute",
                "verb": "milestone.status",
                "data": {"milestone_id": milestone.id, "status": "in_progress"},
            },
            "trigger": "manual",
        },
    )

    [response] = run(adapter_for("29:dana"), bot, invoke)

    assert response.type == "invokeResponse"
    assert isinstance(response.value, InvokeResponse) and response.value.status == 200
    assert response.value.body["statusCode"] == 200
    assert response.value.body["value"]["version"] == "1.5"
    with Session(container.engine) as session:
        assert session.get(Milestone, milestone.id).status == "in_progress"
