"""What the import and its per-kind modules share: a parsed row, a problem in one, what was written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RowError:
    """One problem: its row (CSV: line, header = 1; records: 1-based position), column, reason.

    ``shape`` marks a problem with the columns themselves (unknown, missing, twice): in a sync
    that is a mapping mistake, so the whole batch is refused rather than each row.
    """

    row: int
    column: str | None
    reason: str
    shape: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        if self.column:
            return f"row {self.row}, column '{self.column}': {self.reason}"
        return f"row {self.row}: {self.reason}"


@dataclass
class ImportRow:
    """A parsed data row: its row number, the columns it has and their typed values.

    ``columns`` is per row because JSON records may each carry a different set of keys; a column
    a row leaves out is left alone, exactly like a column a CSV header leaves out.
    """

    line: int
    values: dict[str, Any]
    columns: Sequence[str]
    refs: dict[str, Any] = field(default_factory=dict)  # resolved ids (account_id, owner_id...)


@dataclass
class ImportCounts:
    """What writing has done so far: rows inserted, updated, unchanged; the accounts touched."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    account_ids: set[int] = field(default_factory=set)
    new_ids: set[int] = field(default_factory=set)
    # Accounts whose renewal date or ARR is new or changed: their open renewal follows.
    renewal_terms: set[int] = field(default_factory=set)
