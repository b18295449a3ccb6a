"""A SQL source: a warehouse on PostgreSQL, mapped by a YAML file of queries, through the import's checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from bot.cli import app
from storage.db import normalise_url
from tests.sync.conftest import TODAY, audit_count, rows

runner = CliRunner()

WAREHOUSE = """
CREATE SCHEMA analytics;
CREATE TABLE analytics.crm_accounts (
    crm_id text PRIMARY KEY, account_name text, csm_email text, tier text,
    arr numeric(12, 2), contract_end date, seats integer
);
CREATE TABLE analytics.usage_daily (crm_id text, day date, active_pct numeric(5, 2), tickets integer);
CREATE TABLE analytics.nps (response_id bigint, crm_id text, score integer, answered_at timestamptz, comment text);
INSERT INTO analytics.crm_accounts VALUES
    ('CRM-1', 'Northwind Traders', 'dana@example.com', 'enterprise', 420000.00, '2027-02-28', 900),
    ('CRM-2', 'Contoso Pharma', 'MARCO@example.com', 'mid-market', 96000.50, '2027-09-14', 150),
    ('CRM-3', 'Fabrikam, Inc.', 'nobody@example.com', 'smb', 18000.00, '2026-12-31', 25);
INSERT INTO analytics.usage_daily VALUES
    ('CRM-1', '2026-11-20', 81.50, 2), ('CRM-1', '2026-11-21', 82.25, 3),
    ('CRM-2', '2026-11-21', 34.00, 11), ('CRM-2', '2027-06-01', 50.00, 1),
    ('CRM-9', '2026-11-21', 10.00, 0);
INSERT INTO analytics.nps VALUES
    (1, 'CRM-1', 9, '2026-11-02 14:05:00+00', 'Great support'),
    (2, 'CRM-2', 11, '2026-11-03 09:00:00+00', 'typo in the survey tool');
"""

SYNC_FILE = """
sources:
  - name: warehouse
    type: sql
    url: ${WAREHOUSE_URL}
    queries:
      accounts: |
        SELECT crm_id AS external_id, account_name AS name, csm_email AS owner_email,
               tier AS segment, arr, contract_end AS renewal_date, seats AS licensed_seats
        FROM analytics.crm_accounts
      readings: |
        SELECT crm_id AS account_external_id, 'product_usage' AS indicator_key, day,
               active_pct AS value, 'warehouse' AS source
        FROM analytics.usage_daily
        UNION ALL
        SELECT crm_id, 'support_tickets', day, tickets, 'warehouse' FROM analytics.usage_daily
      surveys: |
        SELECT 'nps-' || response_id AS external_id, crm_id AS account_external_id, 'nps' AS kind,
               score, answered_at AS responded_on, comment
        FROM analytics.nps
"""


@pytest.fixture
def warehouse(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway PostgreSQL 'warehouse' (skipped, with the reason, where no server answers)."""
    engine = create_engine(normalise_url(postgres_url))
    with engine.begin() as conn:
        for statement in WAREHOUSE.split(";"):
            if statement.strip():
                conn.execute(text(statement))
    engine.dispose()
    monkeypatch.setenv("WAREHOUSE_URL", postgres_url)
    path = tmp_path / "sync.yml"
    path.write_text(SYNC_FILE)
    return path


def sync(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["sync", "run", *args])


