"""GET /api/v1/accounts/{external_id}/health: the health card as JSON, 404 for unknown ids."""

from __future__ import annotations

from sqlalchemy import text
from starlette.testclient import TestClient

from bot.container import Container
from domain.numbers import round_half_away
from tests.api.conftest import AUTH


def test_health_of_an_account(client: TestClient, api_container: Container) -> None:
    with api_container.engine.connect() as conn:
        ext, score = conn.execute(
            text(
                "SELECT a.external_id, s.score FROM account a JOIN health_snapshot s "
                "ON s.account_id = a.id AND s.day = '2026-11-23' WHERE a.name = 'Acme Corp'"
            )
        ).one()
    response = client.get(f"/api/v1/accounts/{ext}/health", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["as_of"] == "2026-11-23"
    assert body["account"]["name"] == "Acme Corp"
    assert body["account"]["external_id"] == ext
    health = body["health"]
    assert health["day"] == "2026-11-23"
    assert health["score"] == round_half_away(score)  # one decimal, as every surface shows it
    assert health["band"] in ("red", "amber", "green")
    assert {i["key"] for i in health["indicators"]} >= {"product_usage", "nps"}
    assert set(health["trend"]) >= {"delta_7d", "delta_30d", "direction"}
    assert "red_in_days" in health["forecast"]
    assert "sentiment" in body


def test_unknown_account_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/accounts/NO-SUCH-ID/health", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_account"
    assert "NO-SUCH-ID" in response.json()["message"]
    # Some CRMs put "/" in ids: the route still matches and answers for the whole id.
    slashed = client.get("/api/v1/accounts/EU%2F123/health", headers=AUTH)
    assert slashed.status_code == 404
    assert "'EU/123'" in slashed.json()["message"]


def test_health_needs_the_token(client: TestClient) -> None:
    response = client.get("/api/v1/accounts/ACC-0001/health")
    assert response.status_code == 401
    wrong = client.get("/api/v1/accounts/ACC-0001/health", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
