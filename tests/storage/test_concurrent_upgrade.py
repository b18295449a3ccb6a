"""Several replicas starting at once each run `db upgrade`: on PostgreSQL they take turns and all succeed."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

from storage.db import normalise_url, upgrade


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgresql_all_succeed(postgres_url: str) -> None:
    failures: list[BaseException] = []

    def replica() -> None:
        try:
            upgrade(postgres_url)
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    engine = create_engine(normalise_url(postgres_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM sync_run")).scalar() == 0
    engine.dispose()
