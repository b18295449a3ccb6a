"""The `csm-bot` command line: demo, chat, ask, serve, import, recompute, scheduler, outbox, db, eval-nlu."""

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
    find nothing to free. Reference counting still frees everything as usual meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


with _gc_paused():
    import typer

    from bot.config import Settings

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="CSM Assistant: customer health in chat."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
scheduler_app = typer.Typer(no_args_is_help=True, help="Scheduled reminders, alerts and digests.")
app.add_typer(db_app, name="db")
app.add_typer(scheduler_app, name="scheduler")
outbox_app = typer.Typer(help="Scheduled deliveries: list them, or retry failed ones.")
app.add_typer(outbox_app, name="outbox")

AsOption = Annotated[str | None, typer.Option("--as", help="Answer as this CSM (email).")]


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
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            typer.echo("")
            return
        if line.strip().lower() in ("quit", "exit", "bye", ":q"):
            return
        if not line.strip():
            continue
        typer.echo(chat.ask(line))
        typer.echo("")


@app.command()
def chat(as_email: AsOption = None) -> None:
    """Open the local chat in this terminal."""
    _chat_loop(_console(as_email))


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
) -> None:
    """Seed a realistic demo portfolio (replacing what is there) and open the local chat."""
    from handlers.demo import seed_demo
    from storage.db import upgrade

    container = _container()
    upgrade(container.settings.database_url)
    summary = seed_demo(
        container.engine,
        today=container.today(),
        accounts=accounts,
        days=days,
        seed=seed,
        models=container.health_models,
        # 45 days of daily snapshots give 7- and 30-day trends; for very large portfolios a week
        # keeps the seed short (the nightly job fills in the rest).
        snapshot_days=45 if accounts <= 2_000 else 7,
    )
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


@app.command("import")
def import_(
    kind: Annotated[
        str, typer.Argument(help="accounts | readings | milestones | renewals | surveys")
    ],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import a CSV file: every row is checked first; one bad row and nothing is written."""
    from storage.csv_import import KINDS, ImportFailed, import_csv
    from storage.db import upgrade

    if kind not in KINDS:
        typer.echo(f"Unknown kind “{kind}”; use one of: {', '.join(KINDS)}", err=True)
        raise typer.Exit(2)
    container = _container()
    upgrade(container.settings.database_url)
    try:
        report = import_csv(container.engine, kind, file)
    except ImportFailed as exc:
        rows = len({error.row for error in exc.errors})
        typer.echo(
            f"{file}: {len(exc.errors)} error{'s' if len(exc.errors) != 1 else ''} in {rows} "
            f"row{'s' if rows != 1 else ''}, nothing was imported:",
            err=True,
        )
        for error in exc.errors:
            typer.echo(f"  {error}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"{report.kind}: {report.rows} rows, {report.inserted} new, {report.updated} updated, "
        f"{report.unchanged} unchanged."
    )
    if report.account_ids and kind in ("readings", "surveys", "accounts"):
        from handlers.recompute import recompute_health

        summary = recompute_health(
            container.engine,
            as_of=container.today(),
            models=container.health_models,
            account_ids=report.account_ids,
        )
        typer.echo(f"Health recomputed for {summary.accounts} accounts.")


@app.command()
def recompute(
    at: Annotated[
        str | None, typer.Option(help="Day to compute (YYYY-MM-DD); default today.")
    ] = None,
) -> None:
    """Recompute every account's health snapshot for a day."""
    from handlers.recompute import recompute_health

    container = _container()
    try:
        day = date.fromisoformat(at) if at else container.today()
    except ValueError as exc:
        typer.echo(f"--at takes a day as YYYY-MM-DD, not {at!r}", err=True)
        raise typer.Exit(2) from exc
    summary = recompute_health(container.engine, as_of=day, models=container.health_models)
    typer.echo(
        f"{summary.snapshots} snapshots for {day} ({summary.insufficient} with insufficient data) "
        f"in {summary.seconds:.2f}s."
    )


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
    from bot.server import serve as run_server

    run_server(
        _container(), host=host, port=port, with_scheduler=not no_scheduler, socket_mode=socket_mode
    )


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


@app.command("eval-nlu")
def eval_nlu(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="TSV of utterances.")],
    today: Annotated[
        str, typer.Option(help="The day relative dates are computed from.")
    ] = "2026-11-23",
) -> None:
    """Measure intent and entity accuracy of the parser on a labelled file against the database's accounts."""
    from domain.nlu.evaluate import evaluate_file
    from handlers.accounts import account_index

    container = _container()
    with container.session() as session:
        index = account_index(session)
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
