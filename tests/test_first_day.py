"""The README's "First day" commands work as written: people, an accounts file, a renewal question."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def first_day_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## First day", 1)[1].split("\n## ", 1)[0]
    out = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("csm-bot people add") or line.startswith("csm-bot people list"):
                out.append(shlex.split(line)[1:])
    return out


def test_the_readme_first_day_works_as_written(
    tmp_path, monkeypatch, migrated_sqlite_template
) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "team.db"
    shutil.copyfile(migrated_sqlite_template, db)
    monkeypatch.setenv("CSM_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("CSM_TODAY", "2026-11-23")
    commands = first_day_commands()
    assert len(commands) >= 4
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    assert "sam@acme.io" in result.output and "manager lee@acme.io" in result.output
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        "external_id,name,owner_email,arr,renewal_date\nA-1,Fabrikam,sam@acme.io,120000,2027-02-15\n"
    )
    assert runner.invoke(app, ["import", "accounts", str(accounts)]).exit_code == 0
    answer = runner.invoke(app, ["ask", "renewals next 120 days", "--as", "lee@acme.io"])
    assert answer.exit_code == 0
    assert "Fabrikam" in answer.output and "2027-02-15" in answer.output
