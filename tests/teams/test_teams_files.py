"""Charts as Image cards and QBR decks by file consent, through the real POST /api/messages."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from fake_connector import FakeConnector
from pptx import Presentation
from starlette.testclient import TestClient
from teams_support import DANA_TEAMS_ID, TENANT, activity, dana_member, personal_message

from bot.teams.cards import MAX_MESSAGE_BYTES, utf16_size
from bot.teams.files import FILE_CONSENT_CARD, FILE_INFO_CARD, MAX_REQUEST_BYTES

CARD = "application/vnd.microsoft.card.adaptive"
PNG = b"\x89PNG\r\n\x1a\n"


def attachments_of(call: Any) -> list[dict[str, Any]]:
    return call.body.get("attachments") or []


def images(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in card["body"] if e.get("type") == "Image"]


def test_a_chart_request_answers_then_sends_each_chart_as_an_image_card(
    client: TestClient, connector: FakeConnector
) -> None:
    connector.members[DANA_TEAMS_ID] = dana_member()
    response = client.post("/api/messages", json=personal_message(connector, "/health acme chart"))
    assert response.status_code == 200

    answer, *charts = connector.sent()
    # The health card first, then one card per chart.
    assert attachments_of(answer)[0]["contentType"] == CARD
    assert not images(attachments_of(answer)[0]["content"])
    assert len(charts) == 2
    titles = []
    for call in charts:
        (attachment,) = attachments_of(call)
        card = attachment["content"]
        assert attachment["contentType"] == CARD
        assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
        (image,) = images(card)
        prefix = "data:image/png;base64,"
        assert image["url"].startswith(prefix)
        assert base64.b64decode(image["url"][len(prefix) :]).startswith(PNG)
        assert "Acme Corp" in image["altText"]
        # Within Teams' limits: the card less its base64 image under 80 KB, the request under 256 KB.
        body = json.dumps(call.body, separators=(",", ":")).encode()
        assert len(body) < MAX_REQUEST_BYTES
        image["url"] = "data:"
        assert utf16_size(card) < MAX_MESSAGE_BYTES
        titles.append(card["body"][0]["inlines"][0]["text"])
    assert titles == [
        "Acme Corp — health, last 45 days",
        "Acme Corp — the indicators behind the score",
    ]


def accept(connector: FakeConnector, consent: dict[str, Any]) -> dict[str, Any]:
    """The fileConsent/invoke Teams sends when the user presses Allow on the consent card."""
    body = activity("invoke_adaptive_card_action.json", connector)
    body["name"] = "fileConsent/invoke"
    body["from"] = {"id": DANA_TEAMS_ID, "name": "Dana Whitfield"}
    body["conversation"] = {
        "id": "a:personal-dana",
        "conversationType": "personal",
        "tenantId": TENANT,
    }
    body["channelData"]["tenant"]["id"] = TENANT
    body["value"] = {
        "type": "fileUpload",
        "action": "accept",
        "context": consent["content"]["acceptContext"],
        "uploadInfo": {
            "contentUrl": "https://contoso-my.sharepoint.com/personal/dana/Documents/Applications/"
            + consent["name"],
            "name": consent["name"],
            "uploadUrl": connector.upload_url(consent["name"]),
            "fileType": "pptx",
            "uniqueId": "1150D938-8870-4044-9F2C-5BBDEBA70C9D",
        },
    }
    return body


def test_qbr_in_the_personal_chat_offers_the_deck_and_uploads_it_when_accepted(
    client: TestClient, connector: FakeConnector
) -> None:
    connector.members[DANA_TEAMS_ID] = dana_member()
    assert (
        client.post("/api/messages", json=personal_message(connector, "qbr acme")).status_code
        == 200
    )
    prep, offer = connector.sent()
    assert attachments_of(prep)[0]["contentType"] == CARD
    (consent,) = attachments_of(offer)
    assert consent["contentType"] == FILE_CONSENT_CARD
    assert consent["name"].startswith("acme-corp-qbr-executive-")
    assert consent["content"]["sizeInBytes"] > 10_000
    assert consent["content"]["acceptContext"] == {
        "kind": "qbr_pack",
        "account_id": 1,
        "variant": "executive",
        "today": "2026-11-23",
    }

    response = client.post("/api/messages", json=accept(connector, consent))
    assert response.status_code == 200

    deck = connector.uploads[consent["name"]]
    slides = Presentation(io.BytesIO(deck)).slides
    assert slides[0].shapes.title.text == "Acme Corp: Executive business review"
    shown = connector.sent()[-1]
    (info,) = attachments_of(shown)
    assert info["contentType"] == FILE_INFO_CARD
    assert info["name"] == consent["name"]
    assert info["content"]["uniqueId"] == "1150D938-8870-4044-9F2C-5BBDEBA70C9D"


def test_a_declined_deck_is_not_uploaded(client: TestClient, connector: FakeConnector) -> None:
    connector.members[DANA_TEAMS_ID] = dana_member()
    client.post("/api/messages", json=personal_message(connector, "qbr acme"))
    consent = attachments_of(connector.sent()[-1])[0]
    declined = accept(connector, consent)
    declined["value"]["action"] = "decline"
    assert client.post("/api/messages", json=declined).status_code == 200
    assert connector.uploads == {}
    assert connector.sent()[-1].body["text"] == "OK, I did not send the deck."


def test_a_deck_is_not_offered_in_a_channel(client: TestClient, connector: FakeConnector) -> None:
    connector.members[DANA_TEAMS_ID] = dana_member()
    message = activity("message_channel_mention.json", connector)
    message["text"] = message["text"].split("</at>")[0] + "</at> qbr acme"
    message["from"] = {"id": DANA_TEAMS_ID, "name": "Dana Whitfield"}
    assert client.post("/api/messages", json=message).status_code == 200
    sent = connector.sent()
    assert not any(
        a.get("contentType") == FILE_CONSENT_CARD for call in sent for a in attachments_of(call)
    )
    assert "1:1 chat" in sent[-1].body["text"]


@pytest.mark.parametrize(
    "context",
    [
        {"kind": "qbr_pack", "account_id": 1, "variant": "executive", "today": "not a day"},
        {"kind": "qbr_pack", "account_id": 10**30},
        {"kind": "qbr_pack", "account_id": "1"},
        {"kind": "qbr_pack", "account_id": 1, "variant": {"nested": True}},
        "not an object",
        None,
    ],
    ids=["bad-day", "huge-id", "text-id", "object-variant", "string", "none"],
)
def test_a_tampered_consent_context_builds_nothing_and_says_so(
    client: TestClient, connector: FakeConnector, context: Any
) -> None:
    connector.members[DANA_TEAMS_ID] = dana_member()
    forged = accept(connector, {"name": "x.pptx", "content": {"acceptContext": context}})

    response = client.post("/api/messages", json=forged)

    assert response.status_code == 200, response.text
    assert connector.uploads == {}
    assert connector.sent()[-1].body["text"] == "This file card has expired. Ask me again."


def test_a_refused_deck_names_the_account_as_plain_text(
    container: Any, client: TestClient, connector: FakeConnector
) -> None:
    from sqlalchemy import text

    with container.engine.begin() as conn:
        conn.execute(
            text("UPDATE account SET name = :n WHERE name = 'Acme Corp'"),
            {"n": "Acme [Renew now](https://evil.example/login)"},
        )
    connector.members[DANA_TEAMS_ID] = dana_member()
    message = activity("message_channel_mention.json", connector)
    message["text"] = message["text"].split("</at>")[0] + "</at> qbr acme"
    message["from"] = {"id": DANA_TEAMS_ID, "name": "Dana Whitfield"}
    assert client.post("/api/messages", json=message).status_code == 200
    refusal = connector.sent()[-1].body
    assert "[Renew now](https://evil.example/login)" in refusal["text"]
    # A text message is markdown in Teams unless it says otherwise: the name must not be a link.
    assert refusal["textFormat"] == "plain"
