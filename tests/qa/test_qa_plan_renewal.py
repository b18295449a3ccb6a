"""QA regressions: KPI units in the success plan, and the account renewal card on Teams."""

from __future__ import annotations

from bot.console import ConsoleChat
from bot.render import render_json
from bot.teams.cards import render_card
from handlers.reply import Reply


def test_qa_plan_kpi_word_units_get_a_space(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("plan globex")
    rendered = out["rendered"]
    assert "32.6 tickets (target 28.9 tickets)" in rendered
    assert "tickets (target" in rendered and "6tickets" not in rendered
    acme = ConsoleChat(demo_container).ask_json("plan acme")["rendered"]
    assert "51.5% (target 69.9%)" in acme  # a % sign stays attached
    assert "6.3 h (target 11.4 h)" in acme
    ctx = out["reply"]["context"]
    slack = render_json("slack", "success_plan", ctx)
    texts = [
        b["text"]["text"] for b in slack["blocks"] if b.get("type") == "section" and "text" in b
    ]
    assert any("32.6 tickets → target 28.9 tickets" in t for t in texts), texts
    teams = render_json("teams", "success_plan", ctx)
    assert "32.6 tickets (target 28.9 tickets)" in str(teams)


def test_qa_account_renewal_has_a_teams_card(demo_container) -> None:
    chat = ConsoleChat(demo_container)
    chat.ask_json("plan acme")
    out = chat.ask_json("and its renewal?")
    assert out["reply"]["template"] == "account_renewal"
    reply = Reply(
        template=out["reply"]["template"],
        context=out["reply"]["context"],
        text=out["reply"]["text"],
    )
    card = render_card(reply)
    assert card is not None, "Teams fell back to plain text: no account_renewal card"
    assert card["version"] == "1.5"
    flat = str(card)
    assert "Renewal — Acme Corp" in flat
    assert "2027-02-06" in flat and "$480k ARR · 54% likely" in flat
    assert "2 overdue milestones" in flat
