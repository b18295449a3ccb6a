"""Shared fixtures: a fresh migrated database per test, on SQLite and (where a server answers) PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from storage.db import make_engine, upgrade

# Real payloads written by Slack and Microsoft, copied into the repository; tests/fixtures/SOURCES.md
# says where each one comes from.
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PG_ADMIN_URL = os.environ.get(
    "CSM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reason() -> str | None:
    """None when a PostgreSQL server answers, else why the PostgreSQL tests skip."""
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means: skip, and say why
        return f"no PostgreSQL server answers at {PG_ADMIN_URL} ({type(exc).__name__})"
    return None


_PG_SKIP = _postgres_reason()


@pytest.fixture(autouse=True)
def _files_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Charts and decks the local chat writes land in a temporary folder, never in $HOME."""
    monkeypatch.setenv("CSM_FILES_DIR", str(tmp_path_factory.getbasetemp() / "files"))


def fixture_path(*parts: str) -> Path:
    """Path of a payload in tests/fixtures/ (real payloads written by Slack and Microsoft)."""
    return FIXTURES.joinpath(*parts)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'csm.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for one test, dropped afterwards."""
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    name = f"csm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from storage.db import engine_for

        engine_for.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database migrated once per run; tests get copies (Alembic is the slow part)."""
    path = tmp_path_factory.mktemp("schema") / "schema.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    eng = make_engine(url)
    with eng.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    eng.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated once per run, used as the TEMPLATE of each test's database."""
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    name = f"csm_tpl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    upgrade(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    from storage.db import engine_for

    engine_for.cache_clear()
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def migrated_url(
    request: pytest.FixtureRequest, db_url: str, migrated_sqlite_template: Path
) -> str:
    """``db_url`` with the schema already in place (a copy of a migrated template)."""
    if db_url.startswith("sqlite"):
        shutil.copyfile(migrated_sqlite_template, db_url.removeprefix("sqlite:///"))
        return db_url
    template = request.getfixturevalue("migrated_postgres_template")
    name = db_url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return db_url


@pytest.fixture
def engine(sqlite_url: str, migrated_sqlite_template: Path) -> Iterator[Engine]:
    """A migrated, empty SQLite database."""
    shutil.copyfile(migrated_sqlite_template, sqlite_url.removeprefix("sqlite:///"))
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


@pytest.fixture
def any_engine(migrated_url: str) -> Iterator[Engine]:
    """A migrated, empty database on each backend."""
    eng = make_engine(migrated_url)
    yield eng
    eng.dispose()


DEMO_TODAY = date(2026, 11, 23)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 60-account demo portfolio seeded once per test run (tests get a copy each)."""
    from domain.health_model import load_health_models
    from handlers.demo import seed_demo

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    eng = make_engine(url)
    seed_demo(eng, today=DEMO_TODAY, models=load_health_models(None))
    with eng.connect() as conn:  # fold the WAL into the file so a plain copy is complete
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    eng.dispose()
    return path


@pytest.fixture
def demo_url(demo_template: Path, tmp_path: Path) -> str:
    """A private copy of the demo portfolio database for one test."""
    target = tmp_path / "demo.db"
    shutil.copyfile(demo_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def demo_container(demo_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A Container on a copy of the demo database, with today pinned to DEMO_TODAY."""
    from bot.config import Settings
    from bot.container import Container

    monkeypatch.setenv("CSM_DATABASE_URL", demo_url)
    monkeypatch.setenv("CSM_TODAY", DEMO_TODAY.isoformat())
    container = Container(settings=Settings(database_url=demo_url, today=DEMO_TODAY.isoformat()))
    yield container
    container.engine.dispose()
