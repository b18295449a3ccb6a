"""Operator experience: one-line errors with the fix, --version, chat without input, a demo that keeps real data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def one_line_error(result, *expected: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    for part in expected:
        assert part in text, text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://csm:secret@127.0.0.1:1/csm",
            (
                "Cannot reach the database at postgresql://csm:***@127.0.0.1:1/csm",
                "start PostgreSQL",
            ),
        ),
        (
            "not a url",
            ("CSM_DATABASE_URL is not a database URL", "postgresql://USER:PASSWORD@HOST"),
        ),
        ("mysqlx://db/csm", ("names a database kind this assistant cannot use (mysqlx)",)),
    ],
)
def test_database_problems_are_one_line_with_the_fix(monkeypatch, url: str, expected) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CSM_DATABASE_URL", url)
    from storage.db import engine_for

    engine_for.cache_clear()
    for command in (["db", "upgrade"], ["ask", "how is acme?"], ["people", "list"]):
        one_line_error(runner.invoke(app, command), *expected)


def test_a_missing_or_broken_health_model_is_one_line(
    demo_container, monkeypatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CSM_HEALTH_MODEL", str(tmp_path / "nope.yaml"))
    one_line_error(
        runner.invoke(app, ["ask", "how is acme?"]),
        "The health model is not usable",
        "nope.yaml",
        "unset CSM_HEALTH_MODEL",
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("indicators: [")
    monkeypatch.setenv("CSM_HEALTH_MODEL", str(broken))
    one_line_error(runner.invoke(app, ["recompute"]), "invalid YAML at line 1, column 14")


def test_an_unmigrated_database_says_to_upgrade(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CSM_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    one_line_error(runner.invoke(app, ["people", "list"]), "csm-bot db upgrade")


def test_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"csm-bot {version('csm-assistant')}"


def test_chat_with_stdin_closed_exits_cleanly(demo_url: str) -> None:
    env = {**os.environ, "CSM_DATABASE_URL": demo_url, "CSM_TODAY": "2026-11-23"}
    # A service or a script with no terminal: standard input is not there at all.
    closed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(0),
    )
    assert closed.returncode == 0, closed.stderr
    assert "Traceback" not in closed.stderr
    assert "standard input is closed" in closed.stdout
    ended = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        input="how is acme doing?\n",
    )
    assert ended.returncode == 0, ended.stderr
    assert "Acme Corp" in ended.stdout and "Traceback" not in ended.stderr


def test_demo_refuses_a_database_with_real_data(demo_container, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    accounts = tmp_path / "accounts.csv"
    accounts.write_text("external_id,name,owner_email\nCRM-9001,Real Customer,dana@example.com\n")
    assert runner.invoke(app, ["import", "accounts", str(accounts)]).exit_code == 0
    refused = runner.invoke(app, ["demo", "--no-chat", "--accounts", "5", "--days", "30"])
    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1
    assert (
        "Refusing to replace" in lines[0]
        and "1 account that is not demo accounts (CRM-9001)" in lines[0]
    )
    assert "--force" in lines[0]
    with demo_container.engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM account WHERE external_id = 'CRM-9001'")
            ).scalar()
            == 1
        )
        assert (
            conn.execute(text("SELECT count(*) FROM audit_log WHERE source = 'import'")).scalar()
            == 1
        )


def test_demo_reseeds_a_demo_database_and_force_wipes_anything(demo_container) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from storage.demo_guard import foreign_data

    assert foreign_data(demo_container.engine) is None
    runner.invoke(app, ["people", "add", "ops@acme.io", "--name", "Ops", "--role", "admin"])
    assert foreign_data(demo_container.engine) == "1 person not in the demo (ops@acme.io)"
    forced = runner.invoke(app, ["demo", "--no-chat", "--accounts", "5", "--days", "30", "--force"])
    assert forced.exit_code == 0, forced.output
    with demo_container.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM csm WHERE email = 'ops@acme.io'")).scalar() == 0
        )
    again = runner.invoke(app, ["demo", "--no-chat", "--accounts", "5", "--days", "30"])
    assert again.exit_code == 0, again.output
