"""Salesforce sync against a local fake answering as the REST API documentation shows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.sync.conftest import audit_count, rows
from tests.sync.fake_salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce, error

runner = CliRunner()


def owner(email: str | None) -> dict[str, str] | None:
    return {"Email": email} if email else None


ACCOUNTS = [
    {
        "Id": "001RO00000A1",
        "Name": "Northwind Traders",
        "Owner": owner("dana@example.com"),
        "ARR__c": 420000.0,
        "Contract_End__c": "2027-02-28",
        "Segment__c": "Enterprise",
    },
    {
        "Id": "001RO00000A2",
        "Name": "Contoso Pharma",
        "Owner": owner("marco@example.com"),
        "ARR__c": 96000.5,
        "Contract_End__c": "2027-09-14",
        "Segment__c": "Mid-Market",
    },
    {
        "Id": "001RO00000A3",
        "Name": "Fabrikam, Inc.",
        "Owner": owner("priya@example.com"),
        "ARR__c": 18000.0,
        "Contract_End__c": "2026-12-31",
        "Segment__c": None,
    },
    # Owned by someone not on the team, and with an impossible ARR: refused, the rest goes in.
    {
        "Id": "001RO00000A4",
        "Name": "Ghost Co",
        "Owner": owner("ghost@example.com"),
        "ARR__c": -5.0,
        "Contract_End__c": None,
        "Segment__c": None,
    },
    {
        "Id": "001RO00000A5",
        "Name": "Tailspin Toys",
        "Owner": None,
        "ARR__c": 5000.0,
        "Contract_End__c": None,
        "Segment__c": "SMB",
    },
]
OPPORTUNITIES = [
    {"Id": "006RO00000R1", "AccountId": "001RO00000A1", "CloseDate": "2027-02-28", "Amount": 450000.0, "Probability": 75, "IsClosed": False, "IsWon": False},
    {"Id": "006RO00000R2", "AccountId": "001RO00000A3", "CloseDate": "2025-12-31", "Amount": 18000.0, "Probability": 100, "IsClosed": True, "IsWon": True},
    {"Id": "006RO00000R3", "AccountId": "001RO00000A2", "CloseDate": "2025-09-14", "Amount": 80000.0, "Probability": 0, "IsClosed": True, "IsWon": False},
]  # fmt: skip


def config(tmp_path: Path, fake: FakeSalesforce, ca_bundle: str, **extra: str) -> Path:
    path = tmp_path / "sync.yml"
    lines = [
        "sources:",
        "  - name: salesforce",
        "    type: salesforce",
        f"    login_url: {fake.url}",
        "    client_id: ${SF_CLIENT_ID}",
        "    client_secret: ${SF_CLIENT_SECRET}",
        f"    ca_bundle: {ca_bundle}",
        "    backoff_seconds: 0.05",
        "    attempts: 3",
        "    accounts:",
        "      where: Type = 'Customer'",
        "      fields: {arr: ARR__c, renewal_date: Contract_End__c, segment: Segment__c}",
        "    renewals:",
        "      where: Type = 'Renewal'",
    ]
    lines += [f"    {k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def sync_file(tmp_path, salesforce, tls, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SF_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SF_CLIENT_SECRET", CLIENT_SECRET)
    salesforce.accounts = [dict(a) for a in ACCOUNTS]
    salesforce.opportunities = [dict(o) for o in OPPORTUNITIES]
    return config(tmp_path, salesforce, tls[1])


def sync(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["sync", "run", *args])


def test_accounts_and_opportunities_arrive_checked_and_paged(team, salesforce, sync_file) -> None:  # type: ignore[no-untyped-def]
    result = sync("--config", str(sync_file))
    assert result.exit_code == 0, result.output
    assert "accounts: 5 rows, 4 new, 0 updated, 0 unchanged; 1 refused" in result.output
    # R1 takes over the renewal Northwind's contract end made; the decided R2 and R3 are new.
    assert "renewals: 3 rows, 2 new, 1 updated, 0 unchanged" in result.output
    assert "refused 1 row " in result.output
    assert "accounts 001RO00000A4, column 'arr': must not be negative: '-5.0'" in result.output
    assert (
        "accounts 001RO00000A4, column 'owner_email': no CSM with email 'ghost@example.com'"
        in result.output
    )
    assert rows(
        team,
        "SELECT external_id, name, arr, segment, renewal_date FROM account ORDER BY external_id",
    ) == [
        ("001RO00000A1", "Northwind Traders", 420000.0, "enterprise", "2027-02-28"),
        ("001RO00000A2", "Contoso Pharma", 96000.5, "mid-market", "2027-09-14"),
        ("001RO00000A3", "Fabrikam, Inc.", 18000.0, "mid-market", "2026-12-31"),
        ("001RO00000A5", "Tailspin Toys", 5000.0, "smb", None),
    ]
    # The open opportunity takes over the renewal Northwind's contract end made; decided ones are kept.
    assert rows(team, "SELECT r.external_id, a.external_id, r.renewal_date, r.arr, r.likelihood, r.status, r.renewed_arr, r.closed_on FROM renewal r JOIN account a ON a.id = r.account_id ORDER BY r.renewal_date") == [
        ("006RO00000R3", "001RO00000A2", "2025-09-14", 80000.0, 0.0, "churned", 0.0, "2025-09-14"),
        ("006RO00000R2", "001RO00000A3", "2025-12-31", 18000.0, 1.0, "renewed", 18000.0, "2025-12-31"),
        (None, "001RO00000A3", "2026-12-31", 18000.0, None, "open", None, None),
        ("006RO00000R1", "001RO00000A1", "2027-02-28", 450000.0, 0.75, "open", None, None),
        (None, "001RO00000A2", "2027-09-14", 96000.5, None, "open", None, None),
    ]  # fmt: skip
    assert salesforce.soql[0] == (
        "SELECT Id, Name, Owner.Email, ARR__c, Contract_End__c, Segment__c FROM Account WHERE Type = 'Customer'"
    )
    assert salesforce.soql[1].endswith("FROM Opportunity WHERE Type = 'Renewal'")
    # Batches of 2: 5 accounts take three query requests, following nextRecordsUrl.
    assert salesforce.server.paths().count("/services/data/v62.0/query/") == 2
    assert len([p for p in salesforce.server.paths() if "/query/01g" in p]) == 3
    # Again: nothing new, nothing written, no audit entry.
    before = audit_count(team)
    again = sync("--config", str(sync_file))
    assert again.exit_code == 0
    assert "accounts: 5 rows, 0 new, 0 updated, 4 unchanged; 1 refused" in again.output
    assert "renewals: 3 rows, 0 new, 0 updated, 3 unchanged" in again.output
    assert audit_count(team) == before
    assert rows(team, "SELECT source, status, refused FROM sync_run ORDER BY id") == [
        ("salesforce", "ok", 1),
        ("salesforce", "ok", 1),
    ]


def test_a_dry_run_reports_and_writes_nothing(team, sync_file) -> None:  # type: ignore[no-untyped-def]
    result = sync("--config", str(sync_file), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "(dry run: nothing written)" in result.output
    assert "accounts: 5 rows, 4 new" in result.output
    # The renewals could name accounts of the same (rolled back) run.
    assert "renewals: 3 rows, 2 new, 1 updated" in result.output
    assert rows(team, "SELECT count(*) FROM account") == [(0,)]
    assert rows(team, "SELECT count(*) FROM renewal") == [(0,)]


def test_a_429_is_retried_after_its_retry_after(team, salesforce, sync_file) -> None:  # type: ignore[no-untyped-def]
    salesforce.server.fail(
        "/services/data/v62.0/query",
        error(
            429,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
            **{"Retry-After": "1"},
        ),
    )
    started = time.monotonic()
    result = sync("--config", str(sync_file), "--source", "salesforce")
    assert result.exit_code == 0, result.output
    assert "accounts: 5 rows, 4 new" in result.output
    first, second = [
        r for r in salesforce.server.requests if r.path == "/services/data/v62.0/query/"
    ][:2]
    assert second.at - first.at >= 0.9 and time.monotonic() - started >= 0.9


def test_a_server_that_stays_down_fails_the_source_and_writes_nothing(
    team, salesforce, sync_file
) -> None:  # type: ignore[no-untyped-def]
    salesforce.server.fail(
        "/services/data/v62.0/query",
        error(503, "SERVER_UNAVAILABLE", "Server is unavailable to handle the request."),
        times=10,
    )
    result = sync("--config", str(sync_file))
    assert result.exit_code == 1
    assert (
        "FAILED: Salesforce refused the Account query: HTTP 503 SERVER_UNAVAILABLE: "
        "Server is unavailable to handle the request." in result.output
    )
    assert "Traceback" not in result.output
    # Three attempts in all (attempts: 3), then the report.
    assert salesforce.server.paths().count("/services/data/v62.0/query/") == 3
    assert rows(team, "SELECT count(*) FROM account") == [(0,)]
    assert rows(team, "SELECT status, error FROM sync_run") == [
        (
            "failed",
            "Salesforce refused the Account query: HTTP 503 SERVER_UNAVAILABLE: Server is unavailable to handle the request.",
        )
    ]


def test_limits_and_logins_are_reported_in_salesforces_words(
    team, salesforce, sync_file, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    salesforce.server.fail(
        "/services/data/v62.0/query",
        error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    )
    limited = sync("--config", str(sync_file))
    assert limited.exit_code == 1
    assert "HTTP 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded." in limited.output
    monkeypatch.setenv("SF_CLIENT_SECRET", "wrong")
    refused = sync("--config", str(sync_file))
    assert refused.exit_code == 1
    assert "Salesforce login failed (invalid_client: invalid client credentials)" in refused.output
    monkeypatch.delenv("SF_CLIENT_SECRET")
    unset = sync("--config", str(sync_file))
    assert unset.exit_code == 2
    assert "${SF_CLIENT_SECRET} is used but not set in the environment" in unset.output
    assert rows(team, "SELECT count(*) FROM account") == [(0,)]
