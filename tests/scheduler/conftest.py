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


@pytest.fixture(scope="session")
def book_300_template(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A 300-account demo portfolio, every account owned by Marco (Rome), with five weeks of
    health snapshots: the book of one busy CSM, seeded once per run."""
    from sqlalchemy import text

    from handlers.demo import seed_demo
    from storage.db import make_engine, upgrade

    path = tmp_path_factory.mktemp("book300") / "book.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    seed_demo(engine, today=TODAY, accounts=300, days=70, snapshot_days=38)
    with engine.begin() as conn:
        marco = conn.execute(text("SELECT id FROM csm WHERE email = 'marco@example.com'")).scalar()
        conn.execute(text("UPDATE account SET owner_id = :m"), {"m": marco})
    with engine.connect() as conn:  # fold the WAL into the file so a plain copy is complete
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def book_300(book_300_template, tmp_path):  # type: ignore[no-untyped-def]
    """A Container on a private copy of the 300-account book."""
    import shutil

    from bot.config import Settings
    from bot.container import Container

    target = tmp_path / "book.db"
    shutil.copyfile(book_300_template, target)
    container = Container(
        settings=Settings(database_url=f"sqlite:///{target}", today=TODAY.isoformat())
    )
    yield container
    container.engine.dispose()
