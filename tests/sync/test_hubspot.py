"""HubSpot sync against a local fake answering as the CRM v3 API documentation shows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.sync.conftest import audit_count, rows
from tests.sync.fake_hubspot import RATE_LIMITED, TOKEN, FakeHubSpot, hubspot_error

runner = CliRunner()

COMPANIES = [
    {
        "id": "512",
        "properties": {
            "name": "Northwind Traders",
            "lifecyclestage": "customer",
            "hubspot_owner_id": "41629779",
            "arr": "420000",
            "renewal_date": "1803772800000",
            "seats": "900",
        },
    },
    {
        "id": "513",
        "properties": {
            "name": "Contoso Pharma",
            "lifecyclestage": "customer",
            "hubspot_owner_id": "41629780",
            "arr": "96000.50",
            "renewal_date": "2027-09-14",
            "seats": "150",
        },
    },
    {
        "id": "514",
        "properties": {
            "name": "Prospect Ltd",
            "lifecyclestage": "lead",
            "hubspot_owner_id": "41629779",
            "arr": None,
            "renewal_date": None,
            "seats": None,
        },
    },
    {
        "id": "515",
        "properties": {
            "name": "Fabrikam, Inc.",
            "lifecyclestage": "customer",
            "hubspot_owner_id": None,
            "arr": "18000",
            "renewal_date": "2026-12-31T00:00:00Z",
            "seats": "lots",
        },
    },
]
DEALS = [
    {
        "id": "9001",
        "company": "512",
        "properties": {
            "dealname": "Northwind renewal 2027",
            "amount": "450000",
            "closedate": "2027-02-28T00:00:00Z",
            "dealstage": "contractsent",
            "pipeline": "renewals",
            "hs_deal_stage_probability": "0.8",
        },
    },
    {
        "id": "9002",
        "company": "513",
        "properties": {
            "dealname": "Contoso renewal 2025",
            "amount": "80000",
            "closedate": "2025-09-14T00:00:00Z",
            "dealstage": "closedlost",
            "pipeline": "renewals",
            "hs_deal_stage_probability": "0",
        },
    },
    {
        "id": "9003",
        "company": "512",
        "properties": {
            "dealname": "Northwind upsell",
            "amount": "20000",
            "closedate": "2026-12-01T00:00:00Z",
            "dealstage": "appointmentscheduled",
            "pipeline": "default",
            "hs_deal_stage_probability": "0.2",
        },
    },
]
OWNERS = [
    {"id": "41629779", "email": "dana@example.com", "firstName": "Dana", "lastName": "Whitfield"},
    {"id": "41629780", "email": "marco@example.com", "firstName": "Marco", "lastName": "Rossi"},
]  # fmt: skip


@pytest.fixture
def sync_file(tmp_path: Path, hubspot: FakeHubSpot, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    hubspot.companies = [dict(c) for c in COMPANIES]
    hubspot.deals = [dict(d) for d in DEALS]
    hubspot.owners = [dict(o) for o in OWNERS]
    path = tmp_path / "sync.yml"
    path.write_text(
        "sources:\n"
        "  - name: hubspot\n"
        "    type: hubspot\n"
        "    access_token: ${HUBSPOT_ACCESS_TOKEN}\n"
        f"    base_url: {hubspot.url}\n"
        "    backoff_seconds: 0.05\n"
        "    attempts: 3\n"
        "    companies:\n"
        "      fields: {arr: arr, renewal_date: renewal_date, licensed_seats: seats}\n"
        "    deals:\n"
        "      pipeline: renewals\n"
    )
    return path


def sync(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["sync", "run", *args])


def test_companies_and_deals_arrive_checked_and_paged(team, hubspot, sync_file) -> None:  # type: ignore[no-untyped-def]
    result = sync("--config", str(sync_file))
    assert result.exit_code == 0, result.output
    # Prospect Ltd is a lead, not a customer: not an account. Fabrikam's seats are refused.
    assert "accounts: 3 rows, 2 new, 0 updated, 0 unchanged; 1 refused" in result.output
    assert "accounts 515, column 'licensed_seats': not a number: 'lots'" in result.output
    # The upsell is in another pipeline; the open renewal deal takes over Northwind's renewal.
    assert "renewals: 2 rows, 1 new, 1 updated, 0 unchanged" in result.output
    assert rows(
        team,
        "SELECT a.external_id, a.name, a.arr, a.renewal_date, a.licensed_seats, c.email FROM account a LEFT JOIN csm c ON c.id = a.owner_id ORDER BY a.external_id",
    ) == [
        ("512", "Northwind Traders", 420000.0, "2027-02-28", 900, "dana@example.com"),
        ("513", "Contoso Pharma", 96000.5, "2027-09-14", 150, "marco@example.com"),
    ]
    assert rows(team, "SELECT r.external_id, a.external_id, r.renewal_date, r.arr, r.likelihood, r.status, r.renewed_arr FROM renewal r JOIN account a ON a.id = r.account_id ORDER BY r.renewal_date") == [
        ("9002", "513", "2025-09-14", 80000.0, 0.0, "churned", 0.0),
        ("9001", "512", "2027-02-28", 450000.0, 0.8, "open", None),
        (None, "513", "2027-09-14", 96000.5, None, "open", None),
    ]  # fmt: skip
    # Pages of 2: four companies in two requests, the second with the cursor of the first.
    companies = [r for r in hubspot.server.requests if r.path == "/crm/v3/objects/companies"]
    assert [r.query.get("after") for r in companies] == [None, ["2"]]
    assert set(companies[0].query["properties"]) >= {
        "name",
        "arr",
        "renewal_date",
        "hubspot_owner_id",
    }
    deals = [r for r in hubspot.server.requests if r.path == "/crm/v3/objects/deals"]
    assert deals[0].query["associations"] == ["companies"]
    before = audit_count(team)
    again = sync("--config", str(sync_file))
    assert "accounts: 3 rows, 0 new, 0 updated, 2 unchanged; 1 refused" in again.output
    assert "renewals: 2 rows, 0 new, 0 updated, 2 unchanged" in again.output
    assert audit_count(team) == before


def test_a_429_is_retried_and_the_sync_completes(team, hubspot, sync_file) -> None:  # type: ignore[no-untyped-def]
    hubspot.server.fail("/crm/v3/objects/companies", RATE_LIMITED)
    started = time.monotonic()
    result = sync("--config", str(sync_file))
    assert result.exit_code == 0, result.output
    assert "accounts: 3 rows, 2 new" in result.output
    first, second = [r for r in hubspot.server.requests if r.path == "/crm/v3/objects/companies"][
        :2
    ]
    assert first.query == second.query  # the same page again, after its Retry-After
    assert second.at - first.at >= 0.9 and time.monotonic() - started >= 0.9


def test_a_5xx_that_persists_fails_the_source_in_hubspots_words(team, hubspot, sync_file) -> None:  # type: ignore[no-untyped-def]
    hubspot.server.fail(
        "/crm/v3/objects/deals",
        hubspot_error(
            502, "The server encountered a temporary error; please retry.", "INTERNAL_ERROR"
        ),
        times=10,
    )
    result = sync("--config", str(sync_file))
    assert result.exit_code == 1
    assert (
        "FAILED: HubSpot refused reading deals: HTTP 502 INTERNAL_ERROR: "
        "The server encountered a temporary error; please retry." in result.output
    )
    # Companies were read fine, but a source is written whole or not at all.
    assert rows(team, "SELECT count(*) FROM account") == [(0,)]
    assert len([p for p in hubspot.server.paths() if p == "/crm/v3/objects/deals"]) == 3


def test_a_wrong_token_is_one_line(team, hubspot, sync_file, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-wrong")
    result = sync("--config", str(sync_file))
    assert result.exit_code == 1
    assert (
        "HubSpot refused reading companies: HTTP 401 INVALID_AUTHENTICATION: Authentication credentials not found."
        in result.output
    )
    assert "Traceback" not in result.output
