"""`/health acme` over real HTTP on the 10,000-account database, against a bare bolt app on the same server."""

# Each app runs in its own server process (uvicorn, one worker) on 127.0.0.1; the client is this
# process. Phase 1 sends requests one at a time (latency: p50/p99); phase 2 keeps several client
# threads busy for a bounded number of requests (sustained requests/s, and latency under load).
# Slack's Web API is the local fake from tests/slack (auth.test, users.info, conversations.info are
# called once, then cached). Targets: p99 ≤ 25 ms, ≤ 3× the bare app's p99, ≥ 200 requests/s.
#
#     .venv/bin/python bench/bench_slack.py [--requests 1500] [--threads 8]

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"
TODAY = "2026-11-23"
BARE_TEXT = "Acme Corp — 64/100"


# -- the servers (run in child processes) ---------------------------------------------------------
def bare_app(settings: Any) -> Any:
    """A bolt app with one command that acks a static block: the floor bolt + server can reach."""
    from slack_bolt import Ack, App

    from bot.slack.services import web_client

    app = App(
        signing_secret=settings.slack_signing_secret,
        client=web_client(settings),
        process_before_response=True,
        token_verification_enabled=False,
    )
    block = {"type": "section", "text": {"type": "mrkdwn", "text": BARE_TEXT}}

    @app.command("/health")
    def health(ack: Ack) -> None:
        ack(response_type="ephemeral", text=BARE_TEXT, blocks=[block])

    return app


def serve(kind: str, port: int, db: str, api_url: str) -> None:
    import logging

    import uvicorn

    from bot.config import Settings
    from bot.container import Container
    from bot.server import create_app
    from bot.slack.app import build_slack

    logging.basicConfig(level=logging.WARNING)
    settings = Settings(
        database_url=f"sqlite:///{db}",
        slack_bot_token="xoxb-bench",
        slack_signing_secret=SECRET,
        slack_api_url=api_url,
        today=TODAY,
    )
    container = Container(settings=settings)
    slack = build_slack(container).app if kind == "full" else bare_app(settings)
    app = create_app(container, slack_app=slack, with_teams=False)
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, access_log=False, log_level="warning")


# -- the client ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={digest}",
    }


BODY = urlencode(
    {
        "token": "verification_token",
        "team_id": "T111",
        "team_domain": "bench",
        "channel_id": "C111",
        "channel_name": "general",
        "user_id": "UDANA",
        "user_name": "dana",
        "command": "/health",
        "text": "acme",
        "response_url": "https://hooks.slack.com/commands/T111/1/x",
        "trigger_id": "1.1.x",
    }
)


def one(client: Any, url: str, *, warming: bool = False) -> float:
    started = time.perf_counter()
    response = client.post(url, content=BODY.encode(), headers=signed(BODY))
    elapsed = time.perf_counter() - started
    # Warming up, the first answers may come after the ack (Slack and the name index are cold).
    late = warming and response.status_code == 200 and not response.text
    if not late and (response.status_code != 200 or BARE_TEXT.split(" — ")[0] not in response.text):
        raise RuntimeError(f"bad answer {response.status_code}: {response.text[:300]}")
    return elapsed


