"""Benchmark: drawing each chart and building a QBR pack, next to reading the same data from the database.

Run with `.venv/bin/python bench/bench_charts.py [--repeat 15]`. The demo portfolio (60 accounts,
a year of readings, 90 days of health snapshots) is built once under bench/.cache/. For each chart
it times, in the same run:
  1. the read: assembling the chart's spec from the database (handlers/charts.py), the baseline;
  2. the drawing: charts.render.render(spec) with nothing cached (the PNG a chat gets);
  3. the cached path: the same spec through charts.cache.render_cached once it has been drawn.
For the QBR pack it times the read (the outline: every query the deck needs) and the full pack
(outline, three charts drawn at deck resolution with a cold cache, the .pptx written).
Targets (issue 13): a chart <= 150 ms to draw, a full pack <= 2 s (medians).
"""

from __future__ import annotations

import argparse
import fcntl
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = ROOT / "bench" / ".cache"
TODAY = date(2026, 11, 23)
CHART_TARGET_MS = 150.0
PACK_TARGET_MS = 2000.0


def demo_db() -> Path:
    """The 60-account demo with 90 days of snapshots, built once per generator version."""
    from handlers.demo import seed_demo
    from storage.db import make_engine, upgrade
    from storage.demo import GENERATOR_VERSION

    CACHE.mkdir(parents=True, exist_ok=True)
    path, stamp = CACHE / "charts-demo.db", CACHE / "charts-demo.version"
    key = f"generator={GENERATOR_VERSION} accounts=60 snapshots=90 today={TODAY}"
    with (CACHE / "charts-demo.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path.exists() and stamp.exists() and stamp.read_text() == key):
            path.unlink(missing_ok=True)
            upgrade(f"sqlite:///{path}")
            engine = make_engine(f"sqlite:///{path}")
            seed_demo(engine, today=TODAY, accounts=60, snapshot_days=90)
            engine.dispose()
            stamp.write_text(key)
        upgrade(f"sqlite:///{path}")
    return path


def timed(work: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Milliseconds of each run (after one warm-up run), and the last result."""
    result = work()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    from sqlmodel import select

    from bot.config import Settings
    from bot.container import Container
    from charts.cache import ChartCache, render_cached
    from charts.render import render
    from handlers import charts as chart_data
    from handlers.context import Actor, ChatContext
    from handlers.health import health_context
    from handlers.portfolio import portfolio_rows, upcoming_renewals
    from handlers.qbr_pack import build_outline, build_pack
    from storage.models import CSM, Account

    db = demo_db()
    container = Container(
        settings=Settings(database_url=f"sqlite:///{db}", today=TODAY.isoformat())
    )
    models = container.health_models
    with container.session() as session:
        dana = session.exec(select(CSM).where(CSM.email == "dana@example.com")).one()
        alex = session.exec(select(CSM).where(CSM.email == "alex@example.com")).one()
        acme_id = session.exec(select(Account.id).where(Account.name == "Acme Corp")).one()
    as_dana = ChatContext("console", Actor(dana.id, dana.name, dana.email, "csm"), TODAY)
    as_alex = ChatContext("console", Actor(alex.id, alex.name, alex.email, "manager"), TODAY)

    def read(assemble: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with container.session() as session:
                return assemble(session)

        return run

    def trend(session: Any) -> Any:
        account = session.get(Account, acme_id)
        return chart_data.health_trend_spec(session, account, models=models, today=TODAY)

    def indicators(session: Any) -> Any:
        account = session.get(Account, acme_id)
        health = health_context(session, account, models=models, today=TODAY)
        summary = {"id": account.id, "name": account.name}
        return chart_data.indicators_spec(summary, health, models.for_segment(account.segment))

    def team_map(session: Any) -> Any:
        scope, rows = portfolio_rows(session, ctx=as_alex, owner="team")
        return chart_data.health_map_spec(
            rows, scope=scope, today=TODAY, health_split=models.default.bands.green_min
        )

    def plan(session: Any) -> Any:
        account = session.get(Account, acme_id)
        return chart_data.milestone_plan_specs(session, account, today=TODAY, limit=1)[0]

    def renewals(session: Any) -> Any:
        reply = upcoming_renewals(session, ctx=as_alex, days=90)
        return chart_data.renewals_spec(reply.context, today=TODAY)

    rows = []
    print(f"demo portfolio {db.name}: 60 accounts; {args.repeat} timed runs each, medians (p95)")
    print(f"{'chart':<32} {'read (DB)':>14} {'draw':>16} {'cached':>10} {'PNG':>8}  target")
    failed = False
    for name, assemble in (
        ("health over time (Acme)", trend),
        ("indicators (Acme)", indicators),
        ("health map (manager's team)", team_map),
        ("milestone plan (Acme, hurdler)", plan),
        ("renewals ahead (90 days)", renewals),
    ):
        read_ms, spec = timed(read(assemble), args.repeat)
        draw_ms, png = timed(lambda spec=spec: render(spec), args.repeat)
        cache = ChartCache()
        render_cached(spec, cache=cache)
        cached_ms, _ = timed(
            lambda spec=spec, cache=cache: render_cached(spec, cache=cache), args.repeat
        )
        draw = statistics.median(draw_ms)
        ok = draw <= CHART_TARGET_MS
        failed |= not ok
        rows.append((name, draw))
        print(
            f"{name:<32} {statistics.median(read_ms):7.1f} ({p95(read_ms):4.0f}) ms"
            f" {draw:8.1f} ({p95(draw_ms):4.0f}) ms {statistics.median(cached_ms):7.2f} ms"
            f" {len(png) / 1024:5.0f} KB  ≤{CHART_TARGET_MS:.0f} ms {'ok' if ok else 'MISSED'}"
        )

    def outline() -> Any:
        with container.session() as session:
            account = session.get(Account, acme_id)
            return build_outline(session, account, ctx=as_dana, models=models)

    def pack() -> Any:
        from charts import cache as chart_cache

        chart_cache.default_cache().clear()  # every chart drawn again: the pack's worst case
        with container.session() as session:
            return build_pack(session, ctx=as_dana, models=models, account_id=acme_id)

    pack_repeat = max(3, args.repeat // 3)
    outline_ms, built = timed(outline, pack_repeat)
    pack_ms, made = timed(pack, pack_repeat)
    total = statistics.median(pack_ms)
    ok = total <= PACK_TARGET_MS
    failed |= not ok
    print(
        f"{'QBR pack (Acme, executive)':<32} {statistics.median(outline_ms):7.1f} ({p95(outline_ms):4.0f}) ms"
        f" {total:8.1f} ({p95(pack_ms):4.0f}) ms {'':>10} {len(made.content) / 1024:5.0f} KB"
        f"  ≤{PACK_TARGET_MS:.0f} ms {'ok' if ok else 'MISSED'}"
    )
    print(
        f"  pack: {len(built.slides) + 1} slides, {len(built.charts())} charts; the read column is "
        "the outline (every query the deck needs), the draw column the whole .pptx"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
