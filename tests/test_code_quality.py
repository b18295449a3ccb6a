"""The rules the layout promises: domain/ is pure, dependencies point one way, and ruff is clean."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_top_levels(package: str) -> dict[str, set[str]]:
    """For each module of a package, the top-level names it imports."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


# None: the demo's health history is computed by the use case handlers.demo, and every table
# lives in storage (all_models included).
ALLOWED_EXCEPTIONS: set[str] = set()


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "domain",
            {"bot", "storage", "handlers", "templates", "scheduler", "sqlmodel", "sqlalchemy"},
        ),
        ("handlers", {"bot", "scheduler", "slack_bolt", "slack_sdk", "botbuilder"}),
        # Drawing and decks are pure: plain data in, PNG or pptx bytes out.
        (
            "charts",
            {"bot", "storage", "handlers", "scheduler", "templates", "sqlmodel", "sqlalchemy"},
        ),
        (
            "decks",
            {"bot", "storage", "handlers", "scheduler", "templates", "sqlmodel", "sqlalchemy"},
        ),
        ("storage", {"bot", "handlers", "scheduler", "slack_bolt", "botbuilder"}),
        # The wiring in bot/ hands the scheduler its notifiers and renderer.
        ("scheduler", {"bot", "slack_bolt", "slack_sdk", "botbuilder"}),
    ],
)
def test_dependencies_point_one_way(package: str, forbidden: set[str]) -> None:
    offenders = {
        module: sorted(names & forbidden)
        for module, names in imported_top_levels(package).items()
        if names & forbidden and module not in ALLOWED_EXCEPTIONS
    }
    assert offenders == {}


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return [exe]


def test_ruff_lint_is_clean() -> None:
    result = subprocess.run(
        [*_ruff(), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = subprocess.run(
        [*_ruff(), "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
