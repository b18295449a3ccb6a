"""`csm-bot` commands end to end: import errors, scheduler run-once and outbox, teams-manifest."""

from __future__ import annotations

import re
import shutil
import sqlite3
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from bot.cli import app
from scheduler.models import Alert, Delivery, JobRun
from storage.models import Account
from tests.conftest import DEMO_TODAY

runner = CliRunner()


def test_import_with_bad_rows_lists_them_and_writes_nothing(demo_container, tmp_path: Path) -> None:
    bad = tmp_path / "accounts.csv"
    bad.write_text(
        "external_id,name,owner_email,arr,renewal_date\n"
        "NEW-1,Brand New Co,dana@example.com,12000,2027-03-01\n"
        "NEW-2,Broken Co,nobody@nowhere.io,lots,2027-13-45\n"
    )
    with Session(demo_container.engine) as session:
        before = session.exec(select(func.count(Account.id))).one()
    result = runner.invoke(app, ["import", "accounts", str(bad)])
    assert result.exit_code == 1
    assert "row 3" in result.output and "'arr'" in result.output
    assert "errors in 1 row, nothing was imported" in result.output
    with Session(demo_container.engine) as session:
        assert session.exec(select(func.count(Account.id))).one() == before


def test_import_good_file_then_again_changes_nothing(demo_container, tmp_path: Path) -> None:
    good = tmp_path / "accounts.csv"
    good.write_text("external_id,name,owner_email,arr\nNEW-1,Brand New Co,dana@example.com,12000\n")
    first = runner.invoke(app, ["import", "accounts", str(good)])
    assert first.exit_code == 0, first.output
    assert "1 new" in first.output
    again = runner.invoke(app, ["import", "accounts", str(good)])
    assert again.exit_code == 0 and "0 new, 0 updated, 1 unchanged" in again.output


