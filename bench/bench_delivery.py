"""Delivery: a day's outbox of 10,000 accounts through two replicas on PostgreSQL, against fake Slack and Teams.

# Slack: the fake answers after 300 ms, enforces chat.postMessage's 1 per second per channel (a
# burst of 2 tolerated: "short bursts >1 allowed") and a
# 10 per second workspace cap (429 + Retry-After), conversations.history's 50 per minute, and drops
# 3 % of the answers (the post is kept, the connection closed). One replica is killed with
# SIGKILL in the middle. Teams: the fake Bot Connector enforces 7/1 s, 8/2 s, 60/30 s, 1800/h per
# thread and 50/s per tenant and answers after 100 ms. Each figure is printed beside the rate the
# limits allow and beside a baseline measured in the same run (one replica, no faults).
# The demo seed is timed on SQLite and PostgreSQL in the same run.
#
#     .venv/bin/python bench/bench_delivery.py            # --quick: every 4th message of the day
#     .venv/bin/python bench/bench_delivery.py --full     # the whole day (about 25 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

PG_ADMIN = os.environ.get(
    "CSM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CACHE = ROOT / "bench" / ".cache"
DAY_FILE = CACHE / "delivery-day-10k.json"
SLACK_LATENCY = 0.3
TEAMS_LATENCY = 0.1
WORKSPACE_CAP = 10
TENANT_CAP = 50
DROP_RATE = 0.03
TEAMS_THREAD = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))


# -- the day's outbox ---------------------------------------------------------------------------


def _composer_version() -> str:
    """A hash of what composes the messages: the cached day is remade when any of it changes."""
    import hashlib

    digest = hashlib.sha256()
    sources = [ROOT / "scheduler" / "work.py", ROOT / "scheduler" / "builders.py"]
    sources += sorted((ROOT / "handlers").glob("*.py")) + sorted((ROOT / "templates").rglob("*.j2"))
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def day_outbox() -> list[dict[str, Any]]:
    """Every delivery of one day for 10,000 accounts and 200 CSMs, composed (digests included),
    made once with bench_scheduler's portfolio and cached as JSON (remade when the code that
    composes them changes)."""
    stamp = DAY_FILE.with_suffix(".version")
    version = _composer_version()
    if DAY_FILE.exists() and stamp.exists() and stamp.read_text().strip() == version:
        return json.loads(DAY_FILE.read_text())
    import shutil
    import tempfile

    from bench._portfolio import portfolio_db
    from bench.bench_scheduler import ACCOUNTS, CONFIG, TODAY, prepared_db
    from domain.health_model import load_health_models
    from scheduler.builders import BUILD_KEY, build_reply
    from scheduler.models import Delivery
    from scheduler.work import fill_outbox, recompute_if_due
    from storage.db import make_engine, session_scope, upgrade

    work = Path(tempfile.mkdtemp(prefix="bench-delivery-")) / "day.db"
    shutil.copyfile(prepared_db(portfolio_db(ACCOUNTS, 90)), work)
    url = f"sqlite:///{work}"
    upgrade(url)
    engine = make_engine(url)
    models = load_health_models(None)
    midnight = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC)
    recompute_if_due(engine, at=midnight + timedelta(hours=2), config=CONFIG, models=models)
    for minutes in range(0, 24 * 60, 10):
        at = midnight - timedelta(hours=3) + timedelta(minutes=minutes)
        fill_outbox(engine, at=at, config=CONFIG, models=models, recompute=False)
    rows = []
    with session_scope(engine) as session:
        for d in session.exec(select(Delivery).order_by(Delivery.id)).scalars():  # type: ignore[call-overload]
            reply = (d.template, d.context, d.text)
            if BUILD_KEY in d.context:
                built = build_reply(engine, models, d.context[BUILD_KEY])
                reply = (built.template, built.context, built.text)
            rows.append(
                {
                    "kind": d.kind,
                    "subject": d.subject,
                    "target": d.target,
                    "period": d.period,
                    "template": reply[0],
                    "context": reply[1],
                    "text": reply[2],
                }
            )
    engine.dispose()
    shutil.rmtree(work.parent, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    DAY_FILE.write_text(json.dumps(rows, default=str))
    stamp.write_text(version + "\n")
    return rows


def sample(rows: list[dict[str, Any]], every: int) -> list[dict[str, Any]]:
    """Every ``every``-th delivery of the day in queue order: the day's mix of kinds and channels
    (its busiest channel, the risk channel, included) at a fraction of the length."""
    return rows[::every]


# -- databases ----------------------------------------------------------------------------------


def new_database() -> str:
    name = f"bench_delivery_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    from storage.db import upgrade

    upgrade(url)
    return url


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def load(url: str, rows: list[dict[str, Any]], platform: str, target_of: Any) -> None:
    from handlers.reply import Reply
    from scheduler.outbox import OutboxItem, enqueue
    from storage.db import make_engine, session_scope

    engine = make_engine(url)
    items = [
        OutboxItem(
            r["kind"],
            r["subject"],
            target_of(r["target"]),
            r["period"],
            platform,
            Reply(r["template"], r["context"], r["text"], visibility="channel"),
        )
        for r in rows
    ]
    with session_scope(engine) as session:
        enqueue(session, items)
    engine.dispose()


def slack_target(target: str) -> str:
    # A DM goes to the CSM's Slack user id (what the notifier resolves csm:<id> to).
    return f"U{int(target.split(':')[1]):06d}" if target.startswith("csm:") else target


def teams_target(target: str) -> str:
    return (
        f"a:personal-{target.split(':')[1]}"
        if target.startswith("csm:")
        else f"19:{target}@thread.tacv2"
    )


def add_teams_conversations(url: str, targets: set[str], service_url: str) -> None:
    from storage.db import make_engine, session_scope
    from storage.platform_models import TeamsConversation

    engine = make_engine(url)
    with session_scope(engine) as session:
        for cid in sorted(targets):
            personal = cid.startswith("a:")
            session.add(
                TeamsConversation(
                    conversation_id=cid,
                    conversation_type="personal" if personal else "channel",
                    service_url=service_url,
                    bot_id="28:bench-bot",
                    reference={
                        "activityId": None,
                        "bot": {"id": "28:bench-bot", "name": "CSM Assistant"},
                        "channelId": "msteams",
                        "conversation": {
                            "id": cid,
                            "conversationType": "personal" if personal else "channel",
                        },
                        "serviceUrl": service_url,
                        "user": {"id": "29:bench-user"},
                    },
                )
            )
    engine.dispose()


# -- a replica (child process) ------------------------------------------------------------------


def replica(url: str, platform: str, endpoint: str, name: str) -> None:
    """One replica: dispatch until nothing is left to send anywhere, then exit."""
    import logging

    from scheduler.dispatcher import Dispatcher
    from scheduler.models import Delivery
    from scheduler.pacing import DEFAULT_PACING
    from storage.db import make_engine

    logging.basicConfig(level=logging.ERROR)
    engine = make_engine(url)
    if platform == "slack":
        from slack_sdk import WebClient

        from bot.slack.notifier import SlackNotifier

        notifier: Any = SlackNotifier(
            object(),  # type: ignore[arg-type]  # targets are channel and user ids: no lookups
            client=WebClient(token="xoxb-bench", base_url=endpoint),
        )
    else:
        from bot.config import Settings
        from bot.container import Container
        from bot.teams.notifier import TeamsNotifier

        notifier = TeamsNotifier(Container(settings=Settings(database_url=url)))
    dispatcher = Dispatcher(
        engine,
        {platform: notifier},
        worker_id=name,
        concurrency=6,
        batch_size=100,
        pacing={platform: DEFAULT_PACING[platform]},
    )
    if os.environ.get("CSM_BENCH_TRACE"):
        from bench._trace import install

        install(dispatcher, f"{os.environ['CSM_BENCH_TRACE']}.{name}.jsonl")
    idle_since = None
    while True:
        report = dispatcher.dispatch_due()
        with engine.connect() as conn:
            left = conn.execute(
                select(func.count()).where(Delivery.status.in_(("pending", "sending")))  # type: ignore[attr-defined]
            ).scalar()
        if not left:
            return
        if report.sent or report.found:
            idle_since = None
        idle_since = idle_since or time.monotonic()
        time.sleep(0.05)


def spawn(url: str, platform: str, endpoint: str, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "--replica", url, platform, endpoint, name], cwd=ROOT
    )


def counts(url: str) -> Counter[str]:
    from scheduler.models import Delivery
    from storage.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    engine.dispose()
    return Counter({s: n for s, n in rows})


def run_replicas(
    url: str, platform: str, endpoint: str, total: int, replicas: int, kill_at: float | None
) -> dict[str, Any]:
    started = time.monotonic()
    procs = [spawn(url, platform, endpoint, f"{platform}-{n}") for n in range(replicas)]
    killed = False
    deadline = started + 3 * 3600
    while time.monotonic() < deadline:
        time.sleep(0.5)
        c = counts(url)
        if kill_at is not None and not killed and c["sent"] >= total * kill_at:
            os.kill(procs[0].pid, signal.SIGKILL)  # mid-post, mid-lease: no goodbye
            killed = True
        if all(p.poll() is not None for p in procs[1 if killed else 0 :]):
            break
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=30)
    final = counts(url)
    return {"wall_s": time.monotonic() - started, "statuses": dict(final), "killed": killed}


# -- the allowed rate ---------------------------------------------------------------------------


def greedy_span(count: int, windows: tuple[tuple[int, float], ...]) -> float:
    """Seconds from the first to the last of ``count`` sends on one key, as fast as the windows
    allow (each send at the earliest instant no window forbids)."""
    times: list[float] = []
    for _ in range(count):
        at = 0.0
        for n, seconds in windows:
            if len(times) >= n:
                at = max(at, times[-n] + seconds)
        times.append(at)
    return times[-1] if times else 0.0


# -- Slack --------------------------------------------------------------------------------------


def slack_figure(rows: list[dict[str, Any]], *, replicas: int, faults: bool) -> dict[str, Any]:
    from tests.slack.fake_slack import FakeSlack

    fake = FakeSlack(
        latency=SLACK_LATENCY,
        drop_rate=DROP_RATE if faults else 0.0,
        channel_interval=1.0,
        channel_burst=2,  # "1 per second; short bursts >1 allowed"
        workspace_rate=WORKSPACE_CAP,
        history_per_minute=50,
    ).start()
    url = new_database()
    try:
        load(url, rows, "slack", slack_target)
        run = run_replicas(url, "slack", fake.api_url, len(rows), replicas, 0.4 if faults else None)
        posts = fake.posts()
        by_id = Counter(
            ((m.get("metadata") or {}).get("event_payload") or {}).get("delivery_id") for m in posts
        )
        per_channel = Counter(slack_target(r["target"]) for r in rows)
        arrivals = sorted(m["_at"] for m in posts)
        span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
        ideal = max((len(rows) - WORKSPACE_CAP) / WORKSPACE_CAP, max(per_channel.values()) - 1.0)
        busiest = per_channel.most_common(1)[0][0]
        at = sorted(m["_at"] for m in fake.messages.get(busiest, []))
        return {
            "messages": len(rows),
            "channels": len(per_channel),
            "busiest": max(per_channel.values()),
            "achieved": len(posts) / span if span else 0.0,
            "allowed": len(rows) / ideal if ideal else 0.0,
            "ratio": (ideal / span) if span else 0.0,
            "lost": len(rows) - run["statuses"].get("sent", 0),
            "duplicated": sum(n - 1 for n in by_id.values()),
            "posted": len(posts),
            "rejected_429": fake.rejected,
            "rejections": dict(fake.rejections),
            "dropped": fake.dropped,
            "lookups": len(fake.calls_to("conversations.history")),
            "killed": run["killed"],
            "wall_s": run["wall_s"],
            "busiest_gaps": [b - a for a, b in pairwise(at)],
        }
    finally:
        fake.stop()
        drop_database(url)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


# -- Teams --------------------------------------------------------------------------------------


def teams_figure(rows: list[dict[str, Any]], *, replicas: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests" / "teams"))
    from fake_connector import FakeConnector

    fake = FakeConnector(latency=TEAMS_LATENCY).start()
    url = new_database()
    try:
        targets = [teams_target(r["target"]) for r in rows]
        add_teams_conversations(url, set(targets), fake.service_url)
        load(url, rows, "teams", teams_target)
        run = run_replicas(url, "teams", fake.service_url, len(rows), replicas, None)
        accepted = list(fake.accepted)
        by_id = Counter((c.body.get("channelData") or {}).get("csmDeliveryId") for c in accepted)
        per_thread = Counter(targets)
        busiest = max(per_thread.values())
        ideal = max((len(rows) - TENANT_CAP) / TENANT_CAP, greedy_span(busiest, TEAMS_THREAD))
        span = _span(accepted)
        return {
            "messages": len(rows),
            "threads": len(per_thread),
            "busiest": busiest,
            "achieved": len(accepted) / span if span else 0.0,
            "allowed": len(rows) / ideal if ideal else 0.0,
            "ratio": (ideal / span) if span else 0.0,
            "lost": len(rows) - run["statuses"].get("sent", 0),
            "duplicated": sum(n - 1 for n in by_id.values()),
            "throttled_429": fake.throttled,
            "wall_s": run["wall_s"],
        }
    finally:
        fake.stop()
        drop_database(url)


def _span(accepted: list[Any]) -> float:
    times = sorted(c.at for c in accepted)
    return times[-1] - times[0] if len(times) > 1 else 0.0


# -- demo seeding -------------------------------------------------------------------------------


def seed_figure(accounts: int, days: int) -> dict[str, float]:
    import tempfile

    from handlers.demo import seed_demo
    from storage.db import make_engine, upgrade

    out = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-seed-"))
    warm = f"sqlite:///{folder / 'warm.db'}"
    upgrade(warm)
    # Imports and first-use costs are paid here, not by whichever backend goes first.
    seed_demo(make_engine(warm), today=date(2026, 11, 23), accounts=5, days=7, snapshot_days=7)
    for backend in ("sqlite", "postgresql"):
        url = f"sqlite:///{folder / 'seed.db'}" if backend == "sqlite" else new_database()
        if backend == "sqlite":
            upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        seed_demo(engine, today=date(2026, 11, 23), accounts=accounts, days=days, snapshot_days=7)
        out[backend] = time.perf_counter() - started
        engine.dispose()
        if backend == "postgresql":
            drop_database(url)
    return out


# -- main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="every 4th message of the day (default)")
    size.add_argument("--full", action="store_true", help="the whole day of 10,000 accounts")
    parser.add_argument("--only", choices=("slack", "teams", "seed"), help="one figure only")
    parser.add_argument("--every", type=int, help="every K-th message of the day (overrides)")
    parser.add_argument("--rows", type=int, help="only the first N messages of the sample")
    parser.add_argument(
        "--figures",
        choices=("both", "baseline", "faults"),
        default="both",
        help="which of the two runs per platform (a quicker experiment)",
    )
    args = parser.parse_args()
    every = args.every or (1 if args.full else 4)
    ok = True
    if args.only in (None, "seed"):
        accounts = 2000 if args.full else 300
        seed = seed_figure(accounts, 365)
        ratio = seed["postgresql"] / seed["sqlite"]
        print(
            f"demo seed, {accounts} accounts x 365 days: SQLite {seed['sqlite']:.1f}s "
            f"({seed['sqlite'] / accounts * 1000:.1f} ms/account), PostgreSQL "
            f"{seed['postgresql']:.1f}s ({seed['postgresql'] / accounts * 1000:.1f} ms/account) "
            f"= {ratio:.2f}x SQLite (target <= 2x)",
            flush=True,
        )
        ok &= ratio <= 2.0
    if args.only in (None, "slack", "teams"):
        day = day_outbox()
        rows = sample(day, every)[: args.rows]
        print(f"the day's outbox: {len(day):,} deliveries; this run: {len(rows):,}", flush=True)
    if args.only in (None, "slack"):
        skip = {"messages": 0, "ratio": 1.0, "lost": 0, "duplicated": 0}
        base = slack_figure(rows, replicas=1, faults=False) if args.figures != "faults" else skip
        fig = slack_figure(rows, replicas=2, faults=True) if args.figures != "baseline" else skip
        for label, f in (
            ("baseline, 1 replica, no faults", base),
            ("2 replicas, 3% dropped answers, kill -9 of one", fig),
        ):
            if not f["messages"]:
                continue
            print(
                f"slack [{label}]: {f['messages']:,} messages to {f['channels']:,} channels "
                f"(busiest {f['busiest']}): {f['achieved']:.2f} msg/s of {f['allowed']:.2f} allowed "
                f"= {f['ratio'] * 100:.1f}% (target >= 90%); lost {f['lost']}, duplicated "
                f"{f['duplicated']}, 429s {f['rejected_429']}, answers dropped {f['dropped']}, "
                f"lookups {f['lookups']}, replica killed: {f['killed']}; {f['wall_s']:.0f}s wall",
                flush=True,
            )
            gaps = f["busiest_gaps"]
            if gaps:
                print(
                    f"  busiest channel, seconds between its posts: mean {sum(gaps) / len(gaps):.3f}"
                    f", median {_pct(gaps, 50):.3f}, p90 {_pct(gaps, 90):.3f}, max {max(gaps):.3f}"
                    f"; gaps > 1.2 s: {sum(g > 1.2 for g in gaps)} of {len(gaps)}",
                    flush=True,
                )
        ok &= fig["ratio"] >= 0.9 and fig["lost"] == 0 and fig["duplicated"] == 0
        ok &= base["lost"] == 0 and base["duplicated"] == 0
    if args.only in (None, "teams"):
        base = teams_figure(rows, replicas=1)
        fig = teams_figure(rows, replicas=2)
        for label, f in (("baseline, 1 replica", base), ("2 replicas", fig)):
            print(
                f"teams [{label}]: {f['messages']:,} messages to {f['threads']:,} threads "
                f"(busiest {f['busiest']}): {f['achieved']:.2f} msg/s of {f['allowed']:.2f} allowed "
                f"= {f['ratio'] * 100:.1f}% (target >= 90%); lost {f['lost']}, duplicated "
                f"{f['duplicated']}, 429s {f['throttled_429']}; {f['wall_s']:.0f}s wall",
                flush=True,
            )
        ok &= fig["ratio"] >= 0.9 and fig["lost"] == 0 and fig["duplicated"] == 0
    print("PASS" if ok else "FAIL: a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--replica":
        replica(*sys.argv[2:6])
        sys.exit(0)
    sys.exit(main())
