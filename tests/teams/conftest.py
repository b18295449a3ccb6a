"""Teams test wiring: a seeded demo database per test, a fake Bot Connector, and the real HTTP endpoint."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_connector import FakeConnector
from starlette.testclient import TestClient
from teams_support import TODAY, client_for, make_container

from bot.container import Container
from storage.db import make_engine, upgrade


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo portfolio (Acme Corp owned by dana@example.com, Globex...), built once per run."""
    from handlers.demo import seed_demo

    path = tmp_path_factory.mktemp("teams-seed") / "seed.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    seed_demo(engine, today=TODAY, accounts=12, days=60)
    engine.dispose()
    return path


@pytest.fixture
def db_url(seeded_db: Path, tmp_path: Path) -> str:
    """A private copy of the seeded database (the backup API also copies what sits in the WAL)."""
    target = tmp_path / "csm.db"
    src, dst = sqlite3.connect(seeded_db), sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{target}"


@pytest.fixture
def container(db_url: str) -> Container:
    return make_container(db_url)


@pytest.fixture
def connector() -> Iterator[FakeConnector]:
    fake = FakeConnector().start()
    yield fake
    fake.stop()


@pytest.fixture
def client(container: Container, connector: FakeConnector) -> TestClient:
    """/api/messages with the JWT check on; every activity is signed like the Bot Connector's."""
    return client_for(container, connector)
