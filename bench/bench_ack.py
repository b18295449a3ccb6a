"""Slack acks while the Web API is slow, and manager-sized lists answered in full, on 10,000 accounts.

Each app runs in its own server process (uvicorn, one worker) on 127.0.0.1, next to a bare bolt
app (static acks, nothing else) measured in the same run. The fake Slack Web API from tests/slack
runs in this process.

1. Ack time while every Web API call (users.info, conversations.info, auth.test, response_url)
   takes 5 s: `/health acme` and `/risks team`, first from people Slack has never been asked about
   (users.info on a cold cache for each request), then from people already looked up. Target:
   p99 ≤ 300 ms. The answer follows through response_url when the work outlasts the ack budget.
2. `/risks team` and `/renewals 365` as the manager of every CSM (all 10,000 accounts) with a
   normal Web API, answered in full: the time until the complete answer arrives, in the ack or
   through response_url. Target: p99 ≤ 500 ms.

    .venv/bin/python bench/bench_ack.py [--requests 120]
"""

from __future__ import annotations

import argparse
import os
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

from bench.bench_slack import (  # noqa: E402
    SECRET,
    TODAY,
    bench_db,
    free_port,
    pct,
    signed,
    wait_until_up,
)

SLOW_API = 5.0
STATIC = "Acme Corp — 64/100"


def bare_app(settings: Any, *, process_before_response: bool = True) -> Any:
    """bolt with the same commands, acking a static block: the floor of bolt and the server.

    process_before_response=False is bolt's default, which polls for ack() (platform-facts.md:
    ~10 ms per request); ours and the first bare app use True.
    """
    from slack_bolt import Ack, App

    from bot.slack.services import web_client

    app = App(
        signing_secret=settings.slack_signing_secret,
        client=web_client(settings),
        process_before_response=process_before_response,
        token_verification_enabled=False,
    )
    block = {"type": "section", "text": {"type": "mrkdwn", "text": STATIC}}

    def static(ack: Ack) -> None:
        ack(response_type="ephemeral", text=STATIC, blocks=[block])

    for name in ("/health", "/risks", "/renewals"):
        app.command(name)(static)
    return app


def serve(kind: str, port: int, db: str, api_url: str) -> None:
    import logging

    import uvicorn

    from bot.config import Settings
    from bot.container import Container
    from bot.server import create_app
    from bot.slack.app import build_slack
    from bot.slack.config import SlackOAuthConfig

    logging.basicConfig(level=logging.ERROR)
    settings = Settings(
        database_url=f"sqlite:///{db}",
        slack_bot_token="xoxb-bench",
        slack_signing_secret=SECRET,
        slack_api_url=api_url,
        today=TODAY,
    )
    container = Container(settings=settings)
    single = SlackOAuthConfig(client_id=None, client_secret=None)
    if kind == "full":
        slack = build_slack(container, oauth=single).app
    else:
        slack = bare_app(settings, process_before_response=kind == "bare")
    app = create_app(container, slack_app=slack, with_teams=False)
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, access_log=False, log_level="error")


class Client:
    """Signed slash commands to one server; each with its own response_url on the fake."""

    def __init__(self, url: str, fake: Any) -> None:
        import httpx

        self.url = url
        self.fake = fake
        self.http = httpx.Client(timeout=30)
        self.count = 0
        self.lock = threading.Lock()

    def command(self, command: str, text: str, user: str) -> tuple[float, str, str]:
        """(seconds to the ack, the ack's kind: answer/empty/busy, the response_url name)."""
        with self.lock:
            self.count += 1
            name = f"r{self.count}-{id(self)}"
        body = urlencode(
            {
                "team_id": "T111",
                "channel_id": "C111",
                "user_id": user,
                "command": command,
                "text": text,
                "response_url": self.fake.response_url(name),
                "trigger_id": f"1.{self.count}.x",
            }
        )
        started = time.perf_counter()
        response = self.http.post(self.url, content=body.encode(), headers=signed(body))
        took = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{command}: HTTP {response.status_code} {response.text[:200]}")
        text_ = response.text
        kind = "empty" if not text_ else "busy" if "swamped" in text_ else "answer"
        return took, kind, name

    def close(self) -> None:
        self.http.close()


def start(kind: str, db: Path, api_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    command += ["--db", str(db), "--api-url", api_url]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wait_until_up(port, proc)
    return proc, f"http://127.0.0.1:{port}/slack/events"


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=20)


def ack_phase(client: Client, requests: int, *, cold: bool) -> dict[str, Any]:
    """Alternate /health acme (a CSM) and /risks team (the manager); cold: a new user each time."""
    times: list[float] = []
    kinds: dict[str, int] = {}
    for i in range(requests):
        if i % 2 == 0:
            command, text, user = "/health", "acme", f"UNEW{i}" if cold else "UDANA"
        else:
            command, text, user = "/risks", "team", f"UNEW{i}" if cold else "UALEX"
        took, kind, _ = client.command(command, text, user)
        times.append(took)
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"p50": pct(times, 50), "p99": pct(times, 99), "kinds": kinds}


