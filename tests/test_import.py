"""CSV import: every kind lands, bad files are rejected whole with every error listed, re-import is a no-op."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select, text
from sqlalchemy.engine import Engine

from storage.bulk import insert_dicts, table
from storage.csv_import import KINDS, ImportFailed, ImportReport, RowError, import_csv

DATA = Path(__file__).parent / "data"
CSMS = ("dana", "marco", "priya")


def add_people(engine: Engine) -> Engine:
    """The CSMs the sample files name as owners."""
    with engine.begin() as conn:
        insert_dicts(
            conn,
            table("csm"),
            [
                {
                    "name": local.title(),
                    "email": f"{local}@example.com",
                    "role": "csm",
                    "created_at": datetime(2026, 11, 23, 9, tzinfo=UTC),
                }
                for local in CSMS
            ],
        )
    return engine


@pytest.fixture
def people(any_engine: Engine) -> Engine:
    return add_people(any_engine)


@pytest.fixture
def sqlite_people(engine: Engine) -> Engine:
    return add_people(engine)


def fingerprint(engine: Engine) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every table's full contents, to prove nothing changed."""
    meta = MetaData()
    meta.reflect(bind=engine)
    out: dict[str, tuple[int, str]] = {}
    with engine.connect() as conn:
        for tbl in meta.sorted_tables:
            rows = conn.execute(select(tbl).order_by(*tbl.primary_key.columns)).all()
            digest = hashlib.sha256(repr(rows).encode()).hexdigest()
            out[tbl.name] = (len(rows), digest)
    return out


def import_all(engine: Engine) -> dict[str, ImportReport]:
    return {kind: import_csv(engine, kind, DATA / f"{kind}.csv") for kind in KINDS}


def write(tmp_path: Path, name: str, body: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding=encoding, newline="")
    return path


# ---------------------------------------------------------------------------------------------


def test_every_kind_imports_and_reimport_changes_nothing(people: Engine) -> None:
    first = import_all(people)
    assert {k: (r.rows, r.inserted, r.updated) for k, r in first.items()} == {
        # Dana, Marco and Priya were there; Alex is new and becomes their manager.
        "people": (4, 1, 3),
        "accounts": (3, 3, 0),
        "readings": (5, 5, 0),
        "milestones": (4, 4, 0),
        # R-1 and R-2 take over the open renewals the accounts' renewal dates made.
        "renewals": (3, 1, 2),
        "surveys": (4, 4, 0),
    }
    assert first["accounts"].renewals_created == 3
    assert len(first["accounts"].account_ids) == 3
    before = fingerprint(people)

    again = import_all(people)

    for kind, report in again.items():
        assert (report.inserted, report.updated, report.unchanged) == (0, 0, report.rows), kind
        assert report.account_ids == frozenset()
    assert fingerprint(people) == before


