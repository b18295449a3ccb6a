"""QA regressions: churned accounts say so, QBR trend reads consistently, QBR names the real people."""

from __future__ import annotations

from bot.console import ConsoleChat
from bot.render import render_json


def test_qa_churned_account_card_says_churned(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("health coho")
    ctx = out["reply"]["context"]
    assert ctx["account"]["name"] == "Coho Software"
    assert ctx["account"]["churned_on"] == "2026-10-30"
    assert "Churned on 2026-10-30" in out["rendered"]
    assert "churned on 2026-10-30" in out["reply"]["text"]
    slack = render_json("slack", "health_card", ctx)
    assert any("Churned on 2026-10-30" in str(b) for b in slack["blocks"])
    teams = render_json("teams", "health_card", ctx)
    assert "Churned on 2026-10-30" in str(teams["body"])
    live = ConsoleChat(demo_container).ask_json("health acme")
    assert live["reply"]["context"]["account"]["churned_on"] is None
    assert "Churned" not in live["rendered"]


def test_qa_qbr_trend_arrow_matches_the_numbers_shown(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("qbr initech")
    trend = out["reply"]["context"]["health"]["trend"]
    # Initech is up 5 points this week: the arrow (set by the week here) needs its number.
    assert trend["delta_7d"] > 2 and trend["basis"] == "7d"
    shown = "↑ +5.0 in 7d, +1.9 in 30d"
    assert (trend["delta_7d"], trend["delta_30d"]) == (5.0, 1.9)
    line = next(x for x in out["rendered"].splitlines() if x.startswith("Health:"))
    assert shown in line, line
    slack = render_json("slack", "qbr_prep", out["reply"]["context"])
    assert any(shown in str(b) for b in slack["blocks"])
    teams = render_json("teams", "qbr_prep", out["reply"]["context"])
    assert shown in str(teams["body"])
    # "No clear trend" is not a risk to put on a review's agenda.
    assert not any(r.startswith("Forecast:") for r in out["reply"]["context"]["risks"])


def test_qa_demo_qbr_audiences_are_the_account_stakeholders(demo_container) -> None:
    from sqlmodel import select

    from storage.models import Account, Stakeholder

    out = ConsoleChat(demo_container).ask_json("qbr acme")
    audiences = {a["role"]: a["people"] for a in out["reply"]["context"]["audiences"]}
    with demo_container.session() as session:
        acme = session.exec(select(Account).where(Account.name == "Acme Corp")).one()
        people = {
            s.role: s.name
            for s in session.exec(select(Stakeholder).where(Stakeholder.account_id == acme.id))
        }
    assert audiences["decision_maker"] == [people["decision_maker"]]
    assert audiences["champion"] == [people["champion"]], "the champion must be named"
    assert audiences["sponsor"] == [people["sponsor"]]


def test_qa_demo_milestones_always_have_an_owner(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("overdue milestones for the team")
    rows = out["reply"]["context"]["milestones"]
    assert rows
    assert all(r["owner"] for r in rows), [r["title"] for r in rows if not r["owner"]]
    assert "no owner" not in out["rendered"]


def test_qa_changes_window_before_first_snapshot_still_shows_the_score(demo_container) -> None:
    chat = ConsoleChat(demo_container)
    out = chat.ask_json("what changed at acme since last month")
    ctx = out["reply"]["context"]
    assert ctx["since"] == "2026-10-01"
    kinds = {c["kind"] for c in ctx["changes"]}
    # Acme slid from green to amber in that time: leaving the score out hides the story.
    assert {"band", "score"} <= kinds, ctx["changes"]
    assert ctx["history_from"] is not None and ctx["history_from"] > ctx["since"]
    assert f"(health history starts {ctx['history_from']})" in out["rendered"]
    assert any(c["text"].startswith("Score ") and "(−" in c["text"] for c in ctx["changes"])
    slack = render_json("slack", "account_changes", ctx)
    assert "health history starts" in str(slack["blocks"][-1])
    teams = render_json("teams", "account_changes", ctx)
    assert "health history starts" in str(teams["body"][1])
    week = chat.ask_json("what changed at acme")["reply"]["context"]
    assert week["history_from"] is None


def test_qa_health_text_uses_the_same_signs_as_the_card(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("health acme")
    assert out["reply"]["context"]["health"]["trend"]["delta_7d"] < 0
    assert "−1.7 in 7 days" in out["reply"]["text"]  # the card's minus sign, not a hyphen
    assert "−1.7 in 7d" in out["rendered"]


def test_qa_qbr_without_a_score_lists_missing_data_as_a_risk(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("qbr prairie biotech")
    ctx = out["reply"]["context"]
    assert ctx["health"]["score"] is None  # churned in September: its readings went stale
    assert any(r.startswith("Not enough health data for a score") for r in ctx["risks"])
    assert "Not enough health data for a score (15% of the indicator weight" in out["rendered"]