def test_unknown_import_kind_is_refused(demo_container, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a\n1\n")
    result = runner.invoke(app, ["import", "invoices", str(path)])
    assert result.exit_code == 2 and "accounts" in result.output


def test_scheduler_run_once_queues_and_outbox_lists(demo_container) -> None:
    # 14:00 UTC is past Dana's 08:30 New York digest time; on the pinned demo day it may still
    # be ahead of the clock, hence --backfill.
    at = ["scheduler", "run-once", "--at", "2026-11-23T14:00:00Z", "--backfill"]
    result = runner.invoke(app, at)
    assert result.exit_code == 0, result.output
    assert "daily_digest" in result.output
    listing = runner.invoke(app, ["outbox", "--status", "sent"])
    assert listing.exit_code == 0, listing.output
    assert "daily_digest" in listing.output and "csm:1" in listing.output
    again = runner.invoke(app, at)
    assert again.exit_code == 0 and "queued: nothing" in again.output


def test_scheduler_bad_input_gets_a_message(demo_container) -> None:
    bad_at = runner.invoke(app, ["scheduler", "run-once", "--at", "next tuesday"])
    assert bad_at.exit_code == 2 and "ISO-8601" in bad_at.output
    bad_status = runner.invoke(app, ["outbox", "--status", "lost"])
    assert bad_status.exit_code == 2 and "pending" in bad_status.output


def test_teams_manifest(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MICROSOFT_APP_ID", raising=False)
    missing = runner.invoke(app, ["teams-manifest", "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "MICROSOFT_APP_ID" in missing.output
    monkeypatch.setenv("MICROSOFT_APP_ID", "not-a-guid")
    bad = runner.invoke(app, ["teams-manifest", "--out", str(tmp_path)])
    assert bad.exit_code == 2
    monkeypatch.setenv("MICROSOFT_APP_ID", "0b6fe6d1-fece-44f7-9a48-56465e2d5ab8")
    good = runner.invoke(
        app, ["teams-manifest", "--out", str(tmp_path), "--domain", "csm.example.com"]
    )
    assert good.exit_code == 0, good.output
    zips = list(tmp_path.glob("*.zip"))
    assert zips and {"manifest.json", "color.png", "outline.png"} <= set(
        zipfile.ZipFile(zips[0]).namelist()
    )


def test_eval_nlu_reports_accuracy_and_misses(demo_container, tmp_path: Path) -> None:
    shipped = runner.invoke(app, ["eval-nlu", "tests/nlu/utterances.tsv"])
    assert shipped.exit_code == 0, shipped.output
    for line in ("intent accuracy:", "account accuracy:", "entity accuracy:"):
        value = float(re.search(rf"{line}\s+([\d.]+)%", shipped.output).group(1))
        assert value >= 95.0, shipped.output
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text(
        "utterance\tintent\taccount\twindow_days\towner\tband\n"
        "how is acme doing\trenewals_upcoming\tAcme Corp\t*\t*\t*\n"
        "how is acme doing\taccount_health\tAcme Corp\t*\t*\t*\n"
    )
    report = runner.invoke(app, ["eval-nlu", str(wrong)])
    assert report.exit_code == 0, report.output
    assert "50.0%" in report.output and "how is acme doing" in report.output


def test_recompute_with_a_bad_day_says_so(demo_container) -> None:
    result = runner.invoke(app, ["recompute", "--at", "garbage"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_unknown_as_email_sees_no_account_data(demo_container) -> None:
    plan = runner.invoke(app, ["ask", "plan acme", "--as", "nobody@example.com", "--json"])
    assert plan.exit_code == 0, plan.output
    assert "Acme" not in plan.output and '"template": "notice"' in plan.output
    mine = runner.invoke(app, ["ask", "my accounts", "--as", "nobody@example.com"])
    assert "All accounts" not in mine.output and "I don't know you yet" in mine.output


def test_eval_nlu_without_accounts_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite_template: Path
) -> None:
    """No schema, or a schema without accounts: one line with the fix, not a traceback."""
    bare = tmp_path / "bare.db"
    monkeypatch.setenv("CSM_DATABASE_URL", f"sqlite:///{bare}")
    sqlite3.connect(bare).close()
    missing = runner.invoke(app, ["eval-nlu", "tests/nlu/tuning.tsv"])
    assert missing.exit_code == 2 and "csm-bot db upgrade" in missing.output, missing.output
    migrated = tmp_path / "migrated.db"
    shutil.copyfile(migrated_sqlite_template, migrated)
    monkeypatch.setenv("CSM_DATABASE_URL", f"sqlite:///{migrated}")
    empty = runner.invoke(app, ["eval-nlu", "tests/nlu/tuning.tsv"])
    assert empty.exit_code == 2 and "csm-bot demo" in empty.output, empty.output
    assert "Traceback" not in missing.output + empty.output


def test_eval_nlu_reads_the_question_format(demo_container) -> None:
    report = runner.invoke(app, ["eval-nlu", "tests/nlu/tuning.tsv"])
    assert report.exit_code == 0, report.output
    for line in ("intent accuracy:", "account accuracy:"):
        value = float(re.search(rf"{line}\s+([\d.]+)%", report.output).group(1))
        assert value >= 95.0, report.output
    assert "per entity:" in report.output and "per intent (expected):" in report.output
    for entity in ("window", "scope", "band", "amount", "metric"):
        assert re.search(rf"^\s+{entity}\s+[\d.]+%", report.output, re.MULTILINE), entity


def test_imports_go_by_the_business_date(demo_container, tmp_path: Path) -> None:
    """With CSM_TODAY pinned (a demo, a backfill), an ARR change is dated by that day, not by the
    machine's calendar, and a reading after it is in the future."""
    from storage.models import ArrChange

    accounts = tmp_path / "accounts.csv"
    accounts.write_text("external_id,name,owner_email,arr\nNEW-2,Dated Co,dana@example.com,50000\n")
    assert runner.invoke(app, ["import", "accounts", str(accounts)]).exit_code == 0
    accounts.write_text("external_id,name,owner_email,arr\nNEW-2,Dated Co,dana@example.com,65000\n")
    assert runner.invoke(app, ["import", "accounts", str(accounts)]).exit_code == 0
    with Session(demo_container.engine) as session:
        account = session.exec(select(Account).where(Account.external_id == "NEW-2")).one()
        days = session.exec(
            select(ArrChange.day, ArrChange.arr).where(ArrChange.account_id == account.id)
        ).all()
    assert sorted(days)[-1] == (DEMO_TODAY, 65000.0)
    assert all(day <= DEMO_TODAY for day, _ in days)

    readings = tmp_path / "readings.csv"
    ahead = (DEMO_TODAY + timedelta(days=3)).isoformat()
    readings.write_text(f"account_external_id,indicator_key,day,value\nNEW-2,nps,{ahead},30\n")
    result = runner.invoke(app, ["import", "readings", str(readings)])
    assert result.exit_code == 1 and f"{ahead} is in the future" in result.output


def test_recompute_from_backfills_every_day_of_a_range(demo_container) -> None:
    from sqlalchemy import delete

    from storage.models import HealthSnapshot

    first = DEMO_TODAY - timedelta(days=9)
    with Session(demo_container.engine) as session:
        session.exec(delete(HealthSnapshot).where(HealthSnapshot.day >= first))  # type: ignore[call-overload]
        session.commit()
    result = runner.invoke(app, ["recompute", "--from", first.isoformat()])
    assert result.exit_code == 0, result.output
    assert f"for 10 days, {first} to {DEMO_TODAY}" in result.output
    with Session(demo_container.engine) as session:
        days = session.exec(
            select(HealthSnapshot.day).where(HealthSnapshot.day >= first).distinct()
        ).all()
    assert sorted(days) == [first + timedelta(days=n) for n in range(10)]
    backwards = runner.invoke(app, ["recompute", "--from", "2026-12-25"])
    assert backwards.exit_code == 2 and "is after --at" in backwards.output


def _counts(container) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with Session(container.engine) as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(t)).one()
            for t in (Delivery, Alert, JobRun)
        )


def test_run_once_far_in_the_past_or_future_is_refused_and_writes_nothing(demo_container) -> None:
    """A week-old instant posted 552 stale messages; a future one used up tomorrow's keys."""
    past = runner.invoke(app, ["scheduler", "run-once", "--at", "2026-11-10T09:00:00Z"])
    assert past.exit_code == 2
    assert "outside the catch-up window" in past.output and "--backfill" in past.output
    assert len(past.output.strip().splitlines()) == 1
    future = runner.invoke(app, ["scheduler", "run-once", "--at", "2026-11-26T09:00:00Z"])
    assert future.exit_code == 2 and "ahead" in future.output
    assert _counts(demo_container) == (0, 0, 0)


def test_run_once_dry_run_prints_what_it_would_queue_and_writes_nothing(demo_container) -> None:
    result = runner.invoke(
        app, ["scheduler", "run-once", "--at", "2026-11-16T14:00:00Z", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    first, *rows = result.output.strip().splitlines()
    assert first.startswith("dry run at 2026-11-16T14:00:00+00:00: would queue ")
    assert "Nothing was written" in first
    assert rows and any("daily_digest" in r for r in rows)
    assert _counts(demo_container) == (0, 0, 0)


def test_a_backfill_queues_what_was_due_then_and_stamps_the_real_send_time(
    demo_container,
) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    result = runner.invoke(
        app, ["scheduler", "run-once", "--at", "2026-11-16T14:00:00Z", "--backfill"]
    )
    assert result.exit_code == 0, result.output
    with Session(demo_container.engine) as session:
        sent = session.exec(select(Delivery).where(Delivery.status == "sent")).all()
    assert sent
    today = datetime.now(UTC).date()
    assert {r.sent_at.date() for r in sent if r.sent_at} == {today}  # wall clock, not 11-16


def test_outbox_retry_requeues_failed_rows_with_a_fresh_deadline(demo_container) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    runner.invoke(app, ["scheduler", "run-once", "--at", "2026-11-23T14:00:00Z", "--backfill"])
    old = datetime.now(UTC) - timedelta(days=3)
    with Session(demo_container.engine) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.kind == "daily_digest")
            .values(status="failed", error="expired: http_503", created_at=old, updated_at=old)
        )
        session.commit()
        failed = session.exec(
            select(func.count()).select_from(Delivery).where(Delivery.status == "failed")
        ).one()
    assert failed
    none_recent = runner.invoke(app, ["outbox", "retry", "--since", "2026-11-29T00:00:00Z"])
    assert none_recent.exit_code == 0 and "No failed deliveries" in none_recent.output
    bad = runner.invoke(app, ["outbox", "retry", "--since", "yesterday"])
    assert bad.exit_code == 2 and "ISO-8601" in bad.output
    result = runner.invoke(app, ["outbox", "retry", "--kind", "daily_digest"])
    assert result.exit_code == 0 and f"{failed} failed daily_digest" in result.output
    with Session(demo_container.engine) as session:
        rows = session.exec(select(Delivery).where(Delivery.kind == "daily_digest")).all()
    assert {r.status for r in rows} == {"pending"}
    # Queued three days ago, but a retry gets a new deadline: it is not expired at once.
    assert all(r.deadline and r.deadline > datetime.now(UTC) for r in rows)
    # The next dispatch sends them.
    again = runner.invoke(
        app, ["scheduler", "run-once", "--at", "2026-11-23T14:00:00Z", "--backfill"]
    )
    assert again.exit_code == 0 and f"sent {failed}" in again.output


def test_demo_works_for_a_week_or_a_month_of_readings(tmp_path: Path, monkeypatch) -> None:
    """`csm-bot demo --days 30` crashed with an IndexError."""
    for days in ("7", "30"):
        url = f"sqlite:///{tmp_path / f'demo-{days}.db'}"
        monkeypatch.setenv("CSM_DATABASE_URL", url)
        monkeypatch.setenv("CSM_TODAY", "2026-11-23")
        result = runner.invoke(app, ["demo", "--accounts", "12", "--days", days, "--no-chat"])
        assert result.exit_code == 0, result.output
        assert "12 accounts" in result.output
    too_short = runner.invoke(app, ["demo", "--days", "6", "--no-chat"])
    assert too_short.exit_code == 2


def test_a_first_import_says_there_is_no_trend_yet(demo_container, tmp_path: Path) -> None:
    """A new account has one day of scores: the card says so instead of a bare "·" or "— in 7 days"."""
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        "external_id,name,owner_email,arr\nNEW-3,Brand Newco,dana@example.com,9000\n"
    )
    assert runner.invoke(app, ["import", "accounts", str(accounts)]).exit_code == 0
    readings = tmp_path / "readings.csv"
    day = DEMO_TODAY.isoformat()
    readings.write_text(
        "account_external_id,indicator_key,day,value\n"
        + "".join(
            f"NEW-3,{key},{day},{value}\n"
            for key, value in (
                ("product_usage", 70),
                ("feature_adoption", 60),
                ("support_tickets", 2),
                ("nps", 30),
                ("csm_sentiment", 3),
            )
        )
    )
    imported = runner.invoke(app, ["import", "readings", str(readings)])
    assert imported.exit_code == 0, imported.output
    card = runner.invoke(app, ["ask", "health brand newco", "--as", "dana@example.com"])
    head = card.output.splitlines()[0]
    assert head.startswith("Brand Newco — ") and "/100" in head, card.output
    assert "no trend yet" in head and not head.rstrip().endswith("·"), head