def test_imported_values_land_where_expected(people: Engine) -> None:
    import_all(people)
    with people.connect() as conn:
        acc = conn.execute(
            text(
                "SELECT a.name, a.arr, a.segment, a.licensed_seats, a.renewal_date, c.email "
                "FROM account a JOIN csm c ON c.id = a.owner_id WHERE a.external_id = 'CRM-1003'"
            )
        ).one()
        assert tuple(acc[:4]) == ("Fabrikam, Inc.", 18000.0, "smb", 25)
        assert str(acc[4]) == "2026-12-31"
        assert acc[5] == "priya@example.com"
        aliases = conn.execute(
            select(table("account").c.aliases).where(table("account").c.external_id == "CRM-1001")
        ).scalar_one()
        assert aliases == ["Northwind", "NWT"]
        nps = conn.execute(
            text(
                "SELECT r.value, r.source, r.note FROM indicator_reading r "
                "JOIN account a ON a.id = r.account_id "
                "WHERE a.external_id = 'CRM-1001' AND r.indicator_key = 'nps'"
            )
        ).one()
        assert tuple(nps) == (35.0, "survey tool", "Q4 relationship survey")
        # Milestones create the plan and one objective per distinct title, in file order.
        objectives = conn.execute(
            text(
                "SELECT o.title, count(m.id) FROM objective o "
                "JOIN success_plan p ON p.id = o.plan_id JOIN account a ON a.id = p.account_id "
                "JOIN milestone m ON m.objective_id = o.id "
                "WHERE a.external_id = 'CRM-1001' GROUP BY o.title, o.position ORDER BY o.position"
            )
        ).all()
        assert [tuple(r) for r in objectives] == [
            ("Roll out to all regions", 2),
            ("Automate reporting", 1),
        ]
        likelihood = conn.execute(
            text("SELECT likelihood FROM renewal WHERE external_id = 'R-2'")
        ).scalar_one()
        assert likelihood == pytest.approx(0.4)
        survey = conn.execute(
            text("SELECT kind, score, comment FROM survey_response WHERE external_id = 'S-4'")
        ).one()
        assert tuple(survey) == ("ces", 3, "Setup was hard, docs helped")
        audit = conn.execute(text("SELECT entity, action, source FROM audit_log ORDER BY id")).all()
        # One entry per person added or changed (a role is an access right), one per file.
        people_entries = [("csm", "person.add", "import")] + [
            ("csm", "person.update", "import")
        ] * 3
        assert [tuple(a) for a in audit] == people_entries + [
            (k, "import", "import") for k in KINDS
        ]


def test_bad_rows_are_all_reported_and_nothing_is_written(people: Engine, tmp_path: Path) -> None:
    import_all(people)
    before = fingerprint(people)
    bad = write(
        tmp_path,
        "accounts.csv",
        "external_id,name,owner_email,arr,lifecycle_stage,renewal_date\n"
        "CRM-2001,Good Row Ltd,dana@example.com,1000,adoption,2027-01-01\n"
        "CRM-2002,Bad Money,dana@example.com,abc,adoption,2027-01-01\n"
        "CRM-2003,Bad Stage,dana@example.com,1000,growing,2027-01-01\n"
        "CRM-2004,Nobody Owns Me,ghost@example.com,1000,adoption,2027-01-01\n"
        "CRM-2005,American Dates,dana@example.com,1000,adoption,12/31/2026\n"
        "CRM-2001,Duplicate,dana@example.com,1000,adoption,2027-01-01\n"
        "CRM-2006,,dana@example.com,-5,adoption,2027-01-01\n",
    )

    with pytest.raises(ImportFailed) as caught:
        import_csv(people, "accounts", bad)

    errors = caught.value.errors
    assert [(e.row, e.column) for e in errors] == [
        (3, "arr"),
        (4, "lifecycle_stage"),
        (5, "owner_email"),
        (6, "renewal_date"),
        (7, "external_id"),
        (8, "arr"),
        (8, "name"),
    ]
    assert str(errors[0]) == "row 3, column 'arr': not a number: 'abc'"
    assert "onboarding, adoption, expansion, renewal" in errors[1].reason
    assert "ghost@example.com" in errors[2].reason
    assert "YYYY-MM-DD" in errors[3].reason
    assert "duplicate of row 2" in errors[4].reason
    assert "row 8, column 'name'" in str(caught.value)
    assert fingerprint(people) == before


def test_bad_readings_name_the_allowed_indicator_keys(people: Engine, tmp_path: Path) -> None:
    import_all(people)
    before = fingerprint(people)
    bad = write(
        tmp_path,
        "readings.csv",
        "account_external_id,indicator_key,day,value\n"
        "CRM-1001,product_usage,2026-11-22,70\n"
        "CRM-1001,happiness,2026-11-22,7\n"
        "CRM-9999,nps,2026-11-22,10\n"
        "CRM-1002,nps,2026-11-31,10\n"
        "CRM-1002,nps,2026-11-22,ten\n"
        "CRM-1001,product_usage,2026-11-22,71\n",
    )
    with pytest.raises(ImportFailed) as caught:
        import_csv(people, "readings", bad)
    errors = caught.value.errors
    assert [(e.row, e.column) for e in errors] == [
        (3, "indicator_key"),
        (4, "account_external_id"),
        (5, "day"),
        (6, "value"),
        (7, "day"),
    ]
    assert errors[0].reason.startswith("unknown indicator 'happiness' (allowed: product_usage,")
    for key in ("feature_adoption", "support_tickets", "exec_engagement", "csm_sentiment"):
        assert key in errors[0].reason
    assert "CRM-9999" in errors[1].reason
    assert "duplicate of row 2" in errors[4].reason
    assert fingerprint(people) == before


