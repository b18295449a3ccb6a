"""`csm-bot doctor`: check the configuration end to end and say what is wrong and how to fix it."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.problems import explain, safe_url

if TYPE_CHECKING:
    from bot.container import Container

logger = logging.getLogger(__name__)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TENANT_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
# The scheduler posts nothing if no tick ran for this long (ticks run every minute).
SCHEDULER_SILENCE = timedelta(hours=2)


@dataclass(frozen=True)
class Finding:
    """One check: ``status`` is ok, problem or off (not configured, nothing to check)."""

    area: str
    status: str
    message: str
    fix: str | None = None

    def line(self) -> str:
        mark = {"ok": "ok     ", "problem": "PROBLEM", "off": "off    "}[self.status]
        return f"{mark} {self.area}: {self.message}" + (f" → {self.fix}" if self.fix else "")


def ok(area: str, message: str) -> Finding:
    return Finding(area, "ok", message)


def problem(area: str, message: str, fix: str) -> Finding:
    return Finding(area, "problem", message, fix)


def off(area: str, message: str) -> Finding:
    return Finding(area, "off", message)


def run_doctor(container: Container) -> list[Finding]:
    """Every check, in the order a new install meets them; later checks skip a dead database."""
    settings = container.settings
    findings = [*_database(container)]
    database_ok = all(f.status == "ok" for f in findings)
    if database_ok:
        findings += _people(container.engine, settings)
        findings.append(_scheduler(container.engine))
        findings += _sync(container)
    findings.append(_health_model(container))
    findings.append(_slack(settings))
    findings.append(_teams(settings))
    findings.append(_api(settings))
    return findings


# -- database ---------------------------------------------------------------------------------


def _database(container: Container) -> Iterator[Finding]:
    url = container.settings.database_url
    try:
        engine = container.engine
        with engine.connect() as conn:
            version = _server_version(conn, engine)
    except (SQLAlchemyError, ValueError) as exc:
        message = explain(exc, url) or f"{type(exc).__name__}: {exc}"
        yield problem("database", message, "fix CSM_DATABASE_URL or start the database")
        return
    yield ok("database", f"{safe_url(url)} answers ({version})")
    yield _schema(engine, url)


def _server_version(conn, engine: Engine) -> str:  # type: ignore[no-untyped-def]
    if engine.dialect.name == "postgresql":
        return "PostgreSQL " + str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
    if engine.dialect.name == "sqlite":
        return "SQLite " + str(conn.execute(text("select sqlite_version()")).scalar())
    return engine.dialect.name


def _schema(engine: Engine, url: str) -> Finding:
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    newest = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if not current:
        return problem(
            "schema",
            "the database has no tables yet",
            "run `csm-bot db upgrade` (or `csm-bot demo`)",
        )
    if current != newest:
        return problem(
            "schema",
            f"at {', '.join(sorted(current))}; this version needs {', '.join(sorted(newest))}",
            "run `csm-bot db upgrade` (back up first: docs/deploy.md)",
        )
    return ok("schema", f"migrated ({', '.join(sorted(current))})")


# -- data the assistant needs ----------------------------------------------------------------


def _people(engine: Engine, settings: Settings) -> Iterator[Finding]:
    from scheduler.config import SchedulerSettings
    from storage.bulk import table

    csm, account = table("csm"), table("account")
    with engine.connect() as conn:
        roles = dict(conn.execute(select(csm.c.role, func.count()).group_by(csm.c.role)).all())
        unowned = conn.execute(
            select(func.count()).where(account.c.owner_id.is_(None), account.c.churned_on.is_(None))
        ).scalar_one()
        accounts = conn.execute(select(func.count()).select_from(account)).scalar_one()
    del settings
    if not roles:
        yield problem(
            "people",
            "nobody is on the team yet (imports name owners by email)",
            'csm-bot people add YOU@COMPANY --name "YOUR NAME" --role admin (docs/import.md#people)',
        )
        return
    summary = ", ".join(f"{n} {role}" for role, n in sorted(roles.items()))
    if not roles.get("admin"):
        yield problem(
            "people",
            f"{summary}, but no admin",
            "csm-bot people set EMAIL --role admin (admins see everything and hear about unowned accounts)",
        )
    else:
        yield ok("people", summary)
    if accounts == 0:
        yield problem(
            "accounts",
            "no accounts yet",
            "csm-bot import accounts FILE.csv, the data API, or csm-bot sync run (README: First day)",
        )
        return
    env = SchedulerSettings()
    if unowned and not (env.unowned_channel_slack or env.unowned_channel_teams):
        yield ok(
            "accounts",
            f"{accounts} accounts; {unowned} without an owner (their reminders go to the admins)",
        )
    else:
        yield ok("accounts", f"{accounts} accounts, {unowned} without an owner")


def _scheduler(engine: Engine) -> Finding:
    """Who leads the scheduler: the advisory-lock holder on PostgreSQL, the last tick on SQLite."""
    from scheduler.leader import LOCK_KEY
    from storage.bulk import table

    fix = "run `csm-bot serve` (without --no-scheduler) on at least one replica"
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            holder = conn.execute(
                text(
                    "SELECT a.pid, a.client_addr, a.application_name FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                    "AND l.objid = :k AND l.granted "
                    # Advisory locks belong to one database; others on the server are not ours.
                    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"k": LOCK_KEY},
            ).first()
            if holder is None:
                return problem(
                    "scheduler", "no replica leads the scheduler: nothing is being queued", fix
                )
            where = holder.client_addr or "local socket"
            return ok("scheduler", f"led by PostgreSQL session {holder.pid} ({where})")
        last = conn.execute(select(func.max(table("job_run").c.started_at))).scalar()
    if last is None:
        return problem("scheduler", "has never run on this database", fix)
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    ago = datetime.now(UTC) - last
    if ago > SCHEDULER_SILENCE:
        return problem("scheduler", f"last ran {_ago(ago)} ago", fix)
    return ok("scheduler", f"last ran {_ago(ago)} ago")


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


def _sync(container: Container) -> Iterator[Finding]:
    from storage.sync.config import SyncConfigError, load_sync_config
    from storage.sync.history import last_runs

    path = container.settings.sync_config
    if not path:
        yield off("sync", "CSM_SYNC_CONFIG is not set (imports come from CSV files or the API)")
        return
    try:
        config = load_sync_config(path)
    except SyncConfigError as exc:
        yield problem("sync", str(exc), "fix the file (docs/sync.md)")
        return
    runs = last_runs(container.engine)
    for source in config.sources:
        run = runs.get(source.name)
        if run is None:
            yield problem(
                f"sync {source.name}",
                "never ran",
                f"csm-bot sync run --source {source.name} --dry-run",
            )
        elif run["status"] != "ok":
            yield problem(
                f"sync {source.name}",
                f"last run {run['finished_at']:%Y-%m-%d %H:%M} failed: {run['error']}",
                f"csm-bot sync run --source {source.name} --dry-run shows it again",
            )
        else:
            refused = f", {run['refused']} rows refused" if run["refused"] else ""
            yield ok(
                f"sync {source.name}", f"last run {run['finished_at']:%Y-%m-%d %H:%M} UTC{refused}"
            )


def _health_model(container: Container) -> Finding:
    from domain.health_model import HealthModelError

    try:
        models = container.health_models
    except HealthModelError as exc:
        return problem(
            "health model", str(exc), "fix the file, or unset CSM_HEALTH_MODEL for the packaged one"
        )
    where = container.settings.health_model or "packaged default"
    keys = len(models.default.indicators)
    return ok(
        "health model", f"{where}: {keys} indicators, {len(models.by_segment)} segment models"
    )


# -- platforms -------------------------------------------------------------------------------


def _slack(settings: Settings) -> Finding:
    """auth.test with the bot token: is it valid, and does it carry the scopes the app needs?"""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    from bot.slack.oauth import BOT_SCOPES

    if not settings.slack_bot_token:
        return off("slack", "SLACK_BOT_TOKEN is not set (Slack is off)")
    if not settings.slack_signing_secret and not settings.slack_app_token:
        return problem(
            "slack",
            "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not: requests cannot be verified",
            "copy the signing secret from the app's Basic Information page",
        )
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)
    try:
        answer = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else str(exc)
        return problem(
            "slack",
            f"auth.test refused the bot token ({error})",
            "copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions into SLACK_BOT_TOKEN",
        )
    except OSError as exc:
        return problem(
            "slack",
            f"cannot reach {settings.slack_api_url} ({exc})",
            "check the network, a proxy, or SLACK_API_URL",
        )
    header = {k.lower(): v for k, v in answer.headers.items()}.get("x-oauth-scopes", "")
    granted = {s.strip() for s in str(header).split(",") if s.strip()}
    missing = [s for s in BOT_SCOPES if s not in granted]
    if missing:
        return problem(
            "slack",
            f"the bot token lacks scopes {', '.join(missing)}",
            "add them under OAuth & Permissions (or re-create the app from manifest.yml) and reinstall the app",
        )
    return ok(
        "slack", f"bot {answer.get('user')} in {answer.get('team')} with every scope it needs"
    )


def _teams(settings: Settings) -> Finding:
    app_id, password, tenant = (
        settings.microsoft_app_id,
        settings.microsoft_app_password,
        settings.microsoft_app_tenant_id,
    )
    if not app_id:
        return off("teams", "MICROSOFT_APP_ID is not set (Teams is off; JWT checks are off too)")
    fixes: list[tuple[str, str]] = []
    if not _GUID.match(app_id):
        fixes.append(
            (
                "MICROSOFT_APP_ID is not a GUID",
                "copy the Microsoft App ID from the Azure Bot's Configuration page",
            )
        )
    if not password:
        fixes.append(
            ("MICROSOFT_APP_PASSWORD is not set", "create a client secret for the app registration")
        )
    if not tenant:
        fixes.append(
            (
                "MICROSOFT_APP_TENANT_ID is not set",
                "set your Azure AD tenant id (single-tenant bots need it)",
            )
        )
    elif not (_GUID.match(tenant) or _TENANT_DOMAIN.match(tenant)):
        fixes.append(
            (
                "MICROSOFT_APP_TENANT_ID is neither a GUID nor a domain",
                "copy the Directory (tenant) ID",
            )
        )
    if fixes:
        return problem("teams", "; ".join(m for m, _ in fixes), "; ".join(f for _, f in fixes))
    return ok("teams", f"app {app_id} in tenant {tenant}")


def _api(settings: Settings) -> Finding:
    token = (settings.api_token or "").strip()
    if not token:
        return off("data API", "CSM_API_TOKEN is not set (the /api/v1 routes answer 503)")
    if len(token) < 24:
        return problem(
            "data API",
            "CSM_API_TOKEN is shorter than 24 characters",
            "use a long random token: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
        )
    return ok("data API", "CSM_API_TOKEN is set")


def doctor_report(container: Container, echo: Callable[[str], None]) -> int:
    """Print every finding; the exit code is 1 when any is a problem."""
    findings = run_doctor(container)
    for finding in findings:
        echo(finding.line())
    problems = [f for f in findings if f.status == "problem"]
    echo(
        f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found."
        if problems
        else "Everything checked is fine."
    )
    return 1 if problems else 0
