"""Scheduler leadership: a PostgreSQL advisory lock held on its own connection; SQLite's one process leads."""

from __future__ import annotations

import logging
import zlib

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

logger = logging.getLogger(__name__)

# A fixed 64-bit key: every replica of this app competes for the same lock.
LOCK_KEY = zlib.crc32(b"csm-assistant:scheduler-leader")


class Leadership:
    """Who runs the scheduled jobs.

    On PostgreSQL the leader holds ``pg_try_advisory_lock`` on a dedicated connection. The lock
    lives as long as that session: when the leader process dies or its connection drops, the
    server releases it and the next replica's ``check()`` takes over. Dispatching does not need
    leadership (rows are claimed with SKIP LOCKED), only filling the outbox does.
    """

    def __init__(self, engine: Engine, key: int = LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: Connection | None = None
        self.is_leader = engine.dialect.name != "postgresql"

    def check(self) -> bool:
        """Keep or try to take leadership; returns whether this process leads now."""
        if self.engine.dialect.name != "postgresql":
            return True
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:  # the connection is gone, and the lock with it
                logger.warning("lost the scheduler leader connection; trying to lead again")
                self._drop()
        conn = self.engine.connect()
        try:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            )
            # Session-level lock: commit so the connection sits idle outside a transaction.
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
            self.is_leader = True
            logger.info("this process leads the scheduler")
        else:
            conn.close()
            self.is_leader = False
        return got

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            except Exception:
                logger.debug("leader lock release failed; closing the connection releases it")
            self._drop()
        self.is_leader = self.engine.dialect.name != "postgresql"

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.is_leader = False
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:
                logger.debug("closing a dead leader connection failed", exc_info=True)
