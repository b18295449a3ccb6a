"""import_records and import_csv_text: the in-memory entry points share the CSV import's checks."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from storage.csv_import import ImportFailed, RowError, import_csv_text, import_records

HEADER = ["external_id", "name", "arr", "aliases"]


def test_lists_with_a_header_are_numbered_from_one(engine: Engine) -> None:
    with pytest.raises(ImportFailed) as caught:
        import_records(
            engine,
            "accounts",
            HEADER,
            [["A-1", "Alpha", 10, None], ["A-2", "Beta", "ten", None], ["A-3", "", 1, "x"]],
        )
    assert caught.value.errors == [
        RowError(2, "arr", "not a number: 'ten'"),
        RowError(3, "name", "required value is empty"),
    ]
    report = import_records(engine, "accounts", HEADER, [["A-1", "Alpha", 10.5, "Al|A1"]])
    assert (report.rows, report.inserted) == (1, 1)


def test_header_problems_are_row_zero(engine: Engine) -> None:
    with pytest.raises(ImportFailed) as caught:
        import_records(engine, "accounts", ["external_id", "nmae"], [["A-1", "x"]])
    assert [(e.row, e.column) for e in caught.value.errors] == [(0, "name"), (0, "nmae")]


def test_values_without_a_csv_form_are_errors(engine: Engine) -> None:
    rows = [
        {"external_id": "A-1", "name": "Alpha", "arr": False},
        {"external_id": "A-2", "name": {"first": "B"}},
        {"external_id": "A-3", "name": "Gamma", "aliases": ["ok", 3]},
        {"external_id": "A-4", "name": "Delta", "tier": ["gold"]},
        {"external_id": "A-5", "name": "Eps", "NAME": "Eps again"},
        ["A-6", "Zeta"],
        {"name": "No id"},
    ]
    with pytest.raises(ImportFailed) as caught:
        import_records(engine, "accounts", None, rows)
    assert [(e.row, e.column) for e in caught.value.errors] == [
        (1, "arr"),
        (2, "name"),
        (3, "aliases"),
        (4, "tier"),
        (5, "name"),
        (6, None),
        (7, "external_id"),
    ]
    assert caught.value.errors[0].reason == "expected text or a number, not false"
    assert "appears twice" in caught.value.errors[4].reason
    assert "needs a header" in caught.value.errors[5].reason
    assert "required column is missing" in caught.value.errors[6].reason
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM account")).scalar_one() == 0


def test_csv_text_matches_the_file_import(engine: Engine) -> None:
    body = "\ufeffexternal_id,name\r\nT-1,Text Ltd\r\n\r\n"
    report = import_csv_text(engine, "accounts", body)
    assert (report.rows, report.inserted) == (1, 1)
    again = import_csv_text(engine, "accounts", body.encode("utf-8"))
    assert (again.inserted, again.unchanged) == (0, 1)
    with pytest.raises(ImportFailed, match="api-test: 1 error"):
        import_csv_text(engine, "accounts", "external_id,name\nT-2,\n", name="api-test")
    with pytest.raises(ValueError, match="unknown import kind"):
        import_csv_text(engine, "contacts", body)
