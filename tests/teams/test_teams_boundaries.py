"""botbuilder (archived upstream) stays inside bot/teams/, so the adapter can be swapped for the Agents SDK."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "domain", "scheduler", "storage", "templates")
BOT_FRAMEWORK_IMPORT = re.compile(
    r"^\s*(from|import)\s+(botbuilder|botframework|msrest)\b", re.MULTILINE
)


def test_no_botbuilder_import_outside_bot_teams() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if (ROOT / "bot" / "teams") in path.parents:
                continue
            if BOT_FRAMEWORK_IMPORT.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_check_itself_catches_an_import() -> None:
    assert BOT_FRAMEWORK_IMPORT.search("from botbuilder.core import TurnContext\n")
    assert BOT_FRAMEWORK_IMPORT.search("    import botframework.connector\n")
    assert not BOT_FRAMEWORK_IMPORT.search("# botbuilder is archived\n")


def test_the_schema_and_server_wiring_load_without_botbuilder() -> None:
    # storage.all_models holds the Teams table; neither it nor the wiring may drag botbuilder in.
    code = (
        "import sys, storage.all_models, storage.platform_models, bot.teams.manifest; "
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('botbuilder', 'botframework')]; "
        "assert not loaded, loaded"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
