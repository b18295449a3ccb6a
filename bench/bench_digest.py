"""Notification volume: a month of hourly runs on the 2,000-account demo, the code before the digest
(from git) next to today's, on copies of the same database; per CSM and for the risk channel."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ACCOUNTS = 2_000  # six CSMs with about 330 accounts each
START = "2026-10-25T00:00:00"  # thirty days up to the demo's today, every hour
DAYS = 30
# Main before "a digest, not a firehose": every alert, reminder and QBR prep its own post.
BASELINE = os.environ.get("BENCH_DIGEST_BASELINE", "718001b")
# Local days wholly inside the simulated window in every zone of the demo.
FIRST_DAY, LAST_DAY = date(2026, 10, 26), date(2026, 11, 22)
NIGHT = (21, 8)  # 21:00 to 08:00 local
MAX_INTERRUPTIONS = 5


def baseline_tree(into: Path) -> Path | None:
    """The baseline's source tree (git archive), or None when there is no git history here."""
    tree = into / "baseline"
    tree.mkdir()
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BASELINE],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"baseline {BASELINE} unavailable ({exc}); measuring today's code only")
        return None
    return tree


def simulate(tree: Path, db: Path, out: Path, today: date) -> dict:  # type: ignore[type-arg]
    env = {**os.environ, "PYTHONPATH": str(tree), "CSM_DATABASE_URL": f"sqlite:///{db}"}
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "_notify_month.py"),
            "--db",
            str(db),
            "--out",
            str(out),
            "--start",
            START,
            "--days",
            str(DAYS),
            "--today",
            today.isoformat(),
        ],
        cwd=tree,
        env=env,
        check=True,
    )
    return json.loads(out.read_text())


def _median_max(values: list[int]) -> str:
    return f"{statistics.median(values):g} / {max(values)}" if values else "—"


def figures(posts: list[list[str]], people: dict[int, str]) -> dict[str, object]:
    """DMs per CSM per local day (all, and interrupting: anything but the digest), risk-channel and
    account-channel posts per day, and DMs at night in the CSM's zone."""
    per_day: Counter[tuple[int, date]] = Counter()
    interrupting: Counter[tuple[int, date]] = Counter()
    night = 0
    risk: Counter[date] = Counter()
    accounts: Counter[date] = Counter()
    for at_text, target, template in posts:
        at = datetime.fromisoformat(at_text)
        if target == "risk":
            risk[at.date()] += 1
        elif target.startswith("account:"):
            accounts[at.date()] += 1
        elif target.startswith("csm:") and int(target[4:]) in people:
            csm_id = int(target[4:])
            local = at.astimezone(ZoneInfo(people[csm_id]))
            if local.hour >= NIGHT[0] or local.hour < NIGHT[1]:
                night += 1
            per_day[(csm_id, local.date())] += 1
            if template != "daily_digest":
                interrupting[(csm_id, local.date())] += 1
    days = [FIRST_DAY + timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days + 1)]
    weekdays = [d for d in days if d.weekday() < 5]
    utc_days = days

    def spread(counts: Counter, keys: list) -> str:  # type: ignore[type-arg]
        return _median_max([counts[k] for k in keys])

    csm_days = [(c, d) for c in people for d in weekdays]
    return {
        "dms": spread(per_day, csm_days),
        "interrupting": spread(interrupting, csm_days),
        "interrupting_max": max(interrupting[k] for k in csm_days),
        "weekend_dms": spread(per_day, [(c, d) for c in people for d in days if d.weekday() >= 5]),
        "night": night,
        "risk": spread(risk, utc_days),
        "accounts": spread(accounts, utc_days),
        "total": len(posts),
    }


def main() -> int:
    from bench._portfolio import TODAY, portfolio_db
    from storage.db import make_engine

    db = portfolio_db(ACCOUNTS, 90, snapshot_days=45)
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, timezone FROM csm WHERE role = 'csm'").all()
        owned = conn.exec_driver_sql(
            "SELECT owner_id, count(*) FROM account WHERE churned_on IS NULL GROUP BY owner_id"
        ).all()
    engine.dispose()
    people = {int(i): str(tz) for i, tz in rows}
    sizes = sorted(n for o, n in owned if o in people)
    print(
        f"portfolio: {ACCOUNTS:,} accounts, {len(people)} CSMs ({sizes[0]}–{sizes[-1]} live "
        f"accounts each); {DAYS} days of hourly runs from {START}Z; weekdays "
        f"{FIRST_DAY}..{LAST_DAY} local; night = {NIGHT[0]}:00–0{NIGHT[1]}:00 in the CSM's zone"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-digest-"))
    try:
        results: dict[str, dict] = {}  # type: ignore[type-arg]
        trees = {"before": baseline_tree(work), "after": ROOT}
        for label, tree in trees.items():
            if tree is None:
                continue
            copy = work / f"{label}.db"
            shutil.copyfile(db, copy)
            run = simulate(tree, copy, work / f"{label}.json", TODAY)
            results[label] = {**figures(run["posts"], people), "seconds": run["seconds"]}
        print(f"{'':34}{'before (' + BASELINE + ')':>22}{'after':>14}")
        rows_out = [
            ("DMs per CSM per weekday, med / max", "dms"),
            ("  of which interrupting, med / max", "interrupting"),
            ("DMs per CSM per weekend day", "weekend_dms"),
            ("DMs at night in the CSM's zone", "night"),
            ("risk-channel posts per day", "risk"),
            ("account-channel posts per day", "accounts"),
            ("posts in the month", "total"),
        ]
        for title, key in rows_out:
            cells = [str(results[k][key]) if k in results else "—" for k in ("before", "after")]
            print(f"{title:34}{cells[0]:>22}{cells[1]:>14}")
        secs = [f"{results[k]['seconds']:.0f}s" if k in results else "—" for k in results]
        print(
            f"{'simulation time (shared machine)':34}"
            + "".join(f"{s:>22}" for s in secs[:1])
            + "".join(f"{s:>14}" for s in secs[1:])
        )
        after = results["after"]
        ok = after["interrupting_max"] <= MAX_INTERRUPTIONS and after["night"] == 0
        print("PASS" if ok else "FAIL: more than 5 interruptions on a day, or a post at night")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
