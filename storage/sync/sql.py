"""A SQL source: any SQLAlchemy URL (a warehouse, a read replica), one query per kind."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

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
        """The source's engine; a URL this install cannot use is this source's failure, said
        without the URL (it holds a password)."""
        try:
            url = normalise_url(self.url)
            backend = make_url(url).get_backend_name()
            args = {"connect_timeout": int(self.timeout)} if backend == "postgresql" else {}
            return create_engine(url, connect_args=args, pool_pre_ping=True)
        except NoSuchModuleError:
            raise SourceError(
                f"`url` names a kind of database ({backend}) this install has no SQLAlchemy "
                "dialect for: add its package to the environment (docs/sync.md)"
            ) from None
        except ArgumentError:
            raise SourceError(
                "`url` is not a database URL (dialect://user:password@host/database)"
            ) from None
        except ModuleNotFoundError as exc:
            raise SourceError(
                f"`url` needs the Python driver {exc.name!r}, which is not installed: add it to "
                "the environment, or name an installed driver in the URL (dialect+driver://)"
            ) from None

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
