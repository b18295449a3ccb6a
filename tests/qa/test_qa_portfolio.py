"""QA regressions: portfolio answers read right (plurals, names, window phrases) and managers see a book."""

from __future__ import annotations

from bot.console import ConsoleChat
from bot.render import render_json


def test_qa_single_red_account_is_singular_on_every_platform(demo_container) -> None:
    out = ConsoleChat(demo_container, "alex@example.com").ask_json("Sam's red accounts")
    ctx = out["reply"]["context"]
    assert ctx["band"] == "red" and ctx["total"] == 1  # Sam has exactly one red account
    # The first line says what was understood, then the count in the singular.
    assert out["rendered"].startswith("Red accounts, Sam Okafor's book: 1 account, $")
    assert "1 accounts" not in out["rendered"]
    assert out["reply"]["text"].startswith("Red accounts, Sam Okafor's book: 1 account")
    slack = render_json("slack", "risks", ctx)
    assert "*1* account ·" in slack["blocks"][1]["text"]["text"]
    teams = render_json("teams", "risks", ctx)
    assert teams["body"][0]["inlines"][0]["text"].startswith("1 red account — ")


def test_qa_named_csm_portfolio_keeps_surname_capitalised(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("Marco's accounts")
    first = out["rendered"].splitlines()[0]
    assert first.startswith("Marco Rossi's book: 9 accounts"), first
    teams = render_json("teams", "my_accounts", out["reply"]["context"])
    assert teams["body"][0]["inlines"][0]["text"].startswith("Marco Rossi's accounts: 9 accounts")


def test_qa_renewal_window_phrases_read_as_english(demo_container) -> None:
    chat = ConsoleChat(demo_container)
    this_month = chat.ask_json("renewals this month")
    assert this_month["reply"]["context"]["total"] == 0
    assert this_month["rendered"] == "Renewals this month (1 – 30 Nov 2026), your book: none"
    assert this_month["reply"]["text"] == this_month["rendered"]
    slack = render_json("slack", "renewals", this_month["reply"]["context"])
    assert "No renewals this month" in slack["blocks"][1]["text"]["text"]
    teams = render_json("teams", "renewals", this_month["reply"]["context"])
    assert teams["body"][0]["inlines"][0]["text"].startswith("No renewals this month")

    q1 = chat.ask_json("renewals in Q1")
    assert q1["rendered"].startswith(
        "Renewals in Q1 2027 (1 Jan – 31 Mar 2027), your book: 4 renewals"
    )
    sixty = chat.ask_json("what renews in the next 60 days?")
    assert sixty["rendered"].startswith("Renewals in the next 60 days (23 Nov 2026 – 22 Jan 2027)")
    assert "your book: 5 renewals" in sixty["rendered"].splitlines()[0]
    two_weeks = chat.ask_json("renewals in 2 weeks")
    assert two_weeks["reply"]["text"].startswith(
        "Renewals in the next 2 weeks (23 Nov – 7 Dec 2026), your book: 1 renewal,"
    )
    assert (
        "*1* renewal ·"
        in render_json("slack", "renewals", two_weeks["reply"]["context"])["blocks"][1]["text"][
            "text"
        ]
    )


def test_qa_manager_my_accounts_is_the_team_book(demo_container) -> None:
    out = ConsoleChat(demo_container, as_email="alex@example.com").ask_json("my accounts")
    ctx = out["reply"]["context"]
    assert ctx["scope"] == "your team's accounts"
    assert ctx["total"] == 58  # every live account: all six CSMs report to Alex
    assert out["rendered"].startswith("Your team's book: 58 accounts")
    csm = ConsoleChat(demo_container, as_email="marco@example.com").ask_json("my accounts")
    assert csm["reply"]["context"]["scope"] == "your accounts"
    assert csm["reply"]["context"]["total"] == 9


def test_qa_empty_portfolio_says_so(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("Robin's accounts")
    assert out["reply"]["context"]["total"] == 0
    assert out["rendered"] == "Robin Admin's book: none"
    assert "0 accounts" not in out["reply"]["text"]


def test_qa_past_window_shows_what_renewed_or_churned(demo_container) -> None:
    chat = ConsoleChat(demo_container)
    mine = chat.ask_json("renewals in the last 30 days")
    rows = mine["reply"]["context"]["renewals"]
    # Tundra Software (Dana's) renewed on 2026-10-29 at a lower ARR.
    assert [(r["account_name"], r["status"]) for r in rows] == [("Tundra Software", "renewed")]
    assert mine["reply"]["context"]["closed"] == 1
    assert mine["reply"]["context"]["arr_at_risk"] == 0  # a closed renewal is no longer at risk
    assert "renewed at $55k" in mine["rendered"]
    assert mine["rendered"].splitlines()[0].endswith("; 1 already closed")
    team = ConsoleChat(demo_container, as_email="alex@example.com").ask_json(
        "renewals in the last 30 days"
    )
    ctx = team["reply"]["context"]
    assert {r["account_name"]: r["status"] for r in ctx["renewals"]}["Coho Software"] == "churned"
    assert "CHURNED" in team["rendered"]
    assert "*churned*" in str(render_json("slack", "renewals", ctx)["blocks"])
    assert "churned" in str(render_json("teams", "renewals", ctx)["body"])
    upcoming = chat.ask_json("what renews in the next 60 days?")["reply"]["context"]
    assert all(r["status"] == "open" for r in upcoming["renewals"]) and upcoming["closed"] == 0


def test_qa_green_account_forecast_red_is_counted_in_the_summary(demo_container) -> None:
    from datetime import date

    from sqlmodel import select

    from storage.models import Account, HealthSnapshot

    with demo_container.session() as session:
        globex = session.exec(select(Account).where(Account.name == "Globex")).one()
        snap = session.exec(
            select(HealthSnapshot).where(
                HealthSnapshot.account_id == globex.id, HealthSnapshot.day == date(2026, 11, 23)
            )
        ).one()
        snap.forecast_red_in_days = 20
        session.add(snap)
    out = ConsoleChat(demo_container).ask_json("which of my accounts are at risk?")
    ctx = out["reply"]["context"]
    assert ctx["total"] == 5 and ctx["counts"] == {"red": 2, "amber": 2, "green": 1}
    assert "(2 red, 2 amber, 1 green heading for red)" in out["rendered"].splitlines()[0]
    assert "(2 red, 2 amber, 1 green heading for red)" in out["reply"]["text"]
    assert "1 green heading for red" in str(render_json("slack", "risks", ctx)["blocks"][1])
    assert "1 green heading for red" in str(render_json("teams", "risks", ctx)["body"][1])
