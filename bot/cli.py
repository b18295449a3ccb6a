"""The `csm-bot` command line: demo, chat, ask, serve, people, import, sync, doctor, recompute, backtest, scheduler, outbox, db, eval-nlu."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Cyclic garbage collection off for a burst of allocation that makes (almost) no garbage.

    Start-up imports (SQLAlchemy, pydantic, typer ...) and one-shot work such as building the
    account-name index for 10,000 accounts create hundreds of thousands of long-lived objects;
    the collector would scan them again and again (a fifth of a one-shot `csm-bot ask`) only to
    find nothing to free. Reference counting still frees everything as usual meanwhile. What the
    burst leaves behind is frozen (gc.freeze) before the collector comes back: otherwise its
    first run after the pause scans all of it once more (a tenth of a one-shot ask).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()


with _gc_paused():
    import typer
    from typer.core import TyperGroup

    from bot.config import Settings

logger = logging.getLogger(__name__)


class _Commands(TyperGroup):
    """Every command: a configuration or connection problem is one line with its fix, exit 2.

    Anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            from bot.problems import explain

            message = explain(exc, _database_url())
            if message is None:
                raise
            logger.debug("operator problem", exc_info=True)
            typer.echo(message, err=True)
            raise typer.Exit(2) from exc


def _count(n: int, noun: str) -> str:
    """ "1 account", "3 accounts"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _database_url() -> str | None:
    try:
        return Settings().database_url
    except ValueError:
        return None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"csm-bot {version('csm-assistant')}")
        raise typer.Exit()


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    help="CSM Assistant: customer health in chat.",
)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """CSM Assistant: customer health in chat."""


db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
scheduler_app = typer.Typer(no_args_is_help=True, help="Scheduled reminders, alerts and digests.")
people_app = typer.Typer(no_args_is_help=True, help="The team: CSMs, managers, admins and viewers.")
sync_app = typer.Typer(
    no_args_is_help=True, help="Pull accounts, renewals, readings and surveys from other systems."
)
app.add_typer(db_app, name="db")
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(people_app, name="people")
app.add_typer(sync_app, name="sync")
outbox_app = typer.Typer(help="Scheduled deliveries: list them, or retry failed ones.")
app.add_typer(outbox_app, name="outbox")

AsOption = Annotated[str | None, typer.Option("--as", help="Answer as this CSM (email).")]
ScenarioOption = Annotated[
    str | None,
    typer.Option(
        help="Shape the demo histories: 'trajectories' gives accounts known falls, recoveries, "
        "plateaus, dips and steps (for backtesting the forecast)."
    ),
]


def _container(today: str | None = None):  # type: ignore[no-untyped-def]
    from bot.container import Container

    settings = Settings()
    if today:
        settings.today = today
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    return Container(settings=settings)


def _console(as_email: str | None):  # type: ignore[no-untyped-def]
    from bot.console import ConsoleChat, SchemaMissing

    try:
        return ConsoleChat(_container(), as_email)
    except SchemaMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def _chat_loop(chat) -> None:  # type: ignore[no-untyped-def]
    typer.echo(chat.greeting())
    if sys.stdin is None or sys.stdin.closed:
        # `csm-bot chat <&-` or a service with no terminal: nothing will ever be typed.
        typer.echo("(no input: standard input is closed)")
        return
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt, OSError, RuntimeError):
            # EOF (Ctrl-D, a pipe that ended), or stdin gone: leave like "quit" does.
            typer.echo("")
            return
        if line.strip().lower() in ("quit", "exit", "bye", ":q"):
            return
        if not line.strip():
            continue
        # The text answer is printed before any chart is drawn.
        for out in chat.answer_lines(line):
            typer.echo(out)
        typer.echo("")


@app.command()
def chat(as_email: AsOption = None) -> None:
    """Open the local chat in this terminal."""
    console = _console(as_email)
    console.container.warm_up()  # while the greeting is read
    _chat_loop(console)


@app.command()
def ask(
    text: Annotated[str | None, typer.Argument(help='The message, e.g. "/health acme".')] = None,
    as_email: AsOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print intent, entities, template, context.")
    ] = False,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="One message per input line, one JSON per output line.")
    ] = False,
) -> None:
    """Answer one message (or every line of standard input with --stdin)."""
    import json

    with _gc_paused():
        console = _console(as_email)
    if stdin:
        if sys.stdin is None or sys.stdin.closed:
            return  # no input, no answers
        # Any number of lines: the collector is on, as in any long-running loop.
        for out in console.ask_lines(sys.stdin):
            typer.echo(out)
        return
    # One answer, and the process ends: no collection needed while it is made.
    with _gc_paused():
        if as_json:
            out = json.dumps(
                console.ask_json(text or ""), ensure_ascii=False, indent=2, default=str
            )
        else:
            out = console.ask(text or "")
    typer.echo(out)


@app.command()
def demo(
    accounts: Annotated[int, typer.Option(min=5, max=20_000, help="How many accounts.")] = 60,
    days: Annotated[
        int, typer.Option(min=7, max=730, help="Days of daily readings (at least a week).")
    ] = 365,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same portfolio).")] = 7,
    no_chat: Annotated[
        bool, typer.Option("--no-chat", help="Seed only; don't open the chat.")
    ] = False,
    as_email: AsOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace the database even if it holds more than demo data."),
    ] = False,
    scenario: ScenarioOption = None,
) -> None:
    """Seed a realistic demo portfolio (replacing what is there) and open the local chat."""
    from handlers.demo import seed_demo
    from storage.db import upgrade
    from storage.demo_guard import foreign_data

    container = _container()
    upgrade(container.settings.database_url)
    if not force:
        found = foreign_data(container.engine)
        if found:
            typer.echo(
                f"Refusing to replace {_safe(container.settings.database_url)}: it holds {found}, "
                "not just demo data; point CSM_DATABASE_URL at another database, or add --force "
                "to wipe it.",
                err=True,
            )
            raise typer.Exit(1)
    try:
        summary = seed_demo(
            container.engine,
            today=container.today(),
            accounts=accounts,
            days=days,
            seed=seed,
            models=container.health_models,
            # 45 days of daily snapshots give 7- and 30-day trends; for very large portfolios a
            # week keeps the seed short (the nightly job fills in the rest).
            snapshot_days=45 if accounts <= 2_000 else 7,
            scenario=scenario,
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"Demo portfolio ready in {container.settings.database_url}: {summary.accounts} accounts, "
        f"{summary.csms} people, {summary.readings:,} readings, {summary.milestones} milestones, "
        f"{summary.renewals} renewals, {summary.qbrs} QBRs, {summary.escalations} escalations."
    )
    if not no_chat:
        _chat_loop(_console(as_email))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    from storage.db import upgrade

    settings = Settings()
    upgrade(settings.database_url)
    typer.echo(f"Schema is up to date ({settings.database_url}).")


def _safe(url: str) -> str:
    from bot.problems import safe_url

    return safe_url(url)


EncodingOption = Annotated[
    str | None,
    typer.Option(
        help="Text encoding of the file (default UTF-8, with or without a byte-order mark), e.g. cp1252."
    ),
]


@app.command("import")
def import_(
    kind: Annotated[
        str,
        typer.Argument(help="people | accounts | readings | milestones | renewals | surveys"),
    ],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    encoding: EncodingOption = None,
) -> None:
    """Import a CSV file: every row is checked first; one bad row and nothing is written."""
    from storage.csv_import import KINDS

    if kind not in KINDS:
        typer.echo(f"Unknown kind “{kind}”; use one of: {', '.join(KINDS)}", err=True)
        raise typer.Exit(2)
    _import_file(kind, file, encoding)


def _import_file(kind: str, file: Path, encoding: str | None) -> None:
    from storage.csv_import import ImportFailed, error_lines, import_csv
    from storage.db import upgrade

    container = _container()
    upgrade(container.settings.database_url)
    try:
        report = import_csv(
            container.engine, kind, file, encoding=encoding, today=container.today()
        )
    except ImportFailed as exc:
        rows = len({error.row for error in exc.errors})
        typer.echo(
            f"{file}: {len(exc.errors):,} error{'s' if len(exc.errors) != 1 else ''} in {rows:,} "
            f"row{'s' if rows != 1 else ''}, nothing was imported:",
            err=True,
        )
        for line in error_lines(exc.errors):
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(report.summary() + ".")
    if report.account_ids and kind in ("readings", "surveys", "accounts"):
        from handlers.recompute import recompute_health

        summary = recompute_health(
            container.engine,
            as_of=container.today(),
            models=container.health_models,
            account_ids=report.account_ids,
        )
        typer.echo(f"Health recomputed for {_count(summary.accounts, 'account')}.")


# -- people -------------------------------------------------------------------------------------

RoleOption = Annotated[str | None, typer.Option(help="admin | manager | csm | viewer")]
ManagerOption = Annotated[
    str | None, typer.Option("--manager", help="Email of their manager ('none' clears it).")
]
TzOption = Annotated[
    str | None,
    typer.Option("--tz", help="IANA time zone, e.g. Europe/Berlin (digests, reminders)."),
]
DigestOption = Annotated[
    str | None, typer.Option("--digest-time", help="Local time of the daily digest, HH:MM.")
]
SlackIdOption = Annotated[
    str | None, typer.Option("--slack-id", help="Slack member id (U0123ABCD).")
]
TeamsIdOption = Annotated[str | None, typer.Option("--teams-id", help="Teams user id (29:...).")]
TeamsAadOption = Annotated[
    str | None, typer.Option("--teams-aad-id", help="Azure AD object id of their Teams user.")
]


def _person_record(
    *,
    name: str | None = None,
    role: str | None = None,
    manager: str | None = None,
    tz: str | None = None,
    digest_time: str | None = None,
    digest_weekends: bool | None = None,
    slack_id: str | None = None,
    teams_id: str | None = None,
    teams_aad_id: str | None = None,
    work_start: str | None = None,
    work_end: str | None = None,
) -> dict[str, object]:
    """The columns given on the command line ('none' clears an optional one)."""
    given = {
        "work_start": work_start,
        "work_end": work_end,
        "name": name,
        "role": role,
        "manager_email": manager,
        "timezone": tz,
        "digest_time": digest_time,
        "digest_weekends": digest_weekends,
        "slack_user_id": slack_id,
        "teams_user_id": teams_id,
        "teams_aad_object_id": teams_aad_id,
    }
    out: dict[str, object] = {}
    for key, value in given.items():
        if value is None:
            continue
        out[key] = None if isinstance(value, str) and value.strip().lower() == "none" else value
    return out


def _work_hours(value: str | None) -> dict[str, str]:
    """--work-hours 09:00-18:00 as the two columns (each checked by the people import)."""
    if value is None:
        return {}
    start, sep, end = value.partition("-")
    if not sep or not start.strip() or not end.strip():
        typer.echo(f"--work-hours: use HH:MM-HH:MM, e.g. 09:00-18:00 (got {value!r})", err=True)
        raise typer.Exit(2)
    return {"work_start": start.strip(), "work_end": end.strip()}


def _people_write(action, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """Run add/set; a refusal is one line per problem and exit 1."""
    from storage.csv_import import ImportFailed, error_lines
    from storage.people import PersonExists, PersonUnknown

    try:
        report = action(*args, actor_label="cli", source="cli", **kwargs)
    except (PersonExists, PersonUnknown) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    except ImportFailed as exc:
        for line in error_lines(exc.errors):
            # Records are numbered; one person is row 1, which says nothing here.
            typer.echo(line.removeprefix("row 1, ").removeprefix("row 1: "), err=True)
        raise typer.Exit(1) from exc
    typer.echo("added" if report.inserted else "updated" if report.updated else "unchanged")


@people_app.command("add")
def people_add(
    email: Annotated[str, typer.Argument(help="Their work email (how imports name owners).")],
    name: Annotated[str, typer.Option(help="Full name, as shown in chat.")],
    role: Annotated[str, typer.Option(help="admin | manager | csm | viewer")] = "csm",
    manager: ManagerOption = None,
    tz: TzOption = None,
    digest_time: DigestOption = None,
    slack_id: SlackIdOption = None,
    teams_id: TeamsIdOption = None,
    teams_aad_id: TeamsAadOption = None,
) -> None:
    """Add a person to the team (running it again with the same values changes nothing)."""
    from storage.db import upgrade
    from storage.people import add_person

    container = _container()
    upgrade(container.settings.database_url)
    record = {"email": email} | _person_record(
        name=name,
        role=role,
        manager=manager,
        tz=tz,
        digest_time=digest_time,
        slack_id=slack_id,
        teams_id=teams_id,
        teams_aad_id=teams_aad_id,
    )
    _people_write(add_person, container.engine, record)


@people_app.command("set")
def people_set(
    email: Annotated[str, typer.Argument(help="Who to change.")],
    name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    role: RoleOption = None,
    manager: ManagerOption = None,
    tz: TzOption = None,
    digest_time: DigestOption = None,
    digest_weekends: Annotated[
        bool | None,
        typer.Option("--digest-weekends/--no-digest-weekends", help="Digests on weekends too."),
    ] = None,
    slack_id: SlackIdOption = None,
    teams_id: TeamsIdOption = None,
    teams_aad_id: TeamsAadOption = None,
    work_hours: Annotated[
        str | None,
        typer.Option(
            "--work-hours",
            help="Working hours, local HH:MM-HH:MM; urgent alerts only inside them "
            "(docs/notifications.md).",
        ),
    ] = None,
    interrupts: Annotated[
        str | None,
        typer.Option(
            "--interrupts",
            help="Alert kinds that interrupt at once, comma-separated (red,sev1,renewal_detractor,"
            "escalation_sla,amber,score_drop,forecast_red,detractor,milestone_overdue); "
            "'none' or 'default'.",
        ),
    ] = None,
) -> None:
    """Change someone's name, role, manager, time zone, digest time, working hours, what
    interrupts them, or chat ids."""
    from storage.db import upgrade
    from storage.people import set_person

    changes = _person_record(
        name=name,
        role=role,
        manager=manager,
        tz=tz,
        digest_time=digest_time,
        digest_weekends=digest_weekends,
        slack_id=slack_id,
        teams_id=teams_id,
        teams_aad_id=teams_aad_id,
        **_work_hours(work_hours),
    )
    if interrupts is not None:
        # Not through the 'none' rule above: here "none" means nothing interrupts (not unset).
        changes["interrupts"] = interrupts.strip() or "default"
    if not changes:
        typer.echo("Nothing to change: give at least one option (see --help).", err=True)
        raise typer.Exit(2)
    container = _container()
    upgrade(container.settings.database_url)
    _people_write(set_person, container.engine, email, changes)


@people_app.command("import")
def people_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    encoding: EncodingOption = None,
) -> None:
    """Add or update people from a CSV file (columns: docs/import.md#people)."""
    _import_file("people", file, encoding)


@people_app.command("list")
def people_list(
    role: RoleOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """Everyone on the team, with their manager, time zone, digest time and chat ids."""
    import json

    from storage.people import list_people

    container = _container()
    people = list_people(container.engine, role=role)
    if as_json:
        typer.echo(json.dumps([p.as_dict() for p in people], indent=2, ensure_ascii=False))
        return
    if not people:
        typer.echo("Nobody yet. Add someone: csm-bot people add EMAIL --name NAME --role admin")
        return
    for p in people:
        chat = ", ".join(
            label
            for label, value in (
                ("Slack", p.slack_user_id),
                ("Teams", p.teams_user_id or p.teams_aad_object_id),
            )
            if value
        )
        typer.echo(
            f"{p.email:<32} {p.name:<24} {p.role:<8} manager {p.manager_email or '-':<24} "
            f"{p.timezone:<20} digest {p.digest_time}  {_count(p.accounts, 'account')}"
            + (f"  ({chat})" if chat else "  (no chat id yet)")
        )


# -- sync and doctor -----------------------------------------------------------------------------


@sync_app.command("run")
def sync_run(
    source: Annotated[
        str | None, typer.Option(help="Only this source (its name in the sync file).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Fetch and check everything, write nothing.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(help="The sync file (default: CSM_SYNC_CONFIG).", dir_okay=False),
    ] = None,
) -> None:
    """Pull accounts, renewals, readings and surveys from Salesforce, HubSpot or SQL (docs/sync.md)."""
    from handlers.sync import run_sync
    from storage.db import upgrade
    from storage.sync.config import SyncConfigError

    container = _container()
    path = config or container.settings.sync_config
    if path is None:
        typer.echo(
            "No sync configured: set CSM_SYNC_CONFIG to a sync file or pass --config "
            "(docs/sync.md has examples for Salesforce, HubSpot and SQL).",
            err=True,
        )
        raise typer.Exit(2)
    upgrade(container.settings.database_url)
    try:
        summary = run_sync(
            container.engine,
            path,
            models=container.health_models,
            today=container.today(),
            source=source,
            dry_run=dry_run,
        )
    except SyncConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    for line in summary.lines():
        typer.echo(line)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def doctor() -> None:
    """Check the configuration: database, schema, people, scheduler, sync, Slack, Teams, API."""
    from bot.doctor import doctor_report

    code = doctor_report(_container(), typer.echo)
    if code:
        raise typer.Exit(code)


@app.command()
def recompute(
    at: Annotated[
        str | None, typer.Option(help="Day to compute (YYYY-MM-DD); default today.")
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Backfill every day from this one (YYYY-MM-DD) to --at: the history that trends, "
            "charts and forecasts read, e.g. after importing past readings.",
        ),
    ] = None,
) -> None:
    """Recompute every account's health snapshot for a day, or for every day of a range."""
    from handlers.recompute import backfill_snapshots, recompute_health

    container = _container()
    day = _day_option("--at", at, container.today())
    if from_ is not None:
        first = _day_option("--from", from_, day)
        if first > day:
            typer.echo(f"--from {first} is after --at {day}: nothing to backfill", err=True)
            raise typer.Exit(2)
        written = backfill_snapshots(
            container.engine, start=first, end=day, models=container.health_models
        )
        days = (day - first).days + 1
        typer.echo(f"{written:,} snapshots for {_count(days, 'day')}, {first} to {day}.")
        return
    summary = recompute_health(container.engine, as_of=day, models=container.health_models)
    typer.echo(
        f"{summary.snapshots} snapshots for {day} ({summary.insufficient} with insufficient data) "
        f"in {summary.seconds:.2f}s."
    )


def _day_option(flag: str, raw: str | None, default: date) -> date:
    """A YYYY-MM-DD option, or a one-line error."""
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        typer.echo(f"{flag} takes a day as YYYY-MM-DD, not {raw!r}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def backtest(
    scenario: Annotated[
        str | None,
        typer.Option(
            help="Backtest a freshly seeded demo in a temporary database instead of yours: "
            "'demo' (the usual portfolio) or 'trajectories' (known falls, recoveries, plateaus)."
        ),
    ] = None,
    accounts: Annotated[int, typer.Option(min=5, max=5_000, help="Scenario accounts.")] = 120,
    days: Annotated[int, typer.Option(min=150, max=730, help="Scenario days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Scenario random seed.")] = 7,
    first: Annotated[str | None, typer.Option(help="First day to replay (YYYY-MM-DD).")] = None,
    last: Annotated[str | None, typer.Option(help="Last day to replay (YYYY-MM-DD).")] = None,
) -> None:
    """Replay every day of the health history and score the red forecast: precision and recall
    of "red within 14 / 30 days", next to two naive baselines computed in the same run."""
    import tempfile

    from domain.backtest import format_table
    from handlers.backtest import run_backtest
    from storage.db import make_engine, upgrade

    container = _container()
    try:
        start = date.fromisoformat(first) if first else None
        end = date.fromisoformat(last) if last else None
    except ValueError as exc:
        typer.echo(f"--first and --last take a day as YYYY-MM-DD: {exc}", err=True)
        raise typer.Exit(2) from exc
    models = container.health_models
    with tempfile.TemporaryDirectory(prefix="csm-backtest-") as folder:
        engine = container.engine
        if scenario is not None:
            from handlers.demo import seed_demo

            if scenario not in ("demo", "trajectories"):
                typer.echo(f"Unknown scenario “{scenario}”; use demo or trajectories.", err=True)
                raise typer.Exit(2)
            url = f"sqlite:///{Path(folder) / 'backtest.db'}"
            upgrade(url)
            engine = make_engine(url)
            seed_demo(
                engine,
                today=container.today(),
                accounts=accounts,
                days=days,
                seed=seed,
                models=models,
                snapshot_days=0,
                scenario=None if scenario == "demo" else scenario,
            )
        try:
            run = run_backtest(engine, models=models, first=start, last=end)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        finally:
            if scenario is not None:
                engine.dispose()
    label = f"scenario {scenario} (seed {seed})" if scenario else container.settings.database_url
    typer.echo(f"{label}\n{format_table(run.table)}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 3000,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Don't run scheduled jobs here.")
    ] = False,
    socket_mode: Annotated[
        bool, typer.Option("--socket-mode", help="Connect to Slack with SLACK_APP_TOKEN.")
    ] = False,
) -> None:
    """Serve Slack (/slack/events), Teams (/api/messages), /healthz and /metrics."""
    from bot.config import ConfigurationError
    from bot.server import serve as run_server

    try:
        run_server(
            _container(),
            host=host,
            port=port,
            with_scheduler=not no_scheduler,
            socket_mode=socket_mode,
        )
    except ConfigurationError as exc:
        typer.echo(f"Configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


@scheduler_app.command("run-once")
def scheduler_run_once(
    at: Annotated[
        str, typer.Option(help="The instant, ISO-8601 (e.g. 2026-11-23T08:30:00+00:00).")
    ],
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill",
            help="Allow an instant outside the catch-up window (past or future): what was due "
            "then is queued and posted now.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be queued; write nothing.")
    ] = False,
) -> None:
    """Run every job due at that instant, then deliver what they queued."""
    from bot.scheduling import run_once_command

    try:
        # The scheduler parses the instant itself: "Z" and naive (= UTC) are accepted.
        typer.echo(run_once_command(_container(), at, backfill=backfill, dry_run=dry_run))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@outbox_app.callback(invoke_without_command=True)