def test_a_warehouse_feeds_accounts_readings_and_surveys(team, warehouse) -> None:  # type: ignore[no-untyped-def]
    dry = sync("--config", str(warehouse), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "readings: 10 rows, 6 new" in dry.output
    assert rows(team, "SELECT count(*) FROM account") == [(0,)]

    result = sync("--config", str(warehouse))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "accounts: 3 rows, 2 new, 0 updated, 0 unchanged; 1 refused" in out
    assert "accounts CRM-3, column 'owner_email': no CSM with email 'nobody@example.com'" in out
    assert "readings: 10 rows, 6 new, 0 updated, 0 unchanged; 4 refused" in out
    assert (
        "readings CRM-2/product_usage/2027-06-01, column 'day': 2027-06-01 is in the future" in out
    )
    assert (
        "readings CRM-9/support_tickets/2026-11-21, column 'account_external_id': no account with external_id 'CRM-9'"
        in out
    )
    assert "surveys: 2 rows, 1 new, 0 updated, 0 unchanged; 1 refused" in out
    assert "surveys nps-2, column 'score': nps scores run 0-10: 11" in out
    assert "Health recomputed for 2 accounts." in out
    assert rows(team, "SELECT external_id, name, arr, segment, renewal_date, licensed_seats FROM account ORDER BY external_id") == [
        ("CRM-1", "Northwind Traders", 420000.0, "enterprise", "2027-02-28", 900),
        ("CRM-2", "Contoso Pharma", 96000.5, "mid-market", "2027-09-14", 150),
    ]  # fmt: skip
    assert rows(team, "SELECT a.external_id, r.indicator_key, r.day, r.value, r.source FROM indicator_reading r JOIN account a ON a.id = r.account_id WHERE r.indicator_key = 'product_usage' ORDER BY r.day, a.external_id") == [
        ("CRM-1", "product_usage", "2026-11-20", 81.5, "warehouse"),
        ("CRM-1", "product_usage", "2026-11-21", 82.25, "warehouse"),
        ("CRM-2", "product_usage", "2026-11-21", 34.0, "warehouse"),
    ]  # fmt: skip
    assert rows(team, "SELECT external_id, responded_on, comment FROM survey_response") == [
        ("nps-1", "2026-11-02", "Great support")
    ]
    # The accounts' contract ends are their open renewals: "renewals next 120 days" finds them.
    assert rows(team, "SELECT count(*) FROM renewal WHERE status = 'open'") == [(2,)]
    # ARR history: the sync recorded each new account's ARR through the one writer (from the
    # business date, CSM_TODAY here: the warehouse gives no start date); the dry run recorded
    # nothing, and neither does a re-run.
    arr_history = "SELECT a.external_id, c.day, c.arr, c.kind, c.cause, c.source FROM arr_change c JOIN account a ON a.id = c.account_id ORDER BY a.external_id"
    today = TODAY
    assert rows(team, arr_history) == [
        ("CRM-1", today, 420000.0, "new", "start", "sync"),
        ("CRM-2", today, 96000.5, "new", "start", "sync"),
    ]  # fmt: skip
    before = audit_count(team)
    again = sync("--config", str(warehouse), "--source", "warehouse")
    assert "accounts: 3 rows, 0 new, 0 updated, 2 unchanged; 1 refused" in again.output
    assert "readings: 10 rows, 0 new, 0 updated, 6 unchanged" in again.output
    assert audit_count(team) == before
    assert len(rows(team, arr_history)) == 2


def test_a_broken_query_or_file_is_one_line(team, warehouse, tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken.yml"
    broken.write_text(warehouse.read_text().replace("analytics.nps", "analytics.nps_v2"))
    result = sync("--config", str(broken))
    assert result.exit_code == 1
    assert (
        'FAILED: the surveys query failed: relation "analytics.nps_v2" does not exist'
        in result.output
    )
    assert rows(team, "SELECT count(*) FROM account") == [(0,)]
    renamed = tmp_path / "renamed.yml"
    renamed.write_text(warehouse.read_text().replace("AS licensed_seats", "AS seats"))
    columns = sync("--config", str(renamed))
    assert columns.exit_code == 1
    assert "accounts: every row refused: row 1, column 'seats': unknown column" in columns.output
    unknown = sync("--config", str(warehouse), "--source", "crm")
    assert (
        unknown.exit_code == 2 and "no source named 'crm' (configured: warehouse)" in unknown.output
    )
    missing = sync()
    assert missing.exit_code == 2 and "CSM_SYNC_CONFIG" in missing.output


def one_source(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "sync.yml"
    path.write_text(
        "sources:\n  - name: warehouse\n    type: sql\n"
        f'    url: "{url}"\n{extra}    queries:\n      accounts: SELECT 1\n'
    )
    return path


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("snowflake://reader:s3cret@acct/db", "snowflake"),
        ("mysql://reader:s3cret@warehouse/db", "MySQLdb"),
        ("not a url", "not a database URL"),
    ],
)
def test_a_source_url_this_install_cannot_use_fails_that_source(
    team, tmp_path, url: str, said: str
) -> None:  # type: ignore[no-untyped-def]
    result = sync("--config", str(one_source(tmp_path, url)))
    assert result.exit_code == 1, result.output
    assert "warehouse:\n  FAILED: " in result.output and said in result.output
    # The source's URL, not the assistant's own database, and never its password.
    assert "CSM_DATABASE_URL" not in result.output and "s3cret" not in result.output
    assert "Traceback" not in result.output


def test_a_yaml_mistake_says_where_without_echoing_the_file(team, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sync.yml"
    path.write_text("sources:\n  - name: crm\n    client_secret: hunter2: oops\n")
    result = sync("--config", str(path))
    assert result.exit_code == 2
    assert "not valid YAML at line 3, column" in result.output
    # A secret on the broken line must not land in a terminal or a log.
    assert "hunter2" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_non_numeric_setting_is_one_line(team, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = one_source(tmp_path, "postgresql://reader@127.0.0.1/wh", "    timeout_seconds: soon\n")
    result = sync("--config", str(path))
    assert result.exit_code == 2, result.output
    assert "timeout_seconds" in result.output and "Traceback" not in result.output


def test_a_dry_run_with_refused_rows_does_not_claim_it_wrote_anything(team, warehouse) -> None:  # type: ignore[no-untyped-def]
    dry = sync("--config", str(warehouse), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "refused 6 rows" in dry.output
    assert "the rest was written" not in dry.output
    assert "the rest would be written" in dry.output