def measure(url: str, requests: int, threads: int) -> dict[str, float]:
    import httpx

    with httpx.Client(timeout=10) as client:
        for _ in range(50):  # warm-up: caches, connections, the first auth.test
            one(client, url, warming=True)
        sequential = [one(client, url) for _ in range(requests // 2)]

    latencies: list[float] = []
    lock = threading.Lock()
    remaining = [requests]

    def worker() -> None:
        with httpx.Client(timeout=10) as client:
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                took = one(client, url)
                with lock:
                    latencies.append(took)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    return {
        "p50": pct(sequential, 50),
        "p99": pct(sequential, 99),
        "load_p50": pct(latencies, 50),
        "load_p99": pct(latencies, 99),
        "rps": len(latencies) / wall,
    }


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


def wait_until_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def bench_db(workdir: Path) -> Path:
    """A private copy of the cached 10k portfolio (the bench links a Slack user: a write)."""
    from storage.db import make_engine

    copy = workdir / "slack-bench.db"
    try:
        from bench._portfolio import portfolio_db
    except ImportError:  # the shared cache builder is optional: build a private portfolio
        from datetime import date

        from handlers.demo import seed_demo
        from storage.db import upgrade

        upgrade(f"sqlite:///{copy}")
        engine = make_engine(f"sqlite:///{copy}")
        seed_demo(
            engine, today=date.fromisoformat(TODAY), accounts=10_000, days=90, snapshot_days=0
        )
        engine.dispose()
    else:
        shutil.copy(portfolio_db(), copy)
    engine = make_engine(f"sqlite:///{copy}")
    with engine.connect() as conn:
        snapshots = conn.exec_driver_sql(
            "select count(*) from health_snapshot where day = ?", (TODAY,)
        ).scalar()
    if not snapshots:
        from datetime import date

        from domain.health_model import load_health_models
        from handlers.recompute import recompute_health

        recompute_health(engine, as_of=date.fromisoformat(TODAY), models=load_health_models(None))
    engine.dispose()
    return copy


def breakdown(db: Path, requests: int = 300) -> dict[str, float]:
    """In-process ms per `/health acme`: the handler alone, and the Slack rendering of its Reply;
    and how many statements a warm handler sends."""
    from datetime import date

    from bot.config import Settings
    from bot.container import Container
    from bot.slack.asks import Ask, run
    from bot.slack.messages import message
    from handlers.context import ChatContext
    from handlers.identity import actor_by_email

    container = Container(settings=Settings(database_url=f"sqlite:///{db}", today=TODAY))
    with container.session() as session:
        actor = actor_by_email(session, "dana@example.com")
    assert actor is not None
    ctx = ChatContext(platform="slack", actor=actor, today=date.fromisoformat(TODAY))
    models, ask = container.health_models, Ask(kind="health", text="acme")

    def handler() -> Any:
        with container.session() as session:
            return run(session, ctx, models, ask)

    from sqlalchemy import event

    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    reply = handler()
    event.listen(container.engine, "before_cursor_execute", seen)
    handler()
    event.remove(container.engine, "before_cursor_execute", seen)
    timings: dict[str, float] = {"statements": len(statements)}
    for name, fn in (("handler", handler), ("render", lambda: message(reply, share={"k": "x"}))):
        for _ in range(30):
            fn()
        started = time.perf_counter()
        for _ in range(requests):
            fn()
        timings[name] = (time.perf_counter() - started) / requests * 1000
    container.engine.dispose()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", choices=["full", "bare"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--db")
    parser.add_argument("--api-url")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db, args.api_url)
        return 0

    from tests.slack.fake_slack import FakeSlack

    fake = FakeSlack().start()
    fake.add_user("UDANA", "dana@example.com", "Dana Whitfield")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-slack-") as tmp:
        started = time.perf_counter()
        db = bench_db(Path(tmp))
        print(f"10k-account database ready in {time.perf_counter() - started:.1f}s", flush=True)
        for kind in ("bare", "full"):
            port = free_port()
            command = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
            command += ["--db", str(db), "--api-url", fake.api_url]
            proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            try:
                wait_until_up(port, proc)
                results[kind] = measure(
                    f"http://127.0.0.1:{port}/slack/events", args.requests, args.threads
                )
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        parts = breakdown(db)
    fake.stop()

    print(f"\n/health acme over HTTP, {args.requests} requests per phase, {args.threads} threads")
    print(f"{'app':<6}{'p50 ms':>9}{'p99 ms':>9}{'load p50':>10}{'load p99':>10}{'req/s':>9}")
    for kind, r in results.items():
        print(
            f"{kind:<6}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['load_p50']:>10.2f}"
            f"{r['load_p99']:>10.2f}{r['rps']:>9.0f}"
        )
    print(
        f"in-process, per request: handler {parts['handler']:.2f} ms "
        f"({parts['statements']:.0f} SQL statements through SQLAlchemy, plus the account index's "
        f"one-statement change check on the driver), Slack rendering {parts['render']:.2f} ms"
    )
    full, bare = results["full"], results["bare"]
    ratio = full["p99"] / bare["p99"]
    checks = {
        "p99 ≤ 25 ms": full["p99"] <= 25,
        "p99 ≤ 3× bare": ratio <= 3,
        "≥ 200 req/s": full["rps"] >= 200,
    }
    print(f"full/bare p99: {ratio:.2f}×")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
