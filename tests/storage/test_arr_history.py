"""ARR history: one writer, one row per change with its day, Account.arr kept in step, and every
path (CSV import, data API, demo, migration backfill) recording through it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from storage.arr_history import ArrChangeRequest, record_arr_changes
from storage.bulk import insert_dicts, table
from storage.csv_import import import_csv, import_records
from tests.test_import import DATA, add_people

STAMP = datetime(2026, 1, 1, tzinfo=UTC)


def new_account(engine: Engine, ext: str = "A-1", arr: float = 0.0) -> int:
    with engine.begin() as conn:
        insert_dicts(
            conn,
            table("account"),
            [
                {
                    "external_id": ext,
                    "name": f"Account {ext}",
                    "aliases": [],
                    "arr": arr,
                    "created_at": STAMP,
                    "updated_at": STAMP,
                }
            ],
        )
        return conn.execute(
            text("SELECT id FROM account WHERE external_id = :e"), {"e": ext}
        ).scalar_one()


def history(engine: Engine, account_id: int | None = None) -> list[tuple]:
    arr = table("arr_change")
    stmt = select(arr.c.day, arr.c.previous_arr, arr.c.arr, arr.c.kind, arr.c.cause)
    if account_id is not None:
        stmt = stmt.where(arr.c.account_id == account_id)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt.order_by(arr.c.account_id, arr.c.day))]


def account_arr(engine: Engine, account_id: int) -> float:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT arr FROM account WHERE id = :i"), {"i": account_id}
        ).scalar_one()


def record(engine: Engine, *changes: ArrChangeRequest):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        return record_arr_changes(conn, list(changes))


def test_changes_are_kept_with_their_day_and_kind(any_engine: Engine) -> None:
    aid = new_account(any_engine)
    record(any_engine, ArrChangeRequest(aid, date(2025, 1, 10), 100_000.0, "start"))
    record(any_engine, ArrChangeRequest(aid, date(2026, 1, 10), 120_000.0, "renewal"))
    record(any_engine, ArrChangeRequest(aid, date(2026, 6, 1), 90_000.0, "update"))
    assert history(any_engine, aid) == [
        (date(2025, 1, 10), 0.0, 100_000.0, "new", "start"),
        (date(2026, 1, 10), 100_000.0, 120_000.0, "expansion", "renewal"),
        (date(2026, 6, 1), 120_000.0, 90_000.0, "contraction", "update"),
    ]
    assert account_arr(any_engine, aid) == 90_000.0  # the newest ARR
    # A churn records ARR 0 but leaves the account's ARR at what was lost.
    record(any_engine, ArrChangeRequest(aid, date(2026, 9, 1), 0.0, "churn"))
    assert history(any_engine, aid)[-1] == (date(2026, 9, 1), 90_000.0, 0.0, "churn", "churn")
    assert account_arr(any_engine, aid) == 90_000.0


def test_the_same_arr_again_records_nothing(engine: Engine) -> None:
    aid = new_account(engine)
    change = ArrChangeRequest(aid, date(2025, 1, 10), 100_000.0, "start")
    record(engine, change)
    report = record(engine, change, ArrChangeRequest(aid, date(2026, 3, 1), 100_000.0))
    assert (report.inserted, report.unchanged) == (0, 2)
    assert len(history(engine, aid)) == 1


def test_a_second_change_on_a_day_replaces_the_first_and_undoing_removes_it(engine: Engine) -> None:
    aid = new_account(engine)
    record(engine, ArrChangeRequest(aid, date(2025, 1, 1), 100.0, "start"))
    record(engine, ArrChangeRequest(aid, date(2026, 2, 1), 150.0))
    record(engine, ArrChangeRequest(aid, date(2026, 2, 1), 130.0))
    assert history(engine, aid)[-1] == (date(2026, 2, 1), 100.0, 130.0, "expansion", "update")
    report = record(engine, ArrChangeRequest(aid, date(2026, 2, 1), 100.0))
    assert report.removed == 1
    assert history(engine, aid) == [(date(2025, 1, 1), 0.0, 100.0, "new", "start")]
    assert account_arr(engine, aid) == 100.0


def test_a_backdated_change_relinks_the_ones_after_it(engine: Engine) -> None:
    aid = new_account(engine)
    record(engine, ArrChangeRequest(aid, date(2025, 1, 1), 100.0, "start"))
    record(engine, ArrChangeRequest(aid, date(2026, 6, 1), 120.0))
    # A renewal to 120 in March, recorded late: June no longer changes anything, so it goes.
    record(engine, ArrChangeRequest(aid, date(2026, 3, 1), 120.0, "renewal"))
    assert history(engine, aid) == [
        (date(2025, 1, 1), 0.0, 100.0, "new", "start"),
        (date(2026, 3, 1), 100.0, 120.0, "expansion", "renewal"),
    ]
    # And one before March re-links March's "previous".
    record(engine, ArrChangeRequest(aid, date(2026, 2, 1), 110.0))
    assert history(engine, aid)[-1] == (date(2026, 3, 1), 110.0, 120.0, "expansion", "renewal")


def test_bad_changes_are_refused_whole(engine: Engine) -> None:
    aid = new_account(engine)
    with pytest.raises(ValueError, match="negative"):
        record(
            engine,
            ArrChangeRequest(aid, date(2026, 1, 1), 10.0),
            ArrChangeRequest(aid, date(2026, 2, 1), -1.0),
        )
    with pytest.raises(ValueError, match="cause"):
        record(engine, ArrChangeRequest(aid, date(2026, 1, 1), 10.0, "gift"))
    assert history(engine, aid) == []


# ---------------------------------------------------------------------------------------------
# every writer goes through it


def test_csv_imports_record_the_arr_history(any_engine: Engine, tmp_path: Path) -> None:
    add_people(any_engine)
    import_csv(any_engine, "accounts", DATA / "accounts.csv")
    import_csv(any_engine, "renewals", DATA / "renewals.csv")
    with any_engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT external_id, id FROM account")).all())
    # Fabrikam started 2023-12-01 and renewed 15k -> 18k on 2025-12-20: the renewal's ARR
    # corrects the start ARR that the accounts file (today's 18k) could only assume.
    assert history(any_engine, ids["CRM-1003"]) == [
        (date(2023, 12, 1), 0.0, 15_000.0, "new", "start"),
        (date(2025, 12, 20), 15_000.0, 18_000.0, "expansion", "renewal"),
    ]
    assert history(any_engine, ids["CRM-1001"]) == [
        (date(2024, 3, 1), 0.0, 420_000.0, "new", "start")
    ]
    assert account_arr(any_engine, ids["CRM-1003"]) == 18_000.0
    before = history(any_engine)
    # Importing the same files again changes nothing.
    import_csv(any_engine, "accounts", DATA / "accounts.csv")
    import_csv(any_engine, "renewals", DATA / "renewals.csv")
    assert history(any_engine) == before
    # A changed ARR is an expansion from the day it was imported; a churn date ends it.
    changed = tmp_path / "accounts.csv"
    changed.write_text(
        "external_id,name,arr\nCRM-1001,Northwind Traders,450000\n", encoding="utf-8"
    )
    import_csv(any_engine, "accounts", changed)
    today = date.today()
    assert history(any_engine, ids["CRM-1001"])[-1] == (
        today,
        420_000.0,
        450_000.0,
        "expansion",
        "update",
    )
    churn = tmp_path / "churn.csv"
    churn.write_text(
        "external_id,name,churned_on\nCRM-1002,Contoso Pharma,2026-10-31\n", encoding="utf-8"
    )
    import_csv(any_engine, "accounts", churn)
    assert history(any_engine, ids["CRM-1002"])[-1] == (
        date(2026, 10, 31),
        96_000.5,
        0.0,
        "churn",
        "churn",
    )


def test_records_imports_record_it_too(engine: Engine) -> None:
    """The HTTP data API's JSON rows go through import_records: same history."""
    add_people(engine)
    import_records(
        engine,
        "accounts",
        None,
        [{"external_id": "J-1", "name": "Jay Co", "arr": 50_000, "start_date": "2025-04-01"}],
    )
    import_records(
        engine,
        "renewals",
        None,
        [
            {
                "external_id": "JR-1",
                "account_external_id": "J-1",
                "renewal_date": "2026-04-01",
                "arr": 50_000,
                "status": "churned",
                "renewed_arr": 0,
            }
        ],
    )
    assert history(engine) == [
        (date(2025, 4, 1), 0.0, 50_000.0, "new", "start"),
        (date(2026, 4, 1), 50_000.0, 0.0, "churn", "churn"),
    ]


