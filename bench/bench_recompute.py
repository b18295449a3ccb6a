"""Benchmark: recompute health for 10,000 accounts x 7 indicators x 90 days on SQLite vs a plain read.

Run with `.venv/bin/python bench/bench_recompute.py`. The first run builds the portfolio database
(cached in bench/.cache/); every run then times, on that database:
  1. the plain SQL read of exactly the reading rows recompute needs, fetched fully by the driver,
  2. recompute_health for every account, in a fresh subprocess so its peak RSS is its own,
     right after 1.; rounds of 1. + 2. are repeated (--repeat) and the medians checked,
  3. `csm-bot ask "/health acme"` end to end (process start-up included), several times,
     interleaved with `python -c pass` and `python -c "import sqlalchemy"` as baselines; it runs
     on a copy of the project byte-compiled once beforehand (as a wheel install ships it), and the
     median is checked; the same command on a copy without bytecode is printed alongside.
Targets (issue 2): recompute <= 15 s and <= 2x the plain read, peak memory < 1 GiB, ask < 1 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 15.0
TARGET_RATIO = 2.0
TARGET_RSS_MB = 1024.0
TARGET_ASK_SECONDS = 1.0


def _plain_read(url: str, as_of: date) -> tuple[int, float, float]:
    """The same SELECTs recompute issues, every row fetched by the driver in one go."""
    from domain.health_model import load_health_models
    from handlers.recompute import _text, readings_queries
    from storage.db import make_engine

    queries = readings_queries(load_health_models(None), as_of, as_of)
    engine = make_engine(url)
    count = 0
    # Recompute runs with the cyclic garbage collector paused; so does its baseline, which would
    # otherwise pay for the collector walking the 1.5 million rows it holds (up to ~7%).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with engine.connect() as conn:
            started = time.perf_counter()
            cpu_started = time.process_time()
            for sql, params in queries:
                result = conn.execute(_text(sql, params), params)
                rows = result.cursor.fetchall()  # raw driver tuples: the cheapest way to read them
                count += len(rows)
                del rows
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
    finally:
        if was_enabled:
            gc.enable()
    engine.dispose()
    return count, seconds, cpu


def _literal_read(url: str, as_of: date) -> tuple[int, float]:
    """The issue's reference form: one cut-off for all indicators (the longest look-back)."""
    from datetime import timedelta

    from domain.health_model import load_health_models
    from handlers.recompute import lookback_days
    from storage.db import make_engine

    cutoff = as_of - timedelta(days=max(lookback_days(load_health_models(None)).values()))
    engine = make_engine(url)
    with engine.connect() as conn:
        started = time.perf_counter()
        result = conn.exec_driver_sql(
            "SELECT account_id, indicator_key, day, value FROM indicator_reading "
            "WHERE day > ? ORDER BY account_id",
            (cutoff.isoformat(),),
        )
        count = len(result.cursor.fetchall())
        seconds = time.perf_counter() - started
    engine.dispose()
    return count, seconds


def _peak_rss_mb() -> float:
    """This process's peak resident memory, in MB.

    VmHWM restarts at exec; getrusage's ru_maxrss would carry over the parent's peak from the
    fork (the parent just held millions of rows from the plain read), so it is the fallback.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(url: str, as_of: str) -> None:
    """Subprocess body: recompute everything and report time and memory as one JSON line."""
    from domain.health_model import load_health_models
    from handlers.recompute import recompute_health
    from storage.db import make_engine

    models = load_health_models(None)
    engine = make_engine(url)
    before = _peak_rss_mb()
    cpu_started = time.process_time()
    summary = recompute_health(engine, as_of=date.fromisoformat(as_of), models=models)
    cpu = time.process_time() - cpu_started
    peak = _peak_rss_mb()
    print(
        json.dumps(
            {
                "accounts": summary.accounts,
                "snapshots": summary.snapshots,
                "insufficient": summary.insufficient,
                "seconds": summary.seconds,
                "cpu": cpu,
                "rss_before_mb": before,
                "peak_rss_mb": peak,
            }
        )
    )


def _recompute(url: str, as_of: date) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, as_of.isoformat()],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _csm_bot() -> Path | None:
    exe = Path(sys.executable).parent / "csm-bot"
    if exe.exists():
        return exe
    found = shutil.which("csm-bot")
    return Path(found) if found else None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wall(argv: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall time and CPU time (user + system) of one command."""
    cpu_started = _children_cpu()
    started = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, _children_cpu() - cpu_started, out


