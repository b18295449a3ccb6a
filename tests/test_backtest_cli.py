"""`csm-bot backtest`: the replay is what recompute computes, the table has the forecast and both
baselines from one run, and the trajectories scenario gives accounts known paths."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from domain.health_model import load_health_models
from handlers.backtest import replay
from storage.bulk import table
from storage.db import make_engine
from storage.demo_scenarios import Trajectory, apply_scenario
from tests.conftest import DEMO_TODAY

runner = CliRunner()


def _rows(output: str) -> dict[tuple[str, str, int], tuple[str, str]]:
    """(section, predictor, N) -> (precision, recall) from the printed table."""
    found: dict[tuple[str, str, int], tuple[str, str]] = {}
    section = ""
    for line in output.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            section = line[:-1]
        match = re.match(r"\s+(forecast|band stays|7-day slope)\s+(\d+)\s+.*\s(\S+)\s+(\S+)$", line)
        if match:
            found[(section, match.group(1), int(match.group(2)))] = (match.group(3), match.group(4))
    return found


def test_backtest_a_trajectories_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSM_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    monkeypatch.setenv("CSM_TODAY", DEMO_TODAY.isoformat())
    result = runner.invoke(
        app, ["backtest", "--scenario", "trajectories", "--accounts", "12", "--days", "150"]
    )
    assert result.exit_code == 0, result.output
    assert "scenario trajectories (seed 7)" in result.output
    rows = _rows(result.output)
    for section in ("all account-days", "not red on the day"):
        for predictor in ("forecast", "band stays", "7-day slope"):
            for n in (14, 30):
                assert (section, predictor, n) in rows, result.output
    # Among the days an account was not red yet, "band stays" never calls red.
    assert rows[("not red on the day", "band stays", 14)][1] in ("0.0%", "—")


def test_backtest_the_configured_database(demo_container) -> None:
    result = runner.invoke(app, ["backtest", "--first", "2026-10-01", "--last", "2026-11-23"])
    assert result.exit_code == 0, result.output
    # Coho churned on 30 October (in the window); Prairie before it: 59 accounts.
    assert "Backtest over 59 accounts, forecast days 2026-10-01 to 2026-11-09" in result.output
    assert len(_rows(result.output)) == 12
    # Judged days need the following N days inside the replay (the last is 14 days before the
    # end); 30-day calls end earlier still.
    days = {n: int(re.search(rf"forecast\s+{n}\s+(\d+)", result.output).group(1)) for n in (14, 30)}
    assert days[14] > days[30] > 0


def test_backtest_bad_input(
    demo_container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_day = runner.invoke(app, ["backtest", "--first", "last week"])
    assert bad_day.exit_code == 2 and "YYYY-MM-DD" in bad_day.output
    unknown = runner.invoke(app, ["backtest", "--scenario", "chaos"])
    assert unknown.exit_code == 2 and "trajectories" in unknown.output
    backwards = runner.invoke(app, ["backtest", "--first", "2026-11-20", "--last", "2026-11-01"])
    assert backwards.exit_code == 1 and "nothing to replay" in backwards.output
    from storage.db import upgrade

    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(empty)
    monkeypatch.setenv("CSM_DATABASE_URL", empty)
    nothing = runner.invoke(app, ["backtest"])
    assert nothing.exit_code == 1 and "no readings to backtest" in nothing.output


def test_the_replay_is_what_recompute_stored(demo_url: str) -> None:
    engine = make_engine(demo_url)
    models = load_health_models(None)
    first = DEMO_TODAY - timedelta(days=2)
    histories = replay(engine, models=models, first=first, last=DEMO_TODAY)
    snap = table("health_snapshot")
    with engine.connect() as conn:
        stored = {
            (aid, day): (score, band, forecast)
            for aid, day, score, band, forecast in conn.execute(
                select(
                    snap.c.account_id,
                    snap.c.day,
                    snap.c.score,
                    snap.c.band,
                    snap.c.forecast_red_in_days,
                ).where(snap.c.day >= first)
            )
        }
    engine.dispose()
    replayed = {
        (aid, r.day): (r.score, r.band, r.forecast_red_in_days)
        for aid, records in histories.items()
        for r in records
    }
    assert replayed == stored and len(stored) > 150


def test_trajectories_follow_their_knots() -> None:
    fall = Trajectory("fall", ((-100, 80.0), (-60, 40.0)))
    assert (fall(-200), fall(-100), fall(-80), fall(-60), fall(0)) == (80.0, 80.0, 60.0, 40.0, 40.0)
    with pytest.raises(ValueError, match="unknown demo scenario 'chaos'"):
        apply_scenario("chaos", [], today=date(2026, 1, 1), days=200, seed=1)


def test_demo_refuses_an_unknown_scenario(demo_container) -> None:
    result = runner.invoke(app, ["demo", "--no-chat", "--scenario", "chaos"])
    assert result.exit_code == 2 and "trajectories" in result.output
