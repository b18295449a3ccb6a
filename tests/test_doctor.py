"""`csm-bot doctor`: every configuration problem named with its fix, and a non-zero exit when there is one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import Settings
from bot.container import Container
from bot.doctor import run_doctor
from bot.slack.oauth import BOT_SCOPES
from tests.slack.fake_slack import FakeSlack, running_fake

runner = CliRunner()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    yield from running_fake()


def findings(container: Container) -> dict[str, tuple[str, str, str | None]]:
    return {f.area: (f.status, f.message, f.fix) for f in run_doctor(container)}


def with_settings(container: Container, **values: object) -> Container:
    return Container(settings=container.settings.model_copy(update=values))


def test_a_healthy_demo_install_with_slack(demo_container, slack: FakeSlack) -> None:  # type: ignore[no-untyped-def]
    slack.scopes = BOT_SCOPES
    container = with_settings(
        demo_container,
        slack_bot_token="xoxb-test",
        slack_signing_secret="s3cret",
        slack_api_url=slack.api_url,
        api_token="a" * 32,
    )
    found = findings(container)
    assert found["database"][0] == "ok" and "SQLite" in found["database"][1]
    assert found["schema"][0] == "ok"
    assert found["people"] == ("ok", "1 admin, 6 csm, 1 manager", None)
    assert found["accounts"] == ("ok", "60 accounts, 0 without an owner", None)
    assert found["data API"] == ("ok", "CSM_API_TOKEN is set", None)
    assert found["slack"] == ("ok", "bot csm-assistant in Example with every scope it needs", None)
    assert found["teams"][0] == "off" and found["sync"][0] == "off"
    assert slack.calls_to("auth.test")[0].headers["authorization"] == "Bearer xoxb-test"


def test_slack_token_and_scope_problems_name_the_fix(demo_container, slack: FakeSlack) -> None:  # type: ignore[no-untyped-def]
    container = with_settings(
        demo_container,
        slack_bot_token="xoxb-test",
        slack_signing_secret="s3cret",
        slack_api_url=slack.api_url,
    )
    slack.scopes = tuple(s for s in BOT_SCOPES if s not in ("users:read.email", "im:write"))
    status, message, fix = findings(container)["slack"]
    assert status == "problem"
    assert message == "the bot token lacks scopes im:write, users:read.email"
    assert "reinstall the app" in (fix or "")
    slack.fail("auth.test", error="invalid_auth")
    status, message, fix = findings(container)["slack"]
    assert (status, message) == ("problem", "auth.test refused the bot token (invalid_auth)")
    assert "xoxb" in (fix or "")
    no_secret = with_settings(container, slack_signing_secret=None)
    assert "SLACK_SIGNING_SECRET" in findings(no_secret)["slack"][1]


def test_teams_settings_are_checked(demo_container) -> None:  # type: ignore[no-untyped-def]
    bad = with_settings(demo_container, microsoft_app_id="my-bot", microsoft_app_password=None)
    status, message, fix = findings(bad)["teams"]
    assert status == "problem"
    assert (
        "MICROSOFT_APP_ID is not a GUID" in message
        and "MICROSOFT_APP_PASSWORD is not set" in message
    )
    assert "MICROSOFT_APP_TENANT_ID is not set" in message and "tenant" in (fix or "")
    good = with_settings(
        demo_container,
        microsoft_app_id="0b6fe6d1-fece-44f7-9a48-56465e2d5ab8",
        microsoft_app_password="pw",
        microsoft_app_tenant_id="contoso.onmicrosoft.com",
    )
    assert findings(good)["teams"][0] == "ok"


def test_the_cli_exits_non_zero_and_says_what_to_do(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CSM_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    for name in ("SLACK_BOT_TOKEN", "MICROSOFT_APP_ID", "CSM_API_TOKEN", "CSM_SYNC_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert (
        "PROBLEM schema: the database has no tables yet → run `csm-bot db upgrade`" in result.output
    )
    assert result.output.strip().endswith("1 problem found.")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    after = runner.invoke(app, ["doctor"])
    assert after.exit_code == 1
    assert "PROBLEM people: nobody is on the team yet" in after.output
    assert 'csm-bot people add YOU@COMPANY --name "YOUR NAME" --role admin' in after.output
    assert "PROBLEM scheduler: has never run on this database" in after.output
    monkeypatch.setenv("CSM_DATABASE_URL", "postgresql://csm@127.0.0.1:1/csm")
    from storage.db import engine_for

    engine_for.cache_clear()
    down = runner.invoke(app, ["doctor"])
    assert down.exit_code == 1 and "Traceback" not in down.output
    assert (
        "PROBLEM database: Cannot reach the database at postgresql://csm@127.0.0.1:1/csm"
        in down.output
    )


@pytest.mark.postgres
def test_the_scheduler_leader_on_postgresql(migrated_url: str) -> None:
    if not migrated_url.startswith("postgresql"):
        pytest.skip("the leader lock is PostgreSQL's")
    from scheduler.leader import Leadership

    container = Container(settings=Settings(database_url=migrated_url))
    status, message, fix = findings(container)["scheduler"]
    assert status == "problem" and "no replica leads the scheduler" in message
    assert "csm-bot serve" in (fix or "")
    leader = Leadership(container.engine)
    assert leader.check()
    try:
        status, message, _ = findings(container)["scheduler"]
        assert status == "ok" and message.startswith("led by PostgreSQL session")
    finally:
        leader.release()
        container.engine.dispose()


@pytest.mark.postgres
def test_a_leader_on_another_database_of_the_server_does_not_count(migrated_url: str) -> None:
    """Advisory locks are per database: a replica leading another CSM database on the same
    server must not make this one look led."""
    if not migrated_url.startswith("postgresql"):
        pytest.skip("the leader lock is PostgreSQL's")
    from scheduler.leader import Leadership
    from storage.db import make_engine
    from tests.conftest import PG_ADMIN_URL

    other = make_engine(PG_ADMIN_URL)  # the server's `test` database, not this test's
    elsewhere = Leadership(other)
    container = Container(settings=Settings(database_url=migrated_url))
    try:
        assert elsewhere.check()
        status, message, _ = findings(container)["scheduler"]
        assert status == "problem" and "no replica leads the scheduler" in message
    finally:
        elsewhere.release()
        other.dispose()
        container.engine.dispose()
