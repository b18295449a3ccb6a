"""Fixtures of the scheduler tests: a hand-built portfolio, a container on it, a fixed config."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy.engine import Engine

from scheduler.config import SchedulerConfig


@pytest.fixture
def config() -> SchedulerConfig:
    """Console platform, default offsets and routes, no real channels."""
    return SchedulerConfig(platforms=("console",))


@pytest.fixture
def small_container(engine: Engine, sqlite_url: str) -> Iterator[object]:
    """A Container on an empty migrated SQLite database (tests add what they need)."""
    from bot.config import Settings
    from bot.container import Container

    container = Container(settings=Settings(database_url=sqlite_url, today="2026-11-23"))
    yield container


TODAY = date(2026, 11, 23)  # a Monday
