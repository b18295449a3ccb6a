"""A team adds its people: `csm-bot people add|set|import|list` and /api/v1/people, one validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient
from typer.testing import CliRunner

from bot.cli import app
from bot.config import Settings
from bot.container import Container
from tests.api.conftest import AUTH, TOKEN, build_app

runner = CliRunner()


@pytest.fixture
def fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite_template: Path
) -> Container:
    """An empty, migrated database, as a new team has it, with the CLI pointed at it."""
    import shutil

    path = tmp_path / "team.db"
    shutil.copyfile(migrated_sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("CSM_DATABASE_URL", url)
    monkeypatch.delenv("CSM_TODAY", raising=False)
    container = Container(settings=Settings(database_url=url, api_token=TOKEN))
    yield container
    container.engine.dispose()


def people_rows(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT c.email, c.name, c.role, m.email, c.timezone, c.digest_time, "
                    "c.slack_user_id FROM csm c LEFT JOIN csm m ON m.id = c.manager_id "
                    "ORDER BY c.email"
                )
            )
        ]


def cli(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_a_team_adds_its_people_from_the_command_line(fresh: Container) -> None:
    assert (
        cli("people", "add", "ada@acme.io", "--name", "Ada Admin", "--role", "admin").exit_code == 0
    )
    lee = cli(
        "people", "add", "Lee@Acme.io", "--name", "Lee Park", "--role", "manager",
        "--tz", "america/new_york",
    )  # fmt: skip
    assert lee.exit_code == 0 and "added" in lee.output
    sam = cli(
        "people", "add", "sam@acme.io", "--name", "Sam Reyes", "--manager", "lee@acme.io",
        "--tz", "Europe/Berlin", "--digest-time", "7:45", "--slack-id", "U0SAM1234",
    )  # fmt: skip
    assert sam.exit_code == 0, sam.output
    viewer = cli("people", "add", "vic@acme.io", "--name", "Vic Finance", "--role", "viewer")
    assert viewer.exit_code == 0, viewer.output
    assert people_rows(fresh.engine) == [
        ("ada@acme.io", "Ada Admin", "admin", None, "UTC", "08:30", None),
        ("lee@acme.io", "Lee Park", "manager", None, "America/New_York", "08:30", None),
        ("sam@acme.io", "Sam Reyes", "csm", "lee@acme.io", "Europe/Berlin", "07:45", "U0SAM1234"),
        ("vic@acme.io", "Vic Finance", "viewer", None, "UTC", "08:30", None),
    ]
    # The same command again (an onboarding script re-run) changes nothing.
    again = cli(
        "people", "add", "sam@acme.io", "--name", "Sam Reyes", "--manager", "lee@acme.io",
        "--tz", "Europe/Berlin", "--digest-time", "07:45", "--slack-id", "U0SAM1234",
    )  # fmt: skip
    assert again.exit_code == 0 and "unchanged" in again.output
    listing = cli("people", "list")
    assert listing.exit_code == 0
    assert "sam@acme.io" in listing.output and "manager lee@acme.io" in listing.output
    as_json = json.loads(cli("people", "list", "--role", "manager", "--json").output)
    assert [p["email"] for p in as_json] == ["lee@acme.io"]


def test_bad_people_input_is_one_clear_line_and_changes_nothing(fresh: Container) -> None:
    cli("people", "add", "lee@acme.io", "--name", "Lee Park", "--role", "manager")
    before = people_rows(fresh.engine)
    cases = {
        ("--tz", "America/New York"): "did you mean America/New_York?",
        ("--tz", "CEST"): "not an IANA time zone name",
        ("--role", "owner"): "must be one of csm, manager, admin, viewer",
        ("--digest-time", "25:00"): "HH:MM",
        ("--slack-id", "dana"): "not a Slack user id",
        (
            "--manager",
            "ghost@acme.io",
        ): 'csm-bot people add ghost@acme.io --name "FULL NAME" --role manager',
        ("--manager", "sam@acme.io"): "cannot manage themselves",
    }
    for (option, value), expected in cases.items():
        result = cli("people", "add", "sam@acme.io", "--name", "Sam", option, value)
        assert result.exit_code == 1, (option, result.output)
        assert expected in result.output, (option, result.output)
        assert "Traceback" not in result.output
    assert people_rows(fresh.engine) == before
    # add never changes someone who is there: that is `set`, with the exact command given.
    demote = cli("people", "add", "lee@acme.io", "--name", "Lee Park", "--role", "csm")
    assert demote.exit_code == 1
    assert "csm-bot people set lee@acme.io --role csm" in demote.output
    unknown = cli("people", "set", "nobody@acme.io", "--role", "admin")
    assert unknown.exit_code == 1 and "csm-bot people add nobody@acme.io" in unknown.output
    assert people_rows(fresh.engine) == before


def test_people_set_changes_only_what_is_given(fresh: Container) -> None:
    cli("people", "add", "lee@acme.io", "--name", "Lee Park", "--role", "manager")
    cli("people", "add", "sam@acme.io", "--name", "Sam Reyes", "--manager", "lee@acme.io")
    result = cli("people", "set", "SAM@acme.io", "--tz", "Asia/Tokyo", "--role", "viewer")
    assert result.exit_code == 0 and "updated" in result.output
    cleared = cli("people", "set", "sam@acme.io", "--manager", "none")
    assert cleared.exit_code == 0
    assert people_rows(fresh.engine)[1] == (
        "sam@acme.io", "Sam Reyes", "viewer", None, "Asia/Tokyo", "08:30", None,
    )  # fmt: skip
    with fresh.engine.connect() as conn:
        audit = conn.execute(
            text(
                "SELECT action, entity_id, before, after FROM audit_log WHERE entity = 'csm' ORDER BY id"
            )
        ).all()
    assert [a[0] for a in audit] == ["person.add", "person.add", "person.update", "person.update"]
    assert json.loads(audit[2][2]) == {"role": "csm", "timezone": "UTC"}


def test_a_people_file_names_managers_in_the_same_file(fresh: Container, tmp_path: Path) -> None:
    result = cli("people", "import", "tests/data/people.csv")
    assert result.exit_code == 0, result.output
    assert "4 rows, 4 new" in result.output
    rows = people_rows(fresh.engine)
    assert (
        "dana@example.com",
        "Dana Whitfield",
        "csm",
        "alex@example.com",
        "America/New_York",
        "08:30",
        "U0DANA0001",
    ) in rows
    bad = tmp_path / "people.csv"
    bad.write_text(
        "email,name,role,manager_email,timezone\n"
        "kim@acme.io,Kim,csm,boss@acme.io,Europe/Paris\n"
        "lou@acme.io,,csm,,Mars/Olympus\n"
        "kim@acme.io,Kim again,csm,,\n"
    )
    refused = cli("import", "people", str(bad))
    assert refused.exit_code == 1
    assert "row 2, column 'manager_email': no person with email 'boss@acme.io'" in refused.output
    assert "row 3, column 'name': a new person needs a name" in refused.output
    assert "row 3, column 'timezone': not an IANA time zone name: 'Mars/Olympus'" in refused.output
    assert "row 4, column 'email': duplicate of row 2" in refused.output
    assert people_rows(fresh.engine) == rows


def test_an_account_import_with_an_unknown_owner_says_how_to_add_them(
    fresh: Container, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("external_id,name,owner_email\nA-1,Fabrikam,jo@acme.io\n")
    result = cli("import", "accounts", str(accounts))
    assert result.exit_code == 1
    assert (
        "row 2, column 'owner_email': no CSM with email 'jo@acme.io': add them first with "
        'csm-bot people add jo@acme.io --name "FULL NAME" --role csm' in result.output
    )
    assert cli("people", "add", "jo@acme.io", "--name", "Jo Lin").exit_code == 0
    assert cli("import", "accounts", str(accounts)).exit_code == 0


def test_the_people_api_has_the_same_rules(fresh: Container) -> None:
    with TestClient(build_app(fresh)) as client:
        assert client.get("/api/v1/people").status_code == 401
        ada = client.post(
            "/api/v1/people",
            json={
                "email": "ada@acme.io",
                "name": "Ada",
                "role": "manager",
                "timezone": "Europe/London",
            },
            headers=AUTH,
        )
        assert ada.status_code == 201, ada.text
        assert ada.json()["person"]["timezone"] == "Europe/London"
        same = client.post(
            "/api/v1/people",
            json={"email": "ada@acme.io", "name": "Ada", "role": "manager"},
            headers=AUTH,
        )
        assert same.status_code == 200 and same.json()["result"] == "unchanged"
        clash = client.post(
            "/api/v1/people",
            json={"email": "ada@acme.io", "name": "Ada", "role": "csm"},
            headers=AUTH,
        )
        assert clash.status_code == 409 and "people set" in clash.json()["message"]
        bad = client.post(
            "/api/v1/people",
            json={"email": "bo@acme.io", "name": "Bo", "timezone": "Europe/Berln", "role": "boss"},
            headers=AUTH,
        )
        assert bad.status_code == 422
        reasons = {e["column"]: e["reason"] for e in bad.json()["errors"]}
        assert "did you mean Europe/Berlin?" in reasons["timezone"]
        assert "viewer" in reasons["role"]
        patched = client.patch(
            "/api/v1/people/ADA@acme.io", json={"digest_time": "06:15"}, headers=AUTH
        )
        assert patched.status_code == 200 and patched.json()["person"]["digest_time"] == "06:15"
        # Who is an admin, and who is who in chat, are the server's to say (docs/access.md).
        for change in ({"role": "admin"}, {"slack_user_id": "U0ADA"}):
            refused = client.patch("/api/v1/people/ada@acme.io", json=change, headers=AUTH)
            assert refused.status_code == 422 and "data API cannot" in refused.json()["message"]
        missing = client.patch("/api/v1/people/x@acme.io", json={"role": "csm"}, headers=AUTH)
        assert missing.status_code == 404 and "people add x@acme.io" in missing.json()["message"]
        not_json = client.post("/api/v1/people", content=b"email=x", headers=AUTH)
        assert not_json.status_code == 415
        bulk = client.post(
            "/api/v1/import/people",
            content="email,name,role,manager_email\nbo@acme.io,Bo,csm,ada@acme.io\n",
            headers={**AUTH, "Content-Type": "text/csv"},
        )
        assert bulk.status_code == 200 and bulk.json()["inserted"] == 1
        listing = client.get("/api/v1/people?role=csm", headers=AUTH).json()["people"]
        assert [(p["email"], p["manager_email"]) for p in listing] == [
            ("bo@acme.io", "ada@acme.io")
        ]


def test_counts_of_one_read_as_one(fresh: Container, tmp_path: Path) -> None:
    assert cli("people", "add", "sam@acme.io", "--name", "Sam Reyes").exit_code == 0
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("external_id,name,owner_email\nA-1,Fabrikam,sam@acme.io\n")
    imported = cli("import", "accounts", str(accounts))
    assert "Health recomputed for 1 account." in imported.output, imported.output
    listing = cli("people", "list").output
    assert " 1 account " in listing and "1 accounts" not in listing


def test_a_management_loop_is_refused(fresh: Container, tmp_path: Path) -> None:
    team = tmp_path / "team.csv"
    team.write_text(
        "email,name,role,manager_email\n"
        "lee@acme.io,Lee Park,manager,\n"
        "sam@acme.io,Sam Reyes,csm,lee@acme.io\n"
    )
    assert cli("people", "import", str(team)).exit_code == 0
    before = people_rows(fresh.engine)
    # Lee reports to Sam, who reports to Lee: nobody's manager would be above them.
    loop = cli("people", "set", "lee@acme.io", "--manager", "sam@acme.io")
    assert loop.exit_code != 0
    assert "management loop: lee@acme.io → sam@acme.io → lee@acme.io" in loop.output
    both = tmp_path / "both.csv"
    both.write_text(
        "email,name,role,manager_email\n"
        "ann@acme.io,Ann,manager,bob@acme.io\n"
        "bob@acme.io,Bob,manager,ann@acme.io\n"
    )
    in_file = cli("people", "import", str(both))
    assert in_file.exit_code == 1
    assert "row 2, column 'manager_email': a management loop" in in_file.output
    assert people_rows(fresh.engine) == before
    with TestClient(build_app(fresh)) as client:
        response = client.patch(
            "/api/v1/people/lee@acme.io", json={"manager_email": "sam@acme.io"}, headers=AUTH
        )
    assert response.status_code == 422 and "management loop" in response.text
    assert people_rows(fresh.engine) == before


def test_people_set_tunes_working_hours_and_what_interrupts(fresh: Container) -> None:
    cli("people", "add", "sam@acme.io", "--name", "Sam Reyes", "--tz", "Europe/Rome")

    def stored() -> tuple:
        with fresh.engine.connect() as conn:
            row = conn.execute(
                text("SELECT work_start, work_end, interrupts FROM csm WHERE email = 'sam@acme.io'")
            ).one()
        return row[0], row[1], None if row[2] is None else json.loads(row[2])

    assert stored() == ("09:00", "18:00", None)  # the defaults: red, sev1, renewal_detractor
    done = cli(
        "people", "set", "sam@acme.io", "--work-hours", "7:30-16:00", "--interrupts", "amber,red"
    )
    assert done.exit_code == 0, done.output
    assert stored() == ("07:30", "16:00", ["red", "amber"])
    assert cli("people", "set", "sam@acme.io", "--interrupts", "none").exit_code == 0
    assert stored()[2] == []
    assert cli("people", "set", "sam@acme.io", "--interrupts", "default").exit_code == 0
    assert stored()[2] is None
    # Bad input: one line that names the problem, nothing changed.
    for args, expected in {
        ("--work-hours", "9-5"): "not a time of day",
        ("--work-hours", "09:00"): "use HH:MM-HH:MM",
        ("--work-hours", "10:00-10:00"): "end different from their start",
        ("--interrupts", "red,everything"): "unknown alert kind everything",
    }.items():
        result = cli("people", "set", "sam@acme.io", *args)
        assert result.exit_code != 0 and expected in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert stored() == ("07:30", "16:00", None)
