"""The local chat and `csm-bot ask`: both command forms, plain questions, --json, --stdin, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.console import ConsoleChat

runner = CliRunner()


def test_health_command_forms_agree(demo_container) -> None:
    chat = ConsoleChat(demo_container)
    slash = chat.ask_json("/health acme")
    plain = chat.ask_json("health acme")
    question = chat.ask_json("how is Acme doing?")
    for out in (slash, plain, question):
        assert out["intent"] == "account_health"
        assert out["reply"]["template"] == "health_card"
        assert out["reply"]["context"]["account"]["name"] == "Acme Corp"
    assert "Acme Corp" in slash["rendered"]


def test_acme_story_shows_amber_and_forecast(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("/health acme")
    health = out["reply"]["context"]["health"]
    assert health["band"] == "amber"
    assert health["forecast"]["red_in_days"] is not None
    assert "likely to turn red" in out["rendered"]
    assert health["trend"]["delta_30d"] < 0
    assert health["drivers"], "the card must say why"


def test_globex_shows_expansion_signal(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("how is Globex doing?")
    assert out["reply"]["context"]["health"]["band"] == "green"
    assert "expansion" in out["rendered"].lower()


def test_initech_overdue_milestones(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("overdue milestones for Initech")
    assert out["intent"] == "milestones_overdue"
    assert out["reply"]["context"]["total"] >= 2
    assert all(m["account_name"] == "Initech" for m in out["reply"]["context"]["milestones"])


def test_renewals_window(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("what renews in the next 60 days?")
    assert out["intent"] == "renewals_upcoming"
    ctx = out["reply"]["context"]
    assert ctx["window"]["start"] == "2026-11-23"
    assert ctx["window"]["end"] == "2027-01-22"
    assert all(0 <= r["days_left"] <= 60 for r in ctx["renewals"])


def test_my_risks_only_cover_my_accounts(demo_container) -> None:
    chat = ConsoleChat(demo_container, "dana@example.com")
    out = chat.ask_json("which of my accounts are at risk?")
    assert out["intent"] == "portfolio_at_risk"
    names = {a["name"] for a in out["reply"]["context"]["accounts"]}
    assert "Acme Corp" in names
    mine = chat.ask_json("my accounts")["reply"]["context"]["accounts"]
    assert names <= {a["name"] for a in mine}


def test_misspelled_account_gets_suggestions(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("health zzqxv corp")
    assert out["reply"]["template"] in ("account_not_found", "help")
    fuzzy = ConsoleChat(demo_container).ask_json("health acmee")
    assert fuzzy["reply"]["context"]["account"]["name"] == "Acme Corp"


def test_close_names_ask_which_one(demo_container) -> None:
    out = ConsoleChat(demo_container).ask_json("health umbrella")
    assert out["reply"]["template"] == "account_choices"
    names = {c["name"] for c in out["reply"]["context"]["choices"]}
    assert {"Umbrella Corporation", "Umbrella Health"} <= names


@pytest.mark.parametrize(
    "text", ["", "   ", "???", "asdf qwer zxcv", "🔥🔥🔥", "DROP TABLE account;"]
)
def test_nonsense_gets_help_not_a_traceback(demo_container, text: str) -> None:
    out = ConsoleChat(demo_container).ask_json(text)
    assert out["reply"]["template"] in ("help", "unknown", "account_not_found")
    assert out["rendered"].strip()


def test_follow_up_uses_previous_account(demo_container) -> None:
    chat = ConsoleChat(demo_container)
    chat.ask_json("how is globex doing?")
    out = chat.ask_json("show the plan")
    assert out["intent"] == "success_plan"
    assert out["reply"]["context"]["account"]["name"] == "Globex"


def test_cli_ask_json(demo_container) -> None:
    result = runner.invoke(app, ["ask", "/health acme", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["intent"] == "account_health"
    assert data["entities"]["account"]["name"] == "Acme Corp"
    assert data["reply"]["template"] == "health_card"


def test_cli_ask_as_unknown_email_answers_with_who_can_add_them(demo_container) -> None:
    result = runner.invoke(app, ["ask", "risks", "--as", "nobody@elsewhere.org"])
    assert result.exit_code == 0, result.output
    assert "at risk" not in result.output and "$" not in result.output
    assert "Ask Robin Admin (an admin) to add you" in result.output


def test_cli_ask_stdin_one_json_per_line(demo_container) -> None:
    result = runner.invoke(app, ["ask", "--stdin"], input="health acme\nrenewals 30\n\nhelp\n")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [line["intent"] for line in lines] == [
        "account_health",
        "renewals_upcoming",
        "help",
        "help",
    ]


def test_cli_on_empty_database_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CSM_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["ask", "health acme"])
    assert result.exit_code == 2
    assert "csm-bot demo" in result.output


def test_demo_on_a_fresh_machine_creates_the_database_folder(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'not' / 'there' / 'yet' / 'csm.db'}"
    monkeypatch.setenv("CSM_DATABASE_URL", url)
    monkeypatch.setenv("CSM_TODAY", "2026-11-23")
    result = runner.invoke(app, ["demo", "--accounts", "12", "--days", "60", "--no-chat"])
    assert result.exit_code == 0, result.output
    assert "Demo portfolio ready" in result.output
    answer = runner.invoke(app, ["ask", "health acme"])
    assert "Acme Corp" in answer.output


def test_local_chat_answers_then_writes_the_charts_with_a_sparkline(demo_container) -> None:
    result = runner.invoke(app, ["ask", "/health acme chart"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Acme Corp — ")  # the text answer comes first
    charts = [line for line in lines if line.startswith("Chart: ")]
    assert [c.split(" → ")[0] for c in charts] == [
        "Chart: Acme Corp — health, last 45 days",
        "Chart: Acme Corp — the indicators behind the score",
    ]
    for line in charts:
        path = Path(line.split(" → ")[1])
        assert path.read_bytes().startswith(b"\x89PNG")
    sparkline = lines[lines.index(charts[0]) + 1]
    assert sparkline.startswith("  Acme Corp health, ") and "/100" in sparkline
    assert any(block in sparkline for block in "▁▂▃▄▅▆▇█")


def test_local_chat_qbr_writes_the_draft_deck(demo_container) -> None:
    from pptx import Presentation

    result = runner.invoke(app, ["ask", "qbr acme operational"])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("File: ")]
    path = Path(line.split(" → ")[1])
    assert path.name.startswith("acme-corp-qbr-operational-")
    assert Presentation(str(path)).slides[0].shapes.title.text == "Acme Corp: Operational review"
