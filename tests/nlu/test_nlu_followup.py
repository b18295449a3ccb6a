"""Follow-ups: the last turn's intent and account fill what a short reply leaves out."""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.nlu import ParseResult, apply_followup, parse

TODAY = date(2026, 11, 23)


def turn(result: ParseResult) -> dict[str, Any]:
    """What a chat handler stores after a turn (the shape apply_followup reads)."""
    account = result.account
    return {
        "intent": result.intent,
        "account_id": account.account_id if account else None,
        "account_name": account.name if account else None,
        "entities": result.entities(),
    }


def ask(index, text: str, previous: dict[str, Any] | None) -> ParseResult:
    return apply_followup(parse(text, index=index, today=TODAY), previous)


def test_its_renewal_uses_the_previous_account(demo_index, ids) -> None:
    first = parse("how's acme doing", index=demo_index, today=TODAY)
    result = ask(demo_index, "and its renewal?", turn(first))
    assert result.intent == "renewals_upcoming"
    assert result.account.account_id == ids["Acme Corp"]
    assert result.account.name == "Acme Corp"
    assert result.account_text is None


def test_what_about_uses_the_previous_intent_with_the_new_account(demo_index, ids) -> None:
    first = parse("show the success plan for initech", index=demo_index, today=TODAY)
    result = ask(demo_index, "what about Globex?", turn(first))
    assert result.intent == "success_plan"
    assert result.account.account_id == ids["Globex"]
    assert not result.inferred


def test_show_the_plan_uses_the_previous_account(demo_index, ids) -> None:
    first = parse("is Acme ok?", index=demo_index, today=TODAY)
    result = ask(demo_index, "show the plan", turn(first))
    assert result.intent == "success_plan"
    assert result.account.account_id == ids["Acme Corp"]


def test_same_question_for_another_person_keeps_the_window(demo_index) -> None:
    first = parse("dana's renewals next quarter", index=demo_index, today=TODAY, people=["Dana"])
    second = parse("and for marco?", index=demo_index, today=TODAY, people=["Dana", "Marco"])
    result = apply_followup(second, turn(first))
    assert result.intent == "renewals_upcoming"
    assert result.owner == "Marco"
    assert result.window == first.window
    assert result.window.label == "next quarter"


def test_explicit_words_win_over_the_previous_turn(demo_index, ids) -> None:
    first = parse("how's acme doing", index=demo_index, today=TODAY)
    result = ask(demo_index, "what's overdue at globex", turn(first))
    assert result.intent == "milestones_overdue"
    assert result.account.account_id == ids["Globex"]


def test_without_previous_or_when_not_a_followup_nothing_changes(demo_index) -> None:
    current = parse("and its renewal?", index=demo_index, today=TODAY)
    assert apply_followup(current, None) is current
    assert apply_followup(current, {}) is current
    fresh = parse("how's globex doing", index=demo_index, today=TODAY)
    previous = turn(parse("plan acme", index=demo_index, today=TODAY))
    assert apply_followup(fresh, previous) is fresh


def test_previous_turn_without_intent_or_account(demo_index) -> None:
    current = parse("and?", index=demo_index, today=TODAY)
    previous = {"intent": None, "account_id": None, "account_name": None, "entities": {}}
    assert apply_followup(current, previous).intent is None
    # A previous turn about the portfolio: the follow-up keeps its question, no account appears.
    first = parse("renewals next quarter", index=demo_index, today=TODAY)
    result = ask(demo_index, "and the team?", turn(first))
    assert result.intent == "renewals_upcoming"
    assert result.account is None
    assert result.owner == "team"


def test_unknown_account_in_a_followup_is_not_replaced(demo_index) -> None:
    first = parse("plan acme", index=demo_index, today=TODAY)
    result = ask(demo_index, "what about zorblax?", turn(first))
    assert result.intent == "success_plan"
    assert result.account.status == "none"
    assert result.account_text == "zorblax"


def test_naming_an_owner_does_not_borrow_the_last_account(demo_index, ids) -> None:
    health = parse("how's acme doing", index=demo_index, today=TODAY)
    previous = turn(health) | {"intent": "renewals_upcoming"}
    result = apply_followup(
        parse("what about marco's?", index=demo_index, today=TODAY, people=["Marco", "Dana"]),
        previous,
    )
    assert result.intent == "renewals_upcoming"
    assert result.owner == "Marco"
    assert result.account is None
