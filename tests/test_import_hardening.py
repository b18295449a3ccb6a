"""Import edge cases a real export brings: stray quotes, huge numbers, floods of errors, other encodings, any script."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient
from typer.testing import CliRunner

from bot.cli import app
from bot.config import Settings
from bot.console import ConsoleChat
from bot.container import Container
from storage.csv_import import ImportFailed, RowError, import_csv, import_records
from tests.api.conftest import AUTH, TOKEN, build_app
from tests.test_import import add_people

runner = CliRunner()
DATA = Path(__file__).parent / "data"


@pytest.fixture
def team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite_template: Path
) -> Iterator[Container]:
    """A database with the sample team in it; the CLI and a data API client point at it."""
    path = tmp_path / "team.db"
    shutil.copyfile(migrated_sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("CSM_DATABASE_URL", url)
    monkeypatch.setenv("CSM_TODAY", "2026-11-23")
    container = Container(settings=Settings(database_url=url, api_token=TOKEN, today="2026-11-23"))
    add_people(container.engine)
    yield container
    container.engine.dispose()


def write(tmp_path: Path, body: bytes | str, name: str = "accounts.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    return path


def account_names(container: Container) -> list[str]:
    with container.engine.connect() as conn:
        return list(conn.execute(text("SELECT name FROM account ORDER BY external_id")).scalars())


def test_an_unclosed_quote_is_a_row_error_not_one_giant_name(
    team: Container, tmp_path: Path
) -> None:
    at_the_end = write(
        tmp_path,
        "external_id,name,owner_email\n"
        "A-1,Alpha,dana@example.com\n"
        'A-2,"Beta Industries,dana@example.com\n'
        "A-3,Gamma,dana@example.com\n"
        "A-4,Delta,dana@example.com\n",
    )
    with pytest.raises(ImportFailed) as caught:
        import_csv(team.engine, "accounts", at_the_end)
    assert [(e.row, e.column) for e in caught.value.errors] == [(3, None)]
    assert "never closed" in caught.value.errors[0].reason
    # Closed again by a later stray quote: the rows between were swallowed into one name.
    swallowed = write(
        tmp_path,
        "external_id,name,owner_email\n"
        'A-1,"Alpha,dana@example.com\n'
        "A-2,Beta,dana@example.com\n"
        'A-3,Gamma",dana@example.com\n',
        "swallowed.csv",
    )
    with pytest.raises(ImportFailed) as caught:
        import_csv(team.engine, "accounts", swallowed)
    assert caught.value.errors[0] == RowError(
        2,
        "name",
        'the value runs over lines 2-4: a quote opened here is closed only on line 4 (a stray " in this row?)',
    )
    with TestClient(build_app(team)) as client:
        response = client.post(
            "/api/v1/import/accounts",
            content=at_the_end.read_bytes(),
            headers={**AUTH, "Content-Type": "text/csv"},
        )
    assert response.status_code == 422
    assert response.json()["errors"][0]["row"] == 3
    assert "never closed" in response.json()["errors"][0]["reason"]
    assert account_names(team) == []


def test_out_of_range_whole_numbers_are_row_errors(team: Container, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "external_id,name,licensed_seats\n"
        "A-1,Alpha,99999999999999999999\n"
        "A-2,Beta,2147483648\n"
        "A-3,Gamma,2147483647\n",
    )
    result = runner.invoke(app, ["import", "accounts", str(path)])
    assert result.exit_code == 1
    assert (
        "row 2, column 'licensed_seats': out of range (at most 2,147,483,647): '99999999999999999999'"
        in result.output
    )
    assert "row 3, column 'licensed_seats': out of range" in result.output
    assert "row 4" not in result.output and "Traceback" not in result.output
    with TestClient(build_app(team)) as client:
        response = client.post(
            "/api/v1/import/accounts",
            json={"rows": [{"external_id": "A-1", "name": "Alpha", "licensed_seats": 10**20}]},
            headers=AUTH,
        )
        assert response.status_code == 422
        assert "out of range" in response.json()["errors"][0]["reason"]
        survey = client.post(
            "/api/v1/import/surveys",
            json={
                "rows": [
                    {
                        "external_id": "S",
                        "account_external_id": "A-1",
                        "kind": "nps",
                        "score": 10**30,
                        "responded_on": "2026-11-01",
                    }
                ]
            },
            headers=AUTH,
        )
        assert survey.status_code == 422
    assert account_names(team) == []


def test_fifty_thousand_bad_rows_print_the_first_hundred_and_the_total(
    team: Container, tmp_path: Path
) -> None:
    lines = ["external_id,name,arr"] + [f"A-{i},Account {i},lots" for i in range(50_000)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    result = runner.invoke(app, ["import", "accounts", str(path)])
    assert result.exit_code == 1
    printed = result.output.strip().splitlines()
    assert printed[0].endswith("50,000 errors in 50,000 rows, nothing was imported:")
    assert len(printed) == 1 + 100 + 1
    assert printed[1].strip() == "row 2, column 'arr': not a number: 'lots'"
    assert printed[-1].strip() == "… and 49,900 more (50,000 errors in total)"
    with TestClient(build_app(team)) as client:
        body = "\n".join(lines[:1001]) + "\n"
        response = client.post(
            "/api/v1/import/accounts", content=body, headers={**AUTH, "Content-Type": "text/csv"}
        )
    assert response.status_code == 422
    answer = response.json()
    assert (answer["error_count"], answer["errors_truncated"], len(answer["errors"])) == (
        1000,
        True,
        100,
    )
    assert answer["message"] == "1,000 errors, nothing imported. The first 100 are listed."


def test_other_encodings_name_the_line_and_the_fix(team: Container, tmp_path: Path) -> None:
    latin = write(tmp_path, "external_id,name\nA-1,Alpha\nA-2,Café Müller\n".encode("cp1252"))
    result = runner.invoke(app, ["import", "accounts", str(latin)])
    assert result.exit_code == 1
    assert (
        "row 3: not UTF-8 text: byte E9 at position 8 cannot be decoded; the file looks like "
        "Windows-1252 (Latin-1) text: save it as “CSV UTF-8”, or import it with --encoding cp1252"
    ) in result.output
    fixed = runner.invoke(app, ["import", "accounts", str(latin), "--encoding", "cp1252"])
    assert fixed.exit_code == 0, fixed.output
    assert account_names(team) == ["Alpha", "Café Müller"]
    utf16 = write(tmp_path, "external_id,name\nA-3,Gamma\n".encode("utf-16"), "u16.csv")
    refused = runner.invoke(app, ["import", "accounts", str(utf16)])
    assert refused.exit_code == 1 and "UTF-16" in refused.output
    bom = write(tmp_path, "\ufeffexternal_id,name\nA-4,Délta\n".encode(), "bom.csv")
    assert runner.invoke(app, ["import", "accounts", str(bom)]).exit_code == 0
    with TestClient(build_app(team)) as client:
        response = client.post(
            "/api/v1/import/accounts",
            content="external_id,name\nA-9,Ok\nA-5,Caf\xe9\n".encode("cp1252"),
            headers={**AUTH, "Content-Type": "text/csv"},
        )
    assert response.status_code == 422
    assert response.json()["errors"][0]["row"] == 3


NAMES = {
    "J-1": ("株式会社トヨタ自動車", "トヨタ"),
    "J-2": ("شركة الاتصالات السعودية", ""),
    "J-3": ("Café Müller GmbH", ""),
    "J-4": ("Ελληνικά Ναυπηγεία", ""),
}


@pytest.mark.parametrize(
    ("question", "external_id"),
    [
        ("how is トヨタ doing?", "J-1"),
        ("/health 株式会社トヨタ自動車", "J-1"),
        ("トヨタ自動車の状況", "J-1"),
        ("how is شركة الاتصالات السعودية doing?", "J-2"),
        ("health الاتصالات السعودية", "J-2"),
        ("how is Café Müller doing?", "J-3"),
        ("how is cafe muller doing?", "J-3"),
        ("/health ελληνικα ναυπηγεια", "J-4"),
    ],
)
def test_names_in_any_script_are_found_in_chat(
    team: Container, question: str, external_id: str
) -> None:
    import_records(
        team.engine,
        "accounts",
        ["external_id", "name", "aliases", "owner_email"],
        [[ext, name, alias, "dana@example.com"] for ext, (name, alias) in NAMES.items()],
    )
    reply = ConsoleChat(team, "dana@example.com").reply(question)
    name = NAMES[external_id][0]
    assert reply.template == "health_card", (question, reply.text)
    assert reply.context["account"]["name"] == name
