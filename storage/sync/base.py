"""What every sync source is: a name, the kinds it feeds, and records in our import columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from urllib3.util import Retry

# Kinds a source may feed, in the order they are written: renewals and readings name accounts.
SYNC_KINDS = ("accounts", "renewals", "readings", "surveys", "milestones")
Record = dict[str, Any]


class SourceError(RuntimeError):
    """A source could not be read (unreachable, login refused, rate limited for too long).

    The message is one line for the report; nothing of that source is written.
    """


class Source(Protocol):
    """A system to pull from. ``fetch`` returns every record of one kind, keyed by our import
    columns (docs/import.md), or raises SourceError."""

    name: str
    kinds: tuple[str, ...]

    def fetch(self, kind: str) -> list[Record]: ...


@dataclass(frozen=True)
class HttpPolicy:
    """How HTTP sources retry: 429 and 5xx answers are retried with backoff, honouring
    Retry-After, up to ``attempts`` tries in all; then the last answer's error is reported."""

    attempts: int = 5
    backoff: float = 1.0
    timeout: float = 30.0
    ca_bundle: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def retry(self) -> Retry:
        return Retry(
            total=self.attempts - 1,
            connect=self.attempts - 1,
            read=2,
            status=self.attempts - 1,
            backoff_factor=self.backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            # The token request is a POST, and reading is GETs: both are safe to repeat.
            allowed_methods=frozenset({"GET", "POST"}),
            respect_retry_after_header=True,
            # The last answer comes back to the client library, which raises with its body.
            raise_on_status=False,
        )


def first_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of an error, cut to fit a report line."""
    for line in str(text).strip().splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


# Our columns that hold a day; CRMs send timestamps or epoch milliseconds for some of them.
DAY_COLUMNS = frozenset(
    {"renewal_date", "start_date", "churned_on", "closed_on", "day", "responded_on", "due_date"}
)


def as_day(value: Any) -> Any:
    """A CRM's day as YYYY-MM-DD: "2027-03-31T00:00:00.000Z" and epoch milliseconds ("1572480000000",
    as HubSpot sends date properties) become their UTC day; anything else is left for the import's
    checks to judge."""
    from datetime import UTC, datetime

    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and len(text) >= 12:
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC).date().isoformat()
        if len(text) > 10 and text[4] == "-" and text[10] in "T ":
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return value
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC)
            return moment.date().isoformat()
    return value


def days_in(record: Record) -> Record:
    """The record with its day columns in YYYY-MM-DD form."""
    return {k: as_day(v) if k in DAY_COLUMNS else v for k, v in record.items()}
