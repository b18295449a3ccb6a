"""Builds (once) and caches the 10,000-account benchmark database under bench/.cache/."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from datetime import date
from pathlib import Path

from handlers.demo import seed_demo
from storage.db import make_engine, upgrade
from storage.demo import GENERATOR_VERSION

logger = logging.getLogger(__name__)

CACHE = Path(__file__).resolve().parent / ".cache"
TODAY = date(2026, 11, 23)
SEED = 7


def portfolio_db(
    accounts: int = 10_000, days: int = 90, *, snapshot_days: int = 0, rebuild: bool = False
) -> Path:
    """Path of a SQLite portfolio of ``accounts`` x 7 indicators x ``days`` daily readings, with
    ``snapshot_days`` days of health snapshots up to TODAY.

    Rebuilt when the generator version or the parameters change; a version file next to the
    database records what it holds. Several benchmarks share it and may start at once, so the
    build holds a lock and writes to a private file that is renamed into place when complete.
    Migrations added since the build are applied on every call.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    name = f"portfolio-{accounts // 1000}k" if accounts % 1000 == 0 else f"portfolio-{accounts}"
    if snapshot_days:
        name += f"-s{snapshot_days}"
    path = CACHE / f"{name}.db"
    stamp = CACHE / f"{name}.version"
    key = f"generator={GENERATOR_VERSION} accounts={accounts} days={days} seed={SEED} today={TODAY}"
    if snapshot_days:
        key += f" snapshots={snapshot_days}"

    def current() -> bool:
        return path.exists() and stamp.exists() and stamp.read_text().strip() == key

    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
        if rebuild or not current():
            _build(path, stamp, key, accounts, days, snapshot_days)
        upgrade(f"sqlite:///{path}")
    return path


def _build(
    path: Path, stamp: Path, key: str, accounts: int, days: int, snapshot_days: int = 0
) -> None:
    tmp = path.with_name(f"{path.stem}.building-{os.getpid()}.db")
    url = f"sqlite:///{tmp}"
    started = time.perf_counter()
    upgrade(url)
    engine = make_engine(url)
    summary = seed_demo(
        engine, today=TODAY, accounts=accounts, days=days, seed=SEED, snapshot_days=snapshot_days
    )
    with engine.begin() as conn:
        # Fold the WAL back in, so the cached file is self-contained and can be renamed.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    stamp.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, path)
    stamp.write_text(key + "\n")
    logger.info(
        "built %s: %d readings in %.1fs", path.name, summary.readings, time.perf_counter() - started
    )