# The project's own packages (what a wheel installs); the first five hold Python code.
PROJECT_PACKAGES = ("bot", "handlers", "domain", "storage", "scheduler", "templates")
CODE_PACKAGES = PROJECT_PACKAGES[:5]
ASK = "csm-bot ask '/health acme'"
ASK_UNCOMPILED = "  same, project not byte-compiled"


def _project_copy(dest: Path, *, compiled: bool) -> Path:
    """A copy of the project's packages, without bytecode or byte-compiled once like a wheel install.

    The working tree is an editable install, and this sandbox sets PYTHONDONTWRITEBYTECODE=1: every
    run would compile bot/, handlers/ ... again, which no deployed install does (a wheel ships .pyc
    files, pip compiles them at install). Each copy goes first on PYTHONPATH, so `csm-bot` imports
    it instead of the tree; third-party packages are used as installed (already compiled).
    """
    for package in PROJECT_PACKAGES:
        shutil.copytree(
            ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    if compiled:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", *(str(dest / p) for p in CODE_PACKAGES)],
            check=True,
        )
    return dest


def _ask(url: str, as_of: date, runs: int) -> tuple[dict[str, list[float]] | None, str]:
    """Wall times of `csm-bot ask "/health acme"` on the benchmark database, `runs` times,
    interleaved with two baselines of the same interpreter: `python -c pass` (bare start-up)
    and `python -c "import sqlalchemy"` (the one library no database answer can do without).
    Interleaving keeps a burst of load on the (shared) machine from landing on one of them.

    The checked figure runs the project byte-compiled once beforehand (python -m compileall), as a
    deployed install is; the same command on a copy without bytecode is timed alongside.
    """
    exe = _csm_bot()
    if exe is None:
        return None, "csm-bot is not installed"
    env = {
        **os.environ,
        "CSM_DATABASE_URL": url,
        "CSM_TODAY": as_of.isoformat(),
        "PYTHONDONTWRITEBYTECODE": "1",  # the uncompiled copy must stay uncompiled
    }
    with tempfile.TemporaryDirectory(prefix="bench-ask-") as tmp:
        compiled = _project_copy(Path(tmp) / "compiled", compiled=True)
        uncompiled = _project_copy(Path(tmp) / "uncompiled", compiled=False)

        def on_path(copy: Path) -> dict[str, str]:
            return {
                **env,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(copy), env.get("PYTHONPATH")])),
            }

        commands = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            "python -c 'import sqlalchemy'": ([sys.executable, "-c", "import sqlalchemy"], env),
            ASK: ([str(exe), "ask", "/health acme"], on_path(compiled)),
            ASK_UNCOMPILED: ([str(exe), "ask", "/health acme"], on_path(uncompiled)),
        }
        # The copies are what runs, not the working tree.
        probe = [sys.executable, "-P", "-c", "import bot; print(bot.__file__)"]
        for copy in (compiled, uncompiled):
            where = subprocess.run(probe, env=on_path(copy), capture_output=True, text=True)
            if not where.stdout.strip().startswith(str(copy)):
                return None, f"the project copy is not imported first: {where.stdout.strip()}"
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        detail = ""
        for n in range(runs + 1):  # the first round warms the page cache and is not counted
            for name, (argv, run_env) in commands.items():
                seconds, cpu, out = _wall(argv, run_env)
                if out.returncode != 0:
                    return (
                        None,
                        f"{name}: exit {out.returncode}: {(out.stderr or out.stdout)[-300:]}",
                    )
                if n:
                    times[name].append(seconds)
                    cpus[name].append(cpu)
                if name == ASK:
                    detail = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
    return {**times, **{f"{name} [cpu]": values for name, values in cpus.items()}}, detail


