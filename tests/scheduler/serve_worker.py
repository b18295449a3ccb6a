"""`csm-bot serve` in a child process for the SIGTERM test: its scheduler posts slowly to a file."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot import scheduling
from bot.config import Settings
from bot.container import Container
from bot.server import serve
from handlers.reply import Reply
from scheduler.config import SchedulerConfig


class SlowFileNotifier:
    """A platform that takes 0.3 s per post; each post is one line of the log."""

    platform = "console"

    def __init__(self, path: str) -> None:
        self.path = path

    def send(self, target: str, reply: Reply) -> str:
        time.sleep(0.3)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{target}\t{reply.text}\n")
        return "ok"


def main() -> None:
    log = os.environ["POSTS_LOG"]
    config = SchedulerConfig(
        platforms=("console",),
        routes={k: () for k in SchedulerConfig().routes},  # nothing new is queued
        dispatch_seconds=1,
        dispatch_concurrency=2,
    )
    scheduling.config_for = lambda _container: config  # type: ignore[assignment]
    scheduling.build_notifiers = lambda _c, _cfg: {"console": SlowFileNotifier(log)}  # type: ignore[assignment]
    container = Container(settings=Settings(database_url=os.environ["CSM_DATABASE_URL"]))
    serve(container, host="127.0.0.1", port=0)


if __name__ == "__main__":
    main()
