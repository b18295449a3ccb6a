"""Teams parses a TextBlock's text as markdown: a name from data must never reach one, or an account
called "Acme [Verify your login](https://evil.example)" becomes a link in a chart card or a
refusal. Data goes into TextRuns (never parsed), over the real POST /api/messages."""

from __future__ import annotations

from typing import Any

from fake_connector import FakeConnector
from sqlmodel import Session, select
from starlette.testclient import TestClient
from teams_support import DANA_TEAMS_ID, dana_member, invoke, link, nodes, personal_message

from bot.container import Container
from storage.models import Account, Milestone

EVIL = "Acme [Verify your login](https://evil.example) **now**"


def rename_acme(container: Container) -> int:
    with Session(container.engine) as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        acme.name = EVIL
        acme.aliases = ["acme"]
        session.add(acme)
        session.commit()
        return acme.id or 0


def markdown_with_the_link(body: Any) -> list[str]:
    """Every markdown-parsed text (TextBlock, or a message's text) that carries the forged link."""
    found = [
        str(n.get("text"))
        for n in nodes(body)
        if n.get("type") == "TextBlock" and "](https://evil" in str(n.get("text"))
    ]
    if isinstance(body, dict) and body.get("textFormat") != "plain":
        text = body.get("text")
        if isinstance(text, str) and "](https://evil" in text:
            found.append(text)
    return found


def test_chart_cards_show_an_account_name_as_plain_text(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    rename_acme(container)
    connector.members[DANA_TEAMS_ID] = dana_member()

    response = client.post("/api/messages", json=personal_message(connector, "/health acme chart"))

    assert response.status_code == 200
    sent = connector.sent()
    assert len(sent) == 3  # the card, then two charts
    assert any(EVIL in str(call.body) for call in sent[1:])  # named, verbatim
    assert [markdown_with_the_link(call.body) for call in sent] == [[], [], []]


def test_a_refusal_on_top_of_a_card_shows_the_name_as_plain_text(
    client: TestClient, connector: FakeConnector, container: Container
) -> None:
    account_id = rename_acme(container)
    link(container, "marco@example.com", "29:marco")  # may read Acme, not change it
    with Session(container.engine) as session:
        milestone = session.exec(
            select(Milestone).where(Milestone.account_id == account_id)
        ).first()
        assert milestone is not None

    response = client.post(
        "/api/messages",
        json=invoke(
            connector,
            "milestone.status",
            {"milestone_id": milestone.id, "status": "blocked", "account_id": account_id},
            "29:marco",
        ),
    )

    card = response.json()["value"]
    assert "can change" in str(card) and EVIL in str(card)
    assert markdown_with_the_link(card) == []