def test_impossible_and_future_readings_are_refused(people: Engine, tmp_path: Path) -> None:
    import_all(people)
    before = fingerprint(people)
    bad = write(
        tmp_path,
        "readings.csv",
        "account_external_id,indicator_key,day,value\n"
        "CRM-1001,nps,2026-11-20,500\n"
        "CRM-1001,product_usage,2026-11-20,-30\n"
        "CRM-1001,csm_sentiment,2026-11-20,7\n"
        "CRM-1001,support_tickets,2030-01-01,3\n"
        "CRM-1001,support_tickets,2026-11-20,40\n",
    )
    with pytest.raises(ImportFailed) as caught:
        import_csv(people, "readings", bad)
    assert [(e.row, e.column) for e in caught.value.errors] == [
        (2, "value"),
        (3, "value"),
        (4, "value"),
        (5, "day"),
    ]
    assert "not a possible nps (range -100..100)" in caught.value.errors[0].reason
    assert "in the future" in caught.value.errors[3].reason
    assert fingerprint(people) == before


def test_missing_header_column_is_one_clear_error(sqlite_people: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "surveys.csv",
        "external_id,account_external_id,kind,responded_on\nS-9,CRM-1001,nps,2026-11-01\n",
    )
    with pytest.raises(ImportFailed) as caught:
        import_csv(sqlite_people, "surveys", path)
    assert len(caught.value.errors) == 1
    error = caught.value.errors[0]
    assert (error.row, error.column) == (1, "score")
    assert "missing from the header" in error.reason


def test_unknown_columns_and_extra_values_are_errors(sqlite_people: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "external_id,name,renewl_date\nX-1,Typo Inc,2027-01-01\n")
    with pytest.raises(ImportFailed) as caught:
        import_csv(sqlite_people, "accounts", path)
    assert [(e.row, e.column) for e in caught.value.errors] == [(1, "renewl_date")]
    assert "renewal_date" in caught.value.errors[0].reason  # the allowed names are listed

    path = write(tmp_path, "b.csv", "external_id,name\nX-1,Too,Many\n")
    with pytest.raises(ImportFailed) as caught:
        import_csv(sqlite_people, "accounts", path)
    assert str(caught.value.errors[0]) == "row 2: has 3 values but the header has 2"


def test_bom_crlf_blank_lines_and_friendly_forms_are_accepted(
    sqlite_people: Engine, tmp_path: Path
) -> None:
    body = (
        "External_ID , Name,Lifecycle_Stage,arr\r\n"
        "X-1,Bom Ltd,Expansion,  1200.5 \r\n"
        "\r\n"
        "X-2,Second Ltd,,\r\n"
        "\r\n\r\n"
    )
    path = tmp_path / "bom.csv"
    path.write_bytes(body.encode("utf-8-sig"))
    report = import_csv(sqlite_people, "accounts", path)
    assert (report.rows, report.inserted) == (2, 2)
    with sqlite_people.connect() as conn:
        rows = conn.execute(
            text("SELECT external_id, lifecycle_stage, arr FROM account ORDER BY external_id")
        ).all()
    # Empty non-nullable cells take the defaults.
    assert [tuple(r) for r in rows] == [("X-1", "expansion", 1200.5), ("X-2", "adoption", 0.0)]


