"""Open renewals whose date has passed: named as overdue, never "in -8 days", never dropped from lists.

The demo's history ends on 2026-11-23; asked on 2026-12-05, the renewals due in between are still
open. Expectations come from plain SQL, not from the handlers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from bot.console import ConsoleChat
from bot.slack.messages import message
from bot.teams.cards import render_card
from domain.numbers import days_away
from handlers.reply import Reply

LATER = date(2026, 12, 5)
ADMIN = "admin@example.com"


@pytest.fixture
def later(demo_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from bot.config import Settings
    from bot.container import Container

    monkeypatch.setenv("CSM_DATABASE_URL", demo_url)
    monkeypatch.setenv("CSM_TODAY", LATER.isoformat())
    container = Container(settings=Settings(database_url=demo_url, today=LATER.isoformat()))
    yield container
    container.engine.dispose()


def _past_due(container: Any) -> list[tuple[str, date]]:
    with container.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.name, r.renewal_date FROM renewal r JOIN account a ON a.id = r.account_id"
                " WHERE r.status = 'open' AND r.renewal_date < :d ORDER BY r.renewal_date, a.name"
            ),
            {"d": LATER},
        ).all()
    return [
        (name, day if isinstance(day, date) else date.fromisoformat(str(day))) for name, day in rows
    ]


def _reply(out: dict[str, Any]) -> Reply:
    r = out["reply"]
    return Reply(template=r["template"], context=r["context"], text=r["text"])


def test_days_away_reads_like_a_person_says_it() -> None:
    assert [days_away(n) for n in (12, 1, 0, -1, -8)] == [
        "in 12 days",
        "tomorrow",
        "today",
        "yesterday",
        "8 days ago",
    ]


def test_an_overdue_renewal_says_it_was_due_and_is_still_open(later: Any) -> None:
    name, day = _past_due(later)[0]
    ago = (LATER - day).days
    chat = ConsoleChat(later, ADMIN)
    answer = chat.ask(f"when does {name} renew")
    assert f"renewal was due on {day.isoformat()} ({days_away(-ago)}) and is still open" in answer
    card = chat.ask(f"health {name}")
    assert f"Renewal: {day.isoformat()} ({days_away(-ago)})" in card
    reply = _reply(chat.ask_json(f"when does {name} renew"))
    for rendered in (json.dumps(message(reply)), json.dumps(render_card(reply))):
        assert "in -" not in rendered and "still open" in rendered


def test_a_renewals_list_from_today_names_the_ones_past_their_date(later: Any) -> None:
    past_due = _past_due(later)
    assert len(past_due) >= 2, "the demo should leave renewals open past 2026-11-23"
    out = ConsoleChat(later, ADMIN).ask_json("renewals next 30 days")
    context = out["reply"]["context"]
    assert [(r["account_name"], r["renewal_date"]) for r in context["past_due"]] == [
        (n, d.isoformat()) for n, d in past_due[:5]
    ]
    assert context["past_due_total"] == len(past_due)
    reply = _reply(out)
    assert "Still open past their date: " + past_due[0][0] in reply.text
    slack = json.dumps(message(reply))
    teams = json.dumps(render_card(reply))
    assert past_due[0][0] in slack and past_due[0][0] in teams
    assert "in -" not in slack and "in -" not in teams


def test_a_band_filter_applies_to_the_past_due_line_too(later: Any) -> None:
    out = ConsoleChat(later, ADMIN).ask_json("green renewals next 30 days")
    for row in out["reply"]["context"]["past_due"]:
        assert row["band"] == "green"
    window_past = ConsoleChat(later, ADMIN).ask_json("renewals last month")
    assert window_past["reply"]["context"]["past_due"] == []