def _spread(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.3f}s "
        f"(range {min(values):.3f}-{max(values):.3f}s, {len(values)} runs)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    parser.add_argument(
        "--literal-read",
        action="store_true",
        help="also time the one-cut-off read of every reading in the longest look-back",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of plain read + recompute (default 3)"
    )
    parser.add_argument(
        "--ask-runs", type=int, default=7, help="timed runs of the ask command (default 7)"
    )
    parser.add_argument("--child", nargs=2, metavar=("URL", "AS_OF"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _portfolio import TODAY, portfolio_db

    started = time.perf_counter()
    path = portfolio_db(args.accounts, args.days, rebuild=args.rebuild)
    built = time.perf_counter() - started
    url = f"sqlite:///{path}"
    size_mb = path.stat().st_size / 2**20
    print(f"database      {path.relative_to(ROOT)} ({size_mb:,.0f} MB, ready in {built:.1f}s)")

    # Read once untimed so both measurements start from the same warm page cache.
    _plain_read(url, TODAY)
    if args.literal_read:
        all_rows, all_s = _literal_read(url, TODAY)
        print(f"literal read  {all_rows:,} rows (one cut-off for every indicator) in {all_s:.2f}s")

    # Each round times the plain read and then recompute right after it, so a burst of load on
    # the (shared) machine tends to hit both; the checks use the medians over the rounds.
    reads: list[float] = []
    runs: list[dict] = []
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for n in range(1, args.repeat + 1):
        rows, read_s, read_cpu = _plain_read(url, TODAY)
        result = _recompute(url, TODAY)
        reads.append(read_s)
        runs.append(result)
        ratios.append(result["seconds"] / read_s)
        cpu_ratios.append(result["cpu"] / read_cpu)
        print(
            f"round {n}       plain read {rows:,} rows in {read_s:.2f}s ({read_cpu:.2f}s CPU); "
            f"recompute {result['accounts']:,} accounts, {result['snapshots']:,} snapshots "
            f"({result['insufficient']} insufficient) in {result['seconds']:.2f}s "
            f"({result['cpu']:.2f}s CPU): {ratios[-1]:.2f}x wall, {cpu_ratios[-1]:.2f}x CPU"
        )
    seconds = [r["seconds"] for r in runs]
    ratio = statistics.median(ratios)
    peak = max(r["peak_rss_mb"] for r in runs)
    print(f"plain read    {_spread(reads)} (the same statements recompute runs)")
    print(f"recompute     {_spread(seconds)}")
    print(
        f"ratio         median {ratio:.2f}x the plain read "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}x)"
    )
    # On a shared machine, CPU time is the steadier comparison: waiting for a core is not work.
    print(
        f"CPU ratio     median {statistics.median(cpu_ratios):.2f}x the plain read's CPU time "
        f"(range {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}x)"
    )
    print(
        f"peak RSS      {peak:.0f} MB at most "
        f"(process after imports: {runs[0]['rss_before_mb']:.0f} MB)"
    )
    asks, detail = _ask(url, TODAY, args.ask_runs)
    ask_s = None
    if asks is None:
        print(f"ask /health   not measured: {detail}")
    else:
        print(f"ask /health   wall time, process start-up included ({detail[:60]})")
        print(
            "              project byte-compiled once before timing (python -m compileall "
            f"{' '.join(CODE_PACKAGES)}), as a wheel install is; the check uses that figure"
        )
        for name, values in asks.items():
            print(f"  {name:<33} {_spread(values)}")
        ask_s = statistics.median(asks[ASK])

    checks = {
        f"recompute <= {TARGET_SECONDS:g}s (median)": statistics.median(seconds) <= TARGET_SECONDS,
        f"recompute <= {TARGET_RATIO:g}x plain read (median)": ratio <= TARGET_RATIO,
        "peak memory < 1 GiB": peak < TARGET_RSS_MB,
    }
    if ask_s is not None:
        checks[f"ask < {TARGET_ASK_SECONDS:g}s (median)"] = ask_s < TARGET_ASK_SECONDS
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