def test_a_changed_row_is_updated_and_audited(people: Engine, tmp_path: Path) -> None:
    import_all(people)
    changed = (DATA / "accounts.csv").read_text().replace("96000.50", "120000")
    report = import_csv(people, "accounts", write(tmp_path, "accounts.csv", changed))
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 2)
    with people.connect() as conn:
        arr, account_id = conn.execute(
            text("SELECT arr, id FROM account WHERE external_id = 'CRM-1002'")
        ).one()
        after = conn.execute(
            select(table("audit_log").c.after).order_by(table("audit_log").c.id.desc()).limit(1)
        ).scalar_one()
    assert arr == 120000.0
    assert report.account_ids == frozenset({account_id})
    assert after == {"file": "accounts.csv", "rows": 3, "inserted": 0, "updated": 1, "unchanged": 2}


def test_reading_update_and_milestone_history(sqlite_people: Engine, tmp_path: Path) -> None:
    import_all(sqlite_people)
    readings = (DATA / "readings.csv").read_text().replace("72.5", "64.0")
    report = import_csv(sqlite_people, "readings", write(tmp_path, "r.csv", readings))
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 4)

    moved = (
        (DATA / "milestones.csv")
        .read_text()
        .replace("2026-12-10,in_progress", "2026-12-20,blocked")
    )
    report = import_csv(sqlite_people, "milestones", write(tmp_path, "m.csv", moved))
    assert (report.updated, report.unchanged) == (1, 3)
    with sqlite_people.connect() as conn:
        value = conn.execute(
            text("SELECT value FROM indicator_reading WHERE day = '2026-11-20'")
        ).scalar_one()
        events = conn.execute(
            text(
                "SELECT e.field, e.from_value, e.to_value, e.actor_label FROM milestone_event e "
                "JOIN milestone m ON m.id = e.milestone_id WHERE m.external_id = 'M-2' "
                "ORDER BY e.field"
            )
        ).all()
    assert value == 64.0
    assert [tuple(e) for e in events] == [
        ("due_date", "2026-12-10", "2026-12-20", "csv import"),
        ("status", "in_progress", "blocked", "csv import"),
    ]


def test_range_checks_for_surveys_and_renewals(sqlite_people: Engine, tmp_path: Path) -> None:
    import_csv(sqlite_people, "accounts", DATA / "accounts.csv")
    surveys = write(
        tmp_path,
        "s.csv",
        "external_id,account_external_id,kind,score,responded_on\n"
        "S-1,CRM-1001,csat,6,2026-11-01\n"
        "S-2,CRM-1001,nps,10,2026-11-01\n"
        "S-3,CRM-1001,mood,3,2026-11-01\n",
    )
    with pytest.raises(ImportFailed) as caught:
        import_csv(sqlite_people, "surveys", surveys)
    assert caught.value.errors == [
        RowError(2, "score", "csat scores run 1-5: 6"),
        RowError(4, "kind", "must be one of nps, csat, ces: 'mood'"),
    ]
    renewals = write(
        tmp_path,
        "r.csv",
        "external_id,account_external_id,renewal_date,likelihood\nR-1,CRM-1001,2027-01-01,1.5\n",
    )
    with pytest.raises(ImportFailed) as caught:
        import_csv(sqlite_people, "renewals", renewals)
    assert [(e.row, e.column) for e in caught.value.errors] == [(2, "likelihood")]


def test_empty_file_and_unknown_kind(sqlite_people: Engine, tmp_path: Path) -> None:
    with pytest.raises(ImportFailed) as caught:
        import_csv(sqlite_people, "accounts", write(tmp_path, "e.csv", ""))
    assert "empty" in str(caught.value.errors[0])
    report = import_csv(sqlite_people, "accounts", write(tmp_path, "h.csv", "external_id,name\n"))
    assert (report.rows, report.inserted) == (0, 0)
    with pytest.raises(ValueError, match="unknown import kind"):
        import_csv(sqlite_people, "contacts", DATA / "accounts.csv")
