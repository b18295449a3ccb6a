"""One source of truth: an account's renewal date and ARR are its open renewal, whichever file brings them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.config import Settings
from bot.console import ConsoleChat
from bot.container import Container
from storage.csv_import import import_csv, import_records
from tests.test_import import add_people

DATA = Path(__file__).parent / "data"
TODAY = "2026-11-23"


@pytest.fixture
def team(migrated_url: str) -> Iterator[Container]:
    """The sample people and accounts imported into an empty database, on each backend."""
    container = Container(settings=Settings(database_url=migrated_url, today=TODAY))
    add_people(container.engine)
    import_csv(container.engine, "accounts", DATA / "accounts.csv")
    yield container
    container.engine.dispose()


def renewals(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT a.external_id, r.external_id, r.renewal_date, r.arr, r.status "
                    "FROM renewal r JOIN account a ON a.id = r.account_id "
                    "ORDER BY a.external_id, r.renewal_date"
                )
            )
        ]


def ask(container: Container, message: str, as_email: str) -> str:
    return ConsoleChat(container, as_email).ask(message)


def test_imported_renewal_dates_answer_renewal_questions(team: Container) -> None:
    fabrikam = ask(team, "when does fabrikam renew", "priya@example.com")
    assert "renews on 2026-12-31" in fabrikam and "$18k" in fabrikam
    assert "no renewal" not in fabrikam.lower()
    upcoming = ask(team, "renewals next 120 days", "priya@example.com")
    assert upcoming.startswith(
        "Renewals in the next 120 days (23 Nov 2026 – 23 Mar 2027), your book: 1 renewal,"
    )
    assert "Fabrikam, Inc." in upcoming
    northwind = ask(team, "renewals next 120 days", "dana@example.com")
    assert "Northwind Traders" in northwind and "2027-02-28" in northwind


def test_accounts_and_renewals_files_tell_one_story(team: Container, tmp_path: Path) -> None:
    engine = team.engine
    assert [r[:2] + r[3:] for r in renewals(engine)] == [
        ("CRM-1001", None, 420000.0, "open"),
        ("CRM-1002", None, 96000.5, "open"),
        ("CRM-1003", None, 18000.0, "open"),
    ]
    # Opportunities take over the renewals the accounts made, rather than doubling them.
    report = import_csv(engine, "renewals", DATA / "renewals.csv")
    assert (report.inserted, report.updated) == (1, 2)
    rows = renewals(engine)
    assert [(r[0], r[1], str(r[2]), r[4]) for r in rows] == [
        ("CRM-1001", "R-1", "2027-02-28", "open"),
        ("CRM-1002", None, "2027-09-14", "open"),
        ("CRM-1003", "R-3", "2025-12-31", "renewed"),
        ("CRM-1003", "R-2", "2026-12-31", "open"),
    ]
    # Re-importing the unchanged accounts file leaves the opportunities' values alone...
    assert import_csv(engine, "accounts", DATA / "accounts.csv").changed == 0
    assert renewals(engine) == rows
    # ...and a moved renewal date or a new ARR moves the open renewal with it.
    moved = (DATA / "accounts.csv").read_text().replace("2026-12-31", "2027-01-31")
    moved = moved.replace("18000,", "21000,")
    path = tmp_path / "accounts.csv"
    path.write_text(moved)
    report = import_csv(engine, "accounts", path)
    assert (report.updated, report.renewals_created, report.renewals_updated) == (1, 0, 1)
    assert ("CRM-1003", "R-2", "2027-01-31", 21000.0, "open") in [
        (r[0], r[1], str(r[2]), r[3], r[4]) for r in renewals(engine)
    ]
    # A renewal moved by the CRM moves the account's renewal date: "my accounts" agrees.
    import_records(
        engine,
        "renewals",
        None,
        [{"external_id": "R-1", "account_external_id": "CRM-1001", "renewal_date": "2027-03-31"}],
    )
    with engine.connect() as conn:
        assert (
            str(
                conn.execute(
                    text("SELECT renewal_date FROM account WHERE external_id = 'CRM-1001'")
                ).scalar_one()
            )
            == "2027-03-31"
        )
    mine = ask(team, "my accounts", "dana@example.com")
    assert "renews 2027-03-31" in mine
