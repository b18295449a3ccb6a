"""A scheduler replica for the two-process test: runs the same instants as its twin, logs what it posts."""

from __future__ import annotations

import time
from datetime import datetime
from multiprocessing.synchronize import Barrier

from handlers.reply import Reply


class FileNotifier:
    """Appends every post to this replica's own file (one line each), flushed at once."""

    platform = "console"

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name

    def send(self, target: str, reply: Reply) -> str:
        # Network-like time per post, so the two replicas' dispatching overlaps even when one
        # of them starts late on a loaded machine.
        time.sleep(0.02)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{target}\t{reply.template}\t{reply.text}\n")
        return f"{self.name}-{time.monotonic_ns()}"


def replica(url: str, instants: list[str], log_path: str, name: str, barrier: Barrier) -> None:
    from bot.config import Settings
    from bot.container import Container
    from scheduler.clock import system_clock
    from scheduler.config import SchedulerConfig
    from scheduler.leader import Leadership
    from scheduler.runner import run_once

    container = Container(settings=Settings(database_url=url, today="2026-11-23"))
    config = SchedulerConfig(platforms=("console",))
    leadership = Leadership(container.engine)
    notifier = FileNotifier(log_path, name)
    barrier.wait(timeout=60)
    for instant in instants:
        run_once(
            container,
            datetime.fromisoformat(instant),
            config=config,
            notifiers={"console": notifier},
            # Replicas share leases and pacing: they must share the wall clock too.
            clock=system_clock,
            sleep=lambda _s: None,
            leadership=leadership,
            dispatcher_options={"batch_size": 5, "worker_id": name},
        )
    leadership.release()
    container.engine.dispose()
