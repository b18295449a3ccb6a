"""A month of hourly scheduler runs on one database, every post recorded (bench_digest.py runs it on
the code under test and on the baseline from git, each on its own copy of the same database)."""

from __future__ import annotations

import argparse
import inspect
import json
import time
from datetime import UTC, datetime, timedelta


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--days", type=int, required=True)
    parser.add_argument("--today", required=True)
    args = parser.parse_args()

    # Imported here, from whichever tree PYTHONPATH names: the baseline's or today's.
    from bot.config import Settings
    from bot.container import Container
    from scheduler.config import SchedulerConfig
    from scheduler.notifier import RecordingNotifier
    from scheduler.runner import run_once

    container = Container(settings=Settings(database_url=f"sqlite:///{args.db}", today=args.today))
    config = SchedulerConfig(platforms=("console",))
    # A simulated month is a backfill by definition (where run_once knows the word).
    extra = {"backfill": True} if "backfill" in inspect.signature(run_once).parameters else {}
    rec = RecordingNotifier()
    posts: list[list[str]] = []
    at = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    end = at + timedelta(days=args.days)
    started = time.perf_counter()
    while at < end:
        n = len(rec.sent)
        run_once(
            container,
            at,
            config=config,
            notifiers={"console": rec},
            recompute=False,
            sleep=lambda _s: None,
            **extra,
        )
        posts += [[at.isoformat(), s.target, s.reply.template] for s in rec.sent[n:]]
        at += timedelta(hours=1)
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump({"posts": posts, "seconds": time.perf_counter() - started}, out)


if __name__ == "__main__":
    main()