def full_answer_phase(client: Client, command: str, text: str, requests: int) -> dict[str, Any]:
    """Seconds from sending the command until its whole answer arrived (ack or response_url)."""
    times: list[float] = []
    late = 0
    for _ in range(requests):
        started = time.monotonic()
        took, kind, name = client.command(command, text, "UALEX")
        if kind == "answer":
            times.append(took)
            continue
        late += 1
        [call] = client.fake.wait_for(f"webhook:{name}", timeout=30)
        times.append(call.at - started)
    return {"p50": pct(times, 50), "p99": pct(times, 99), "late": late}


def concurrent_acks(client: Client, threads: int, per_thread: int) -> dict[str, Any]:
    times: list[float] = []
    lock = threading.Lock()

    def run(t: int) -> None:
        for i in range(per_thread):
            user = f"UCONC{t}-{i}"
            command, text = ("/risks", "team") if i % 2 else ("/health", "acme")
            took, _, _ = client.command(command, text, user)
            with lock:
                times.append(took)

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {"p50": pct(times, 50), "p99": pct(times, 99)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", choices=["full", "bare", "bare-default"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--db")
    parser.add_argument("--api-url")
    parser.add_argument("--requests", type=int, default=120)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db, args.api_url)
        return 0

    from tests.slack.fake_slack import FakeSlack

    fake = FakeSlack().start()
    fake.add_user("UDANA", "dana@example.com", "Dana Whitfield")
    fake.add_user("UALEX", "alex@example.com", "Alex Morgan")
    n = args.requests
    slow: dict[str, dict[str, Any]] = {}
    lists: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp:
        db = bench_db(Path(tmp))
        # 1. A 5-second Web API.
        for kind in ("bare", "full"):
            fake.delays.clear()
            proc, url = start(kind, db, fake.api_url)
            client = Client(url, fake)
            try:
                # At normal speed first: bolt's auth.test on the first request (inside its ack,
                # both apps, as at any start-up), and Dana and Alex looked up once.
                client.command("/health", "acme", "UDANA")
                client.command("/risks", "team", "UALEX")
                time.sleep(0.5)
                fake.delay("*", SLOW_API)
                slow[f"{kind} warm"] = ack_phase(client, n, cold=False)
                slow[f"{kind} cold"] = ack_phase(client, n // 3, cold=True)
                slow[f"{kind} 3 at once"] = concurrent_acks(client, 3, n // 10)
            finally:
                client.close()
                stop(proc)
        # 2. Lists answered in full, normal Web API.
        fake.delays.clear()
        for kind in ("bare", "bare-default", "full"):
            proc, url = start(kind, db, fake.api_url)
            client = Client(url, fake)
            try:
                for _ in range(5):  # warm-up: auth.test, users.info, the name index
                    client.command("/risks", "team", "UALEX")
                time.sleep(0.5)
                lists[f"{kind} /risks team"] = full_answer_phase(client, "/risks", "team", n)
                if kind != "bare-default":
                    lists[f"{kind} /renewals 365"] = full_answer_phase(
                        client, "/renewals", "365", n
                    )
            finally:
                client.close()
                stop(proc)
    fake.stop()

    print(f"\n1. Ack time (ms) while every Slack Web API call takes {SLOW_API:.0f} s")
    print(f"{'app and callers':<22}{'p50':>8}{'p99':>8}   acks")
    for name, r in slow.items():
        kinds = r.get("kinds")
        shown = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) if kinds else "3 threads"
        print(f"{name:<22}{r['p50']:>8.1f}{r['p99']:>8.1f}   {shown}")
    print("(cold: a person users.info has not answered for yet; warm: already looked up;")
    print(" answer: the reply rode in the ack; empty: acked at once, answered via response_url)")
    print("\n2. Manager of every CSM (10,000 accounts), time to the complete answer (ms)")
    print(f"{'app and command':<26}{'p50':>8}{'p99':>8}   via response_url")
    for name, r in lists.items():
        print(f"{name:<26}{r['p50']:>8.1f}{r['p99']:>8.1f}   {r['late']}")
    print("(bare: static ack, process_before_response=True as ours; bare-default: bolt's default)")
    worst_ack = max(r["p99"] for k, r in slow.items() if k.startswith("full"))
    worst_list = max(r["p99"] for k, r in lists.items() if k.startswith("full"))
    checks = {
        "ack p99 ≤ 300 ms with a 5 s Web API": worst_ack <= 300,
        "/risks team and /renewals 365 answered in full, p99 ≤ 500 ms": worst_list <= 500,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
