"""Fixtures of the sync tests: a team's database, TLS for the fake Salesforce, the fakes themselves."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.config import Settings
from bot.container import Container
from tests.sync.fake_hubspot import FakeHubSpot
from tests.sync.fake_salesforce import FakeSalesforce
from tests.test_import import add_people

TODAY = "2026-11-23"


@pytest.fixture
def team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite_template: Path
) -> Iterator[Container]:
    """Dana, Marco and Priya (CSMs) in an empty database; the CLI points at it."""
    path = tmp_path / "team.db"
    shutil.copyfile(migrated_sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("CSM_DATABASE_URL", url)
    monkeypatch.setenv("CSM_TODAY", TODAY)
    monkeypatch.delenv("CSM_SYNC_CONFIG", raising=False)
    container = Container(settings=Settings(database_url=url, today=TODAY))
    add_people(container.engine)
    yield container
    container.engine.dispose()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for 127.0.0.1 and the CA bundle path a client trusts it with."""
    import trustme

    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    bundle = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return server, str(bundle)


@pytest.fixture
def salesforce(tls: tuple[ssl.SSLContext, str]) -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce().start(tls[0])
    yield fake
    fake.stop()


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot().start()
    yield fake
    fake.stop()


def rows(container: Container, sql: str) -> list[tuple]:
    with container.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def audit_count(container: Container) -> int:
    return rows(container, "SELECT count(*) FROM audit_log")[0][0]
