"""Timestamps of a replica's dispatcher steps (bench_delivery.py with CSM_BENCH_TRACE=path)."""

from __future__ import annotations

import atexit
import functools
import json
import threading
import time
from typing import Any

WATCH = "C0RISK"


def install(dispatcher: Any, path: str) -> None:
    events: list[dict[str, Any]] = []
    local = threading.local()
    out = open(path, "w")  # noqa: SIM115  # written as it goes: a killed replica leaves its part
    lock = threading.Lock()

    def rec(what: str, **extra: Any) -> None:
        event = {"t": time.time(), "w": threading.current_thread().name, "e": what, **extra}
        events.append(event)
        if len(events) > 1:
            flush(events[-2])

    def flush(event: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(event) + "\n")
            out.flush()

    def wrap(obj: Any, name: str, watch_only: bool = True) -> None:
        original = getattr(obj, name)

        @functools.wraps(original)
        def traced(*args: Any, **kwargs: Any) -> Any:
            item = getattr(local, "item", None)
            watched = item is not None and item.target == WATCH
            if watch_only and not watched:
                return original(*args, **kwargs)
            rec(name + ">", id=getattr(item, "id", None))
            try:
                out = original(*args, **kwargs)
            finally:
                rec(name + "<", id=getattr(item, "id", None))
            if name == "reserve":
                events[-1]["booked"] = out[1]
                events[-1]["slot"] = out[0].timestamp()
                events[-1]["prio"] = len(args[0]) > 1 and args[0][1][1][0].count == 10
            return out

        setattr(obj, name, traced)

    take = dispatcher._take

    def traced_take(active: Any) -> Any:
        local.item = None
        rec("take>")
        item = take(active)
        local.item = item
        if item is not None:
            rec(
                "take<",
                id=item.id,
                target=item.target,
                hand_same=len(dispatcher._hand.get(dispatcher._key(item), ())),
                held=dispatcher._held,
            )
        return item

    dispatcher._take = traced_take
    for name in ("_compose", "_mark_attempt", "_finish_sent", "_renew_leases", "_wait_until"):
        wrap(dispatcher, name)
    wrap(dispatcher.pacer, "reserve")
    for name in ("_claim", "_release_rows"):
        wrap(dispatcher, name, watch_only=False)
    prepare = dispatcher._prepare

    def traced_prepare(notifier: Any, item: Any, reply: Any) -> Any:
        post = prepare(notifier, item, reply)
        if item.target != WATCH:
            return post

        def traced_post() -> Any:
            rec("post>", id=item.id)
            try:
                return post()
            finally:
                rec("post<", id=item.id)

        return traced_post

    dispatcher._prepare = traced_prepare

    atexit.register(lambda: flush(events[-1]) if events else None)
