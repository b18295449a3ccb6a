"""A SQL source: any SQLAlchemy URL (a warehouse, a read replica), one query per kind."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from storage.db import normalise_url
from storage.sync.base import Record, SourceError, first_line

logger = logging.getLogger(__name__)


@dataclass
class SqlSource:
    """Runs ``queries[kind]`` and takes each row as a record; the query names its columns as
    our import columns do (``SELECT crm_id AS external_id, ...``), so the mapping lives in SQL."""

    name: str
    url: str
    queries: Mapping[str, str]
    timeout: float = 30.0

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.queries)

    def _engine(self) -> Engine:
        url = normalise_url(self.url)
        args = {"connect_timeout": int(self.timeout)} if url.startswith("postgresql") else {}
        return create_engine(url, connect_args=args, pool_pre_ping=True)

    def fetch(self, kind: str) -> list[Record]:
        engine = self._engine()
        try:
            with engine.connect() as conn:
                result = conn.execute(text(self.queries[kind]))
                return [dict(row) for row in result.mappings()]
        except SQLAlchemyError as exc:
            detail = first_line(str(getattr(exc, "orig", None) or exc))
            raise SourceError(f"the {kind} query failed: {detail}") from exc
        finally:
            engine.dispose()
