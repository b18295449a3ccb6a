"""Conversation rules in the chat handler: what is a write, what is a question, what a reply means."""

from __future__ import annotations

from sqlmodel import Session, func, select

from bot.console import ConsoleChat
from bot.render import render_json
from storage.models import Escalation


def escalation_count(container) -> int:
    with Session(container.engine) as session:
        return session.exec(select(func.count(Escalation.id))).one()


def test_asking_about_escalations_lists_them_and_opens_none(demo_container) -> None:
    chat = ConsoleChat(demo_container)
    before = escalation_count(demo_container)
    chat.ask_json("how is acme doing?")
    for question in ("escalations", "open escalations?", "any escalations for acme", "escalate"):
        out = chat.ask_json(question)
        assert out["reply"]["template"] == "escalations", question
    assert escalation_count(demo_container) == before
    listed = chat.ask_json("open escalations?")["reply"]["context"]
    assert listed["total"] >= 1 and all(e["status"] != "resolved" for e in listed["escalations"])
    for flavour in ("slack", "teams"):
        assert render_json(flavour, "escalations", listed)


def test_opening_needs_the_account_in_the_same_message_and_a_yes(demo_container) -> None:
    chat = ConsoleChat(demo_container, "dana@example.com")
    before = escalation_count(demo_container)
    out = chat.ask_json("escalate acme sev1 SSO is down for all users")
    assert out["reply"]["template"] == "action_confirm"
    assert out["rendered"].startswith("Open a SEV1 escalation for Acme Corp: “SSO is down")
    assert escalation_count(demo_container) == before
    done = chat.ask_json("yes")
    assert done["reply"]["template"] == "escalation"
    assert done["reply"]["context"]["escalation"]["title"] == "SSO is down for all users"
    assert escalation_count(demo_container) == before + 1


def test_a_number_picks_one_of_the_offered_accounts(demo_container) -> None:
    chat = ConsoleChat(demo_container)
    offered = chat.ask_json("health umbrella")
    assert offered["reply"]["template"] == "account_choices"
    second = offered["reply"]["context"]["choices"][1]["name"]
    picked = chat.ask_json("2")
    assert picked["reply"]["template"] == "health_card"
    assert picked["reply"]["context"]["account"]["name"] == second


def test_a_portfolio_question_forgets_the_last_account(demo_container) -> None:
    chat = ConsoleChat(demo_container)
    chat.ask_json("how is acme doing?")
    chat.ask_json("what renews in the next 60 days?")
    out = chat.ask_json("show the plan")
    assert out["reply"]["template"] == "account_not_found"
    assert "Which account?" in out["rendered"]


def test_settings_and_small_talk(demo_container) -> None:
    chat = ConsoleChat(demo_container, "priya@example.com")
    settings = chat.ask_json("my settings")
    assert settings["reply"]["template"] == "settings"
    assert settings["reply"]["context"]["csm"]["timezone"] == "Asia/Kolkata"
    thanks = chat.ask_json("thanks!")
    assert thanks["reply"]["template"] == "notice" and "help" not in thanks["rendered"].lower()


def test_band_filter_on_my_accounts(demo_container) -> None:
    out = ConsoleChat(demo_container, "dana@example.com").ask_json("my green accounts")
    accounts = out["reply"]["context"]["accounts"]
    assert accounts and all(a["band"] == "green" for a in accounts)
