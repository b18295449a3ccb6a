"""What a one-shot `csm-bot ask` loads and builds (no timings: bench/ has those)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from domain.accounts_index import AccountIndex, AccountName

ROOT = Path(__file__).resolve().parents[2]


def test_console_import_leaves_platforms_and_migrations_alone() -> None:
    code = (
        "import json, sys; import bot.cli, bot.console; "
        "print(json.dumps(sorted(m for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(out.stdout))
    for heavy in ("slack_bolt", "slack_sdk", "botbuilder", "aiohttp", "alembic", "apscheduler"):
        assert not any(m == heavy or m.startswith(heavy + ".") for m in loaded), heavy
    # Use cases other than the health card load when first asked for; so do charts.
    assert "handlers.portfolio" not in loaded
    assert "handlers.escalations" not in loaded
    for charting in ("charts.cache", "charts.specs", "charts.render", "matplotlib", "numpy"):
        assert charting not in loaded, charting


def test_what_a_start_up_burst_leaves_is_not_scanned_again() -> None:
    from bot.cli import _gc_paused

    gc.collect()
    frozen = gc.get_freeze_count()
    try:
        with _gc_paused():
            made = [[n] for n in range(10_000)]
        # Kept out of the collector's reach: its first run after the pause would scan them all.
        assert gc.get_freeze_count() >= frozen + len(made)
        assert gc.isenabled()
    finally:
        gc.unfreeze()


def _index() -> AccountIndex:
    return AccountIndex(
        [
            AccountName(1, "Acme Corp", ("Acme", "ACME Corporation")),
            AccountName(2, "Globex", ("Globex Corporation",)),
            AccountName(3, "Initech"),
            *(AccountName(n, f"Willow Motors {n}") for n in range(10, 40)),
        ]
    )


def test_exact_lookup_builds_no_typo_structures() -> None:
    index = _index()
    assert index.resolve("acme").account_id == 1
    assert index.find_in_text("health acme") is not None
    built = set(vars(index))
    assert not {"_deletes", "_trigrams", "_long_vocab"} & built


def test_lazy_structures_answer_like_eager_ones() -> None:
    index = _index()
    assert index.resolve("acmee").account_id == 1  # a typo builds what typos need
    assert index.resolve("wilow mtors 12").account_id == 12
    assert [c.name for c in index.suggest("initek")][:1] == ["Initech"]


def test_cli_ask_restores_garbage_collection(demo_container) -> None:  # type: ignore[no-untyped-def]
    assert gc.isenabled()
    result = CliRunner().invoke(app, ["ask", "/health acme"])
    assert result.exit_code == 0, result.output
    assert "Acme Corp" in result.output
    assert gc.isenabled()
