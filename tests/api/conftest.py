"""Fixtures for the data API: a demo container with a token, a test client, a real uvicorn server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.api import routes
from bot.container import Container

TOKEN = "test-token-5f0c2b9e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Only indicator_reading is this big in the demo database.
BIG_TABLE = 20_000


def set_token(container: Container, token: str | None) -> None:
    """Configure CSM_API_TOKEN on a live container (settings are read per request)."""
    container.settings = container.settings.model_copy(update={"api_token": token})


def build_app(container: Container, **options: Any) -> Starlette:
    return Starlette(routes=routes(container, **options))


def fingerprint(engine: Engine) -> dict[str, tuple[object, ...]]:
    """Counts and checksums of every table, to prove a refused request wrote nothing.

    Small tables are checksummed row by row; the ~150,000 demo readings get count, last id and
    value sums instead (a full checksum of them costs seconds per test).
    """
    out: dict[str, tuple[object, ...]] = {}
    with engine.connect() as conn:
        names = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).scalars()
        for name in list(names):
            count, last = conn.exec_driver_sql(f'SELECT count(*), max(rowid) FROM "{name}"').one()
            if count > BIG_TABLE:
                extra = conn.exec_driver_sql(
                    f'SELECT total(value), count(note), count(DISTINCT source) FROM "{name}"'
                ).one()
                out[name] = (count, last, *extra)
                continue
            rows = conn.exec_driver_sql(f'SELECT * FROM "{name}" ORDER BY rowid').fetchall()
            out[name] = (count, last, hashlib.sha256(repr(rows).encode()).hexdigest())
    return out


@pytest.fixture
def api_container(demo_container: Container) -> Container:
    set_token(demo_container, TOKEN)
    return demo_container


@pytest.fixture
def client(api_container: Container) -> Iterator[TestClient]:
    with TestClient(build_app(api_container)) as test_client:
        yield test_client
