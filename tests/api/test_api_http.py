"""The data API over real HTTP: uvicorn on a free 127.0.0.1 port, driven with httpx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from bot.container import Container
from domain.numbers import round_half_away
from tests.api.conftest import AUTH, build_app
from tests.http_server import ServerThread


@pytest.fixture
def server(api_container: Container) -> Iterator[ServerThread]:
    with ServerThread(build_app(api_container)) as running:
        yield running


def test_csv_import_then_health_over_http(server: ServerThread, api_container: Container) -> None:
    with api_container.engine.connect() as conn:
        account_id, ext = conn.execute(
            text("SELECT id, external_id FROM account WHERE name = 'Globex'")
        ).one()
    body = (
        "account_external_id,indicator_key,day,value\n"
        f"{ext},product_usage,2026-11-23,2\n"
        f"{ext},support_tickets,2026-11-23,45\n"
    )
    with httpx.Client(base_url=server.url, timeout=10) as http:
        refused = http.post(
            "/api/v1/import/readings", content=body, headers={"Content-Type": "text/csv"}
        )
        assert refused.status_code == 401
        imported = http.post(
            "/api/v1/import/readings",
            content=body,
            headers={**AUTH, "Content-Type": "text/csv; charset=utf-8"},
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["imported"] == 2
        assert imported.json()["health_recomputed"] == 1
        health = http.get(f"/api/v1/accounts/{ext}/health", headers=AUTH)
    assert health.status_code == 200
    usage = next(i for i in health.json()["health"]["indicators"] if i["key"] == "product_usage")
    assert usage["value"] == 2.0
    with api_container.engine.connect() as conn:
        score = conn.execute(
            text("SELECT score FROM health_snapshot WHERE account_id = :a AND day = '2026-11-23'"),
            {"a": account_id},
        ).scalar_one()
    assert health.json()["health"]["score"] == round_half_away(score)
