"""Run sync sources: fetch everything a source has, then write it through the import's checks in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.engine import Engine

from storage.csv_import import ImportFailed, ImportReport, RowError, import_records
from storage.models import utcnow
from storage.sync.base import SYNC_KINDS, Record, Source, SourceError
from storage.sync.history import record_run

logger = logging.getLogger(__name__)

# A report lists at most this many refused rows per source (the count says the rest).
MAX_REFUSED_SHOWN = 100


@dataclass
class SourceReport:
    """What one source's run changed and refused, or why it could not run."""

    name: str
    dry_run: bool
    imports: list[ImportReport] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "accounts 001xx: column 'arr': reason"
    error: str | None = None

    @property
    def refused_rows(self) -> int:
        return sum(len({e.row for e in r.refused}) for r in self.imports)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def account_ids(self) -> frozenset[int]:
        return frozenset(i for r in self.imports for i in r.account_ids)

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.imports)

    def lines(self) -> list[str]:
        head = f"{self.name}:" + (" (dry run: nothing written)" if self.dry_run else "")
        out = [head]
        if self.error:
            out.append(f"  FAILED: {self.error}")
        out += [f"  {r.summary().replace('; dry run: nothing written', '')}" for r in self.imports]
        if self.refused:
            rows = self.refused_rows
            rest = "the rest would be written" if self.dry_run else "the rest was written"
            out.append(
                f"  refused {rows:,} row{'s' if rows != 1 else ''} (fix them in {self.name}; "
                f"{rest}):"
            )
            out += [f"    {line}" for line in self.refused[:MAX_REFUSED_SHOWN]]
            if len(self.refused) > MAX_REFUSED_SHOWN:
                out.append(f"    … and {len(self.refused) - MAX_REFUSED_SHOWN:,} more")
        return out

    def counts(self) -> dict[str, Any]:
        return {
            r.kind: {
                "rows": r.rows,
                "inserted": r.inserted,
                "updated": r.updated,
                "unchanged": r.unchanged,
                "refused": len({e.row for e in r.refused}),
            }
            for r in self.imports
        }


def sync_sources(
    engine: Engine,
    sources: Sequence[Source],
    *,
    dry_run: bool = False,
    today: date | None = None,
) -> list[SourceReport]:
    """Pull every source in turn. Idempotent: records are upserted by their ids, so a second run
    with nothing new changes nothing (and leaves no audit entry).

    A source that cannot be read writes nothing; a row that fails the import's checks is
    refused (and reported) while the others are written. ``dry_run`` rolls everything back.
    """
    return [_sync_one(engine, source, dry_run=dry_run, today=today) for source in sources]


def _sync_one(engine: Engine, source: Source, *, dry_run: bool, today: date | None) -> SourceReport:
    started = utcnow()
    report = SourceReport(name=source.name, dry_run=dry_run)
    fetched: dict[str, list[Record]] = {}
    try:
        for kind in SYNC_KINDS:
            if kind in source.kinds:
                fetched[kind] = source.fetch(kind)
    except SourceError as exc:
        report.error = str(exc)
    if report.ok:
        # All kinds of one source in one transaction: a renewal can name an account fetched
        # in the same run, also in a dry run.
        with engine.connect() as conn, conn.begin() as tx:
            for kind, records in fetched.items():
                try:
                    result = import_records(
                        engine,
                        kind,
                        None,
                        records,
                        actor_label=f"sync:{source.name}",
                        source="sync",
                        name=f"sync:{source.name}:{kind}",
                        partial=True,
                        dry_run=dry_run,
                        connection=conn,
                        today=today,
                    )
                except (
                    ImportFailed
                ) as exc:  # the batch itself is wrong: a mapping names bad columns
                    problems = "; ".join(str(e) for e in exc.errors[:3])
                    report.error = f"{kind}: every row refused: {problems}"
                    continue
                report.imports.append(result)
                report.refused += _refused_lines(kind, records, result.refused)
            if dry_run:
                tx.rollback()
    record_run(
        engine,
        source=source.name,
        started_at=started,
        status="ok" if report.ok else "failed",
        dry_run=dry_run,
        counts=report.counts(),
        refused=report.refused_rows,
        error=report.error,
    )
    logger.info("sync %s: %s", source.name, " | ".join(report.lines()[1:]))
    return report


def _refused_lines(kind: str, records: list[Record], errors: Iterable[RowError]) -> list[str]:
    """Refused rows named by the source's own ids, one line per problem."""
    out = []
    for error in errors:
        record = records[error.row - 1] if 0 < error.row <= len(records) else {}
        ident = record.get("external_id") or "/".join(
            str(record.get(k))
            for k in ("account_external_id", "indicator_key", "day")
            if record.get(k)
        )
        where = f", column '{error.column}'" if error.column else ""
        out.append(f"{kind} {ident or f'row {error.row}'}{where}: {error.reason}")
    return out
