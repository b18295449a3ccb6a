"""APScheduler job functions: importable, top level, taking a runtime key and primitive arguments."""

from __future__ import annotations

import logging
from datetime import date

from scheduler.runner import runtime
from scheduler.work import fill_outbox, recompute_accounts, recompute_if_due

logger = logging.getLogger(__name__)


def tick(key: str) -> None:
    """Every minute: the leader queues whatever is due now (catching up on missed minutes)."""
    rt = runtime(key)
    if not rt.leadership.check():
        return
    with rt.lock:
        fill_outbox(
            rt.container.engine,
            at=rt.clock(),
            config=rt.config,
            models=rt.container.health_models,
            # The nightly job owns recompute; the tick only catches up if that one was missed.
            recompute=True,
        )


def dispatch(key: str) -> None:
    """Every few seconds, on every replica: send what is due (claims keep replicas apart)."""
    rt = runtime(key)
    report = rt.dispatcher.dispatch_due()
    if report.sent or report.failed:
        logger.info("dispatched: %d sent, %d failed", report.sent, report.failed)


def nightly_recompute(key: str) -> None:
    rt = runtime(key)
    if not rt.leadership.check():
        return
    with rt.lock:
        recompute_if_due(
            rt.container.engine,
            at=rt.clock(),
            config=rt.config,
            models=rt.container.health_models,
        )


def recompute_accounts_job(key: str, account_ids: list[int], as_of: str) -> None:
    """After an import or ingest: today's health of the touched accounts."""
    rt = runtime(key)
    count = recompute_accounts(
        rt.container.engine,
        as_of=date.fromisoformat(as_of),
        models=rt.container.health_models,
        account_ids=account_ids,
    )
    logger.info("recomputed %d accounts after an import", count)


def sync_sources(key: str) -> None:
    """On the leader, every CSM_SYNC_INTERVAL_MINUTES: pull the sources of CSM_SYNC_CONFIG."""
    from handlers.sync import run_sync
    from storage.sync.config import SyncConfigError

    rt = runtime(key)
    if rt.sync is None or not rt.leadership.check():
        return
    path = rt.sync.config
    try:
        summary = run_sync(
            rt.container.engine,
            path,
            models=rt.container.health_models,
            today=rt.clock().date(),
        )
    except SyncConfigError as exc:
        logger.error("sync skipped: %s", exc)
        return
    for report in summary.reports:
        if report.ok:
            logger.info(
                "sync %s: %d changed, %d refused", report.name, report.changed, len(report.refused)
            )
        else:
            logger.error("sync %s failed: %s", report.name, report.error)