def test_the_demo_seeds_a_consistent_history(demo_url: str) -> None:
    from storage.db import make_engine

    engine = make_engine(demo_url)
    with engine.connect() as conn:
        accounts = conn.execute(text("SELECT id, arr, churned_on FROM account")).all()
        rows = conn.execute(
            text("SELECT account_id, day, arr, source FROM arr_change ORDER BY account_id, day")
        ).all()
    engine.dispose()
    by_account: dict[int, list[tuple]] = {}
    for aid, day, arr, source in rows:
        by_account.setdefault(aid, []).append((day, arr))
        assert source == "demo"
    assert set(by_account) == {a for a, _, _ in accounts}
    for aid, arr, churned_on in accounts:
        timeline = by_account[aid]
        positive = [v for _, v in timeline if v > 0]
        assert positive[-1] == arr
        if churned_on is not None:
            assert timeline[-1] == (churned_on, 0.0)
    # Last year's renewals moved ARR up and down: the history has both, not only starts.
    assert sum(len(t) > 1 for t in by_account.values()) > 20


def test_the_migration_backfills_existing_data(sqlite_url: str) -> None:
    from storage.db import make_engine, upgrade

    upgrade(sqlite_url, "0005_merge")
    engine = make_engine(sqlite_url)
    stamp = "2026-01-01 00:00:00.000000"
    with engine.begin() as conn:
        for ext, arr, start, churned in (
            ("B-1", 120_000, "2024-05-01", None),
            ("B-2", 100_000, "2023-09-01", "2026-03-01"),
            ("B-3", 30_000, None, None),
        ):
            conn.execute(
                text(
                    "INSERT INTO account (external_id, name, aliases, segment, arr, "
                    "lifecycle_stage, start_date, churned_on, created_at, updated_at) VALUES "
                    "(:e, :e, '[]', 'smb', :a, 'adoption', :s, :c, :t, :t)"
                ),
                {"e": ext, "a": arr, "s": start, "c": churned, "t": stamp},
            )
        conn.execute(
            text(
                "INSERT INTO renewal (account_id, external_id, renewal_date, arr, status, "
                "renewed_arr, closed_on) VALUES (1, 'R-B1', '2026-02-15', 100000, 'renewed', "
                "120000, '2026-02-15'), (2, 'R-B2', '2026-03-01', 100000, 'churned', 0, NULL)"
            )
        )
    engine.dispose()
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    rows = history(engine)
    engine.dispose()
    assert rows[:3] == [
        (date(2024, 5, 1), 0.0, 100_000.0, "new", "start"),
        (date(2026, 2, 15), 100_000.0, 120_000.0, "expansion", "renewal"),
        (date(2023, 9, 1), 0.0, 100_000.0, "new", "start"),
    ]
    assert rows[3] == (date(2026, 3, 1), 100_000.0, 0.0, "churn", "churn")
    # No start date: its ARR counts from when the row was created.
    assert rows[4] == (date(2026, 1, 1), 0.0, 30_000.0, "new", "start")
    assert len(rows) == 5