def outbox(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="pending | sending | sent | failed")] = None,
) -> None:
    """List scheduled deliveries (or `outbox retry` to send failed ones again)."""
    if ctx.invoked_subcommand is not None:
        return
    from scheduler.cli_support import outbox_listing

    try:
        typer.echo(outbox_listing(_container().engine, status))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@outbox_app.command("retry")
def outbox_retry(
    kind: Annotated[
        str | None, typer.Option(help="Only this kind (daily_digest, risk_alert, ...).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only rows that failed at or after this ISO-8601 instant.")
    ] = None,
) -> None:
    """Queue failed deliveries again (after an outage or a fixed channel), with a fresh deadline."""
    from bot.scheduling import config_for
    from scheduler.cli_support import retry_command

    container = _container()
    try:
        typer.echo(retry_command(container.engine, config_for(container), kind=kind, since=since))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@app.command()
def qbr(
    account: Annotated[str, typer.Argument(help="The account, as you would name it in chat.")],
    out: Annotated[
        Path, typer.Option("--out", dir_okay=False, help="File to write (.pptx or .md).")
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help="pptx | md (default: from --out's suffix).")
    ] = None,
    variant: Annotated[
        str,
        typer.Option(help="executive (strategy, outcomes) | operational (adoption, milestones)."),
    ] = "executive",
    as_email: AsOption = None,
) -> None:
    """Build the QBR pack of an account: a deck (python-pptx) or the same outline as Markdown."""
    from bot.qbr_files import write_pack

    chosen = fmt or ("md" if out.suffix.lower() in (".md", ".markdown") else "pptx")
    if chosen not in ("pptx", "md"):
        typer.echo(f"--format takes pptx or md, not {chosen!r}", err=True)
        raise typer.Exit(2)
    if variant not in ("executive", "operational"):
        typer.echo(f"--variant takes executive or operational, not {variant!r}", err=True)
        raise typer.Exit(2)
    chat = _console(as_email)
    try:
        typer.echo(write_pack(chat, account, out, fmt=chosen, variant=variant))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    except OSError as exc:
        typer.echo(f"Cannot write {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("eval-nlu")
def eval_nlu(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="TSV of utterances.")],
    today: Annotated[
        str, typer.Option(help="The day relative dates are computed from.")
    ] = "2026-11-23",
) -> None:
    """Measure intent and entity accuracy of the parser on a labelled file against the database's accounts."""
    from domain.nlu.evaluate import evaluate_file
    from handlers.name_index import account_index

    container = _container()
    with container.session() as session:
        index = account_index(session)
    if not len(index):
        typer.echo(
            "No accounts in the database to match names against: run `csm-bot demo` first (the "
            "labelled files name the demo portfolio's accounts).",
            err=True,
        )
        raise typer.Exit(2)
    report = evaluate_file(file, index=index, today=date.fromisoformat(today))
    typer.echo(report.format())


@app.command("teams-manifest")
def teams_manifest(
    out: Annotated[
        Path, typer.Option(help="Folder to write manifest.json, icons and the zip into.")
    ],
    domain: Annotated[list[str] | None, typer.Option(help="Valid domain (repeatable).")] = None,
) -> None:
    """Write the Teams app package (manifest.json + icons, zipped) ready to upload."""
    from bot.teams.manifest import write_teams_package

    settings = Settings()
    if not settings.microsoft_app_id:
        typer.echo("Set MICROSOFT_APP_ID (the bot's app id) first.", err=True)
        raise typer.Exit(2)
    try:
        path = write_teams_package(out, settings.microsoft_app_id, list(domain or []))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"Teams app package: {path}")


def main() -> None:
    try:
        app()
    finally:
        # The process ends here. The interpreter's exit-time collection would walk every
        # object of the run (most of a quick command's last 100 ms) only for the OS to free
        # the memory a moment later; work that must happen at exit is not left to it.
        gc.disable()


if __name__ == "__main__":
    main()
