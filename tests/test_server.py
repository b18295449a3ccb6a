"""The one HTTP process serves every edge: health, metrics, the data API (and Slack/Teams, tested in their folders)."""

from __future__ import annotations

from starlette.testclient import TestClient

from bot.server import create_app


def test_server_serves_healthz_metrics_and_the_data_api(demo_container) -> None:
    demo_container.settings.api_token = "s3cret-token"
    client = TestClient(create_app(demo_container, with_slack=False, with_teams=False))
    assert client.get("/healthz").status_code == 200
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "# HELP" in metrics.text
    health = client.get(
        "/api/v1/accounts/ACC-0001/health", headers={"Authorization": "Bearer s3cret-token"}
    )
    assert health.status_code == 200, health.text
    assert health.json()["account"]["name"] == "Acme Corp"
    refused = client.get(
        "/api/v1/accounts/ACC-0001/health", headers={"Authorization": "Bearer nope"}
    )
    assert refused.status_code == 401
