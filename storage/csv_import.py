"""Import people, accounts, readings, milestones, renewals and surveys (CSV or records): validate all, then upsert."""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.engine import Connection, Engine

from storage.arr_history import record_import_arr
from storage.bulk import chunks, insert_dicts, table
from storage.import_rows import ImportCounts, ImportRow, RowError
from storage.models import (
    LIFECYCLE_STAGES,
    MILESTONE_STATUSES,
    RENEWAL_STATUSES,
    ROLES,
    SURVEY_KINDS,
    utcnow,
)
from storage.people_rows import PersonCheck, add_command, resolve_people, write_people

if TYPE_CHECKING:
    from domain.health_model import Indicator

logger = logging.getLogger(__name__)

KINDS = ("people", "accounts", "readings", "milestones", "renewals", "surveys")
# A rejected import prints (and the API returns) at most this many errors, plus the total.
MAX_ERRORS_SHOWN = 100
# Whole numbers are stored in 32-bit integer columns on PostgreSQL.
MAX_INT = 2_147_483_647
# The largest ARR an account or a renewal may have (a trillion: no customer comes close).
MAX_MONEY = 1_000_000_000_000
# Columns that may hold a line break; anywhere else one means a quote was left open.
MULTILINE_COLUMNS = frozenset({"note", "comment"})
# Characters no cell may hold: control characters but tab and line breaks (a terminal escape in
# a name clears the screen of whoever lists it; decks and PostgreSQL refuse NUL), lone UTF-16
# surrogates (not text: JSON can still spell them) and the two Unicode non-characters XML refuses.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

# Inclusive score ranges per survey kind (NPS 0-10, CSAT 1-5, CES 1-7).
SURVEY_RANGES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
# Several aliases go in one cell, separated by this character.
LIST_SEPARATOR = "|"


class ImportFailed(Exception):
    """The file has at least one bad row; nothing was written. ``errors`` lists every problem."""

    def __init__(
        self, errors: list[RowError], path: Path | None = None, *, name: str | None = None
    ) -> None:
        self.errors = errors
        label = name or (path.name if path else None)
        where = f"{label}: " if label else ""
        lines = "\n".join(f"  {line}" for line in error_lines(errors))
        noun = "error" if len(errors) == 1 else "errors"
        super().__init__(f"{where}{len(errors)} {noun}, nothing imported\n{lines}")


def error_lines(errors: Sequence[RowError], limit: int = MAX_ERRORS_SHOWN) -> list[str]:
    """The first ``limit`` errors as lines, then one line saying how many more there are.

    A file with 50,000 bad rows is almost always one systematic mistake: the first hundred show
    it, and the count says how big it is, without burying the terminal.
    """
    lines = [str(e) for e in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"… and {len(errors) - limit:,} more ({len(errors):,} errors in total)")
    return lines


@dataclass(frozen=True)
class ImportReport:
    """What an import did. ``account_ids``: accounts whose data changed (to recompute health).

    ``refused`` lists the rows a partial import (a sync) left out, with why; ``renewals_created``
    and ``renewals_updated`` count the open renewals that followed the accounts' renewal dates
    and ARR; ``accounts_dated`` the accounts whose renewal date followed imported renewals.
    """

    kind: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    account_ids: frozenset[int]
    refused: tuple[RowError, ...] = ()
    renewals_created: int = 0
    renewals_updated: int = 0
    accounts_dated: int = 0
    dry_run: bool = False

    @property
    def changed(self) -> int:
        return self.inserted + self.updated

    def summary(self) -> str:
        """One line: "accounts: 3 rows, 3 new, 0 updated, 0 unchanged; 3 open renewals created"."""
        text = (
            f"{self.kind}: {self.rows} rows, {self.inserted} new, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )
        extra = []
        if self.refused:
            rows = len({e.row for e in self.refused})
            extra.append(f"{rows} refused")
        if self.renewals_created or self.renewals_updated:
            extra.append(
                f"open renewals from renewal_date/arr: {self.renewals_created} created, "
                f"{self.renewals_updated} updated"
            )
        if self.accounts_dated:
            extra.append(f"{self.accounts_dated} accounts' renewal_date follows their renewals")
        if self.dry_run:
            extra.append("dry run: nothing written")
        return text + "".join(f"; {e}" for e in extra)


class _Bad(ValueError):
    """A cell that cannot be parsed; the message is the reason shown to the user."""


# ---------------------------------------------------------------------------------------------
# cell parsers: text in, typed value out (None for an empty cell), _Bad with a reason otherwise


def _text(raw: str) -> str | None:
    return raw or None


def _number(raw: str) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise _Bad(f"not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise _Bad(f"not a finite number: {raw!r}")
    return value


def _non_negative(raw: str) -> float | None:
    value = _number(raw)
    if value is not None and value < 0:
        raise _Bad(f"must not be negative: {raw!r}")
    return value


def _money(raw: str) -> float | None:
    """An amount of ARR: not negative, and at most a trillion dollars. A larger number is a
    mistake (a unit, a pasted id), and 1e308 would turn every portfolio total into infinity."""
    value = _non_negative(raw)
    if value is not None and value > MAX_MONEY:
        raise _Bad(f"more than ${MAX_MONEY:,.0f}: {raw!r}")
    return value


def _integer(raw: str) -> int | None:
    if not raw:
        return None
    try:
        value = int(raw)  # exact: float() would round 99999999999999999999
    except ValueError:
        as_float = _number(raw)
        assert as_float is not None
        if not as_float.is_integer():
            raise _Bad(f"not a whole number: {raw!r}") from None
        value = int(as_float)
    if abs(value) > MAX_INT:
        raise _Bad(f"out of range (at most {MAX_INT:,}): {raw!r}")
    return value


def _count(raw: str) -> int | None:
    value = _integer(raw)
    if value is not None and value < 0:
        raise _Bad(f"must not be negative: {raw!r}")
    return value


def _iso_date(raw: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _Bad(f"not a date in YYYY-MM-DD form: {raw!r}") from None


def _probability(raw: str) -> float | None:
    """0..1, or a percentage such as "80%" (CRMs export both)."""
    if not raw:
        return None
    value = _number(raw[:-1].strip()) if raw.endswith("%") else _number(raw)
    assert value is not None
    if raw.endswith("%"):
        value /= 100
    if not 0 <= value <= 1:
        raise _Bad(f"must be between 0 and 1 (or 0% and 100%): {raw!r}")
    return value


def _one_of(allowed: Sequence[str]) -> Callable[[str], str | None]:
    def parse(raw: str) -> str | None:
        if not raw:
            return None
        value = raw.lower().replace(" ", "_") if raw.lower() not in allowed else raw.lower()
        if value not in allowed:
            raise _Bad(f"must be one of {', '.join(allowed)}: {raw!r}")
        return value

    return parse


def _segment(raw: str) -> str | None:
    return raw.lower() if raw else None


def _email(raw: str) -> str | None:
    if not raw:
        return None
    if "@" not in raw or raw.startswith("@") or raw.endswith("@"):
        raise _Bad(f"not an email address: {raw!r}")
    return raw.lower()


# A Teams channel (19:…@thread.tacv2, older teams @thread.skype) or group chat (@thread.v2).
_TEAMS_CONVERSATION = re.compile(r"^19:[^\s;@]+@thread\.(tacv2|skype|v2)$")


def _teams_conversation(raw: str) -> str | None:
    """A Teams channel's conversation id, as Teams writes it (the channel, not one of its threads)."""
    if not raw:
        return None
    if ";messageid=" in raw:
        raise _Bad(f"a channel, not one of its threads (drop ';messageid=…'): {raw!r}")
    if not _TEAMS_CONVERSATION.match(raw):
        raise _Bad(f"not a Teams channel id like 19:…@thread.tacv2: {raw!r}")
    return raw


_SLACK_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TRUE = ("yes", "y", "true", "1", "on")
_FALSE = ("no", "n", "false", "0", "off")


def _timezone(raw: str) -> str | None:
    """An IANA time zone name such as ``Europe/Berlin``; a typo gets the closest names."""
    if not raw:
        return None
    from storage.timezones import TimeZoneUnknown, check_timezone

    try:
        return check_timezone(raw)
    except TimeZoneUnknown as exc:
        raise _Bad(str(exc)) from None


def _clock_time(raw: str) -> str | None:
    """HH:MM on a 24-hour clock, stored zero-padded ("8:30" -> "08:30")."""
    if not raw:
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise _Bad(f"not a time of day as HH:MM (24-hour clock): {raw!r}")
    return f"{int(match[1]):02d}:{match[2]}"


def _interrupts(raw: str) -> list[str] | None:
    """Alert classes that interrupt a person (domain.notify_policy), separated by | or commas;
    "none": nothing interrupts; empty or "default": the defaults (stored as NULL)."""
    from domain.notify_policy import CLASS_KEYS

    if not raw or raw.strip().lower() == "default":
        return None
    if raw.strip().lower() == "none":
        return []
    chosen = [p.strip().lower() for p in re.split(r"[|,]", raw) if p.strip()]
    unknown = [p for p in chosen if p not in CLASS_KEYS]
    if unknown:
        raise _Bad(f"unknown alert kind {', '.join(unknown)}; use {', '.join(CLASS_KEYS)}")
    return [k for k in CLASS_KEYS if k in chosen]


def _yes_no(raw: str) -> bool | None:
    if not raw:
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise _Bad(f"must be yes or no: {raw!r}")


def _slack_user(raw: str) -> str | None:
    if not raw:
        return None
    if not _SLACK_USER_RE.match(raw):
        raise _Bad(
            f"not a Slack user id (like U0123ABCD; Slack: profile → ⋮ → Copy member ID): {raw!r}"
        )
    return raw


def _guid(raw: str) -> str | None:
    if not raw:
        return None
    if not _GUID_RE.match(raw):
        raise _Bad(
            f"not an Azure AD object id (a GUID like 0b6fe6d1-fece-44f7-9a48-56465e2d5ab8): {raw!r}"
        )
    return raw.lower()


def _one_token(raw: str) -> str | None:
    if not raw:
        return None
    if any(ch.isspace() for ch in raw):
        raise _Bad(f"must not contain spaces: {raw!r}")
    return raw


def _aliases(raw: str) -> list[str] | None:
    if not raw:
        return None
    return [part.strip() for part in raw.split(LIST_SEPARATOR) if part.strip()]


@dataclass(frozen=True)
class _Col:
    """A CSV column: how to parse it, whether it must be there and filled, where it is stored."""

    name: str
    parse: Callable[[str], Any]
    required: bool = False
    db: str | None = None  # database column, when it maps one-to-one

    @property
    def target(self) -> str:
        return self.db or self.name


_ACCOUNT_REF = "account_external_id"

SPECS: dict[str, tuple[_Col, ...]] = {
    "people": (
        _Col("email", _email, required=True),
        # Required for a new person only, so a file (or `people set`) can change one column.
        _Col("name", _text),
        _Col("role", _one_of(ROLES)),
        _Col("manager_email", _email),
        _Col("timezone", _timezone),
        _Col("digest_time", _clock_time),
        _Col("digest_weekends", _yes_no),
        _Col("work_start", _clock_time),
        _Col("work_end", _clock_time),
        _Col("interrupts", _interrupts),
        _Col("slack_user_id", _slack_user),
        _Col("teams_user_id", _one_token),
        _Col("teams_aad_object_id", _guid),
    ),
    "accounts": (
        _Col("external_id", _text, required=True),
        _Col("name", _text, required=True),
        _Col("owner_email", _email),
        _Col("segment", _segment),
        _Col("tier", _text),
        _Col("arr", _money),
        _Col("lifecycle_stage", _one_of(LIFECYCLE_STAGES)),
        _Col("start_date", _iso_date),
        _Col("renewal_date", _iso_date),
        _Col("churned_on", _iso_date),
        _Col("licensed_seats", _count),
        _Col("aliases", _aliases),
        _Col("slack_channel_id", _text),
        _Col("teams_conversation_id", _teams_conversation),
    ),
    "readings": (
        _Col(_ACCOUNT_REF, _text, required=True),
        _Col("indicator_key", _text, required=True),
        _Col("day", _iso_date, required=True),
        _Col("value", _number, required=True),
        _Col("source", _text),
        _Col("note", _text),
    ),
    "milestones": (
        _Col("external_id", _text, required=True),
        _Col(_ACCOUNT_REF, _text, required=True),
        _Col("objective", _text, required=True),
        _Col("title", _text, required=True),
        _Col("due_date", _iso_date),
        _Col("status", _one_of(MILESTONE_STATUSES)),
        _Col("owner_email", _email),
        _Col("owner_name", _text),
        _Col("completed_on", _iso_date),
        _Col("note", _text),
    ),
    "renewals": (
        _Col("external_id", _text, required=True),
        _Col(_ACCOUNT_REF, _text, required=True),
        _Col("renewal_date", _iso_date, required=True),
        _Col("arr", _money),
        _Col("likelihood", _probability),
        _Col("status", _one_of(RENEWAL_STATUSES)),
        _Col("renewed_arr", _money),
        _Col("closed_on", _iso_date),
    ),
    "surveys": (
        _Col("external_id", _text, required=True),
        _Col(_ACCOUNT_REF, _text, required=True),
        _Col("kind", _one_of(SURVEY_KINDS), required=True),
        _Col("score", _integer, required=True),
        _Col("responded_on", _iso_date, required=True),
        _Col("respondent", _text),
        _Col("comment", _text),
    ),
}

# Values a new row gets for non-nullable columns the file leaves out or leaves empty.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "people": {
        "role": "csm",
        "timezone": "UTC",
        "digest_time": "08:30",
        "digest_weekends": False,
        "work_start": "09:00",
        "work_end": "18:00",
    },
    "accounts": {"segment": "mid-market", "arr": 0.0, "lifecycle_stage": "adoption", "aliases": []},
    "readings": {"source": "import"},
    "milestones": {"status": "not_started"},
    "renewals": {"arr": 0.0, "status": "open"},
    "surveys": {},
}


# ---------------------------------------------------------------------------------------------
# reading and validating: CSV text (a file or a request body) or in-memory records


def decode_csv(data: bytes, encoding: str | None, name: str, *, hint: str) -> str:
    """The text of a CSV file's bytes, or ImportFailed naming the line of the first bad byte.

    ``encoding`` None means UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8").
    ``hint`` says how this caller can pass another encoding (a CLI option, a charset).
    """
    codec = encoding or "utf-8-sig"
    if encoding is None and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ImportFailed(
            [
                RowError(
                    1,
                    None,
                    "the file is UTF-16 text (Excel's “Unicode Text”): save it as “CSV UTF-8”"
                    + hint.format(encoding="utf-16"),
                )
            ],
            name=name,
        )
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start : exc.end].hex(" ").upper()
        label = "UTF-8" if codec.replace("_", "-").lower().startswith("utf-8") else codec
        reason = f"not {label} text: byte {bad} at position {column} cannot be decoded"
        if label == "UTF-8":
            guess = _guess_single_byte(data)
            reason += (
                f"; the file looks like {guess} text: save it as “CSV UTF-8”"
                + hint.format(encoding="cp1252")
                if guess
                else "; save it as “CSV UTF-8”"
            )
        raise ImportFailed([RowError(line, None, reason)], name=name) from exc
    except LookupError as exc:
        raise ImportFailed([RowError(0, None, f"unknown encoding {codec!r}")], name=name) from exc


def _guess_single_byte(data: bytes) -> str | None:
    """Windows-1252 (Excel's plain "CSV" on Western systems) when the bytes decode as that."""
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    return "Windows-1252 (Latin-1)"


def _read_csv(text: str, kind: str, errors: list[RowError], name: str) -> list[ImportRow]:
    """Parse CSV text into typed rows numbered by line (header = 1); problems go to ``errors``."""
    spec = {c.name: c for c in SPECS[kind]}
    handle = io.StringIO(text.removeprefix("\ufeff"), newline="")
    # Strict: a stray quote is an error rather than a value silently merged with the next lines.
    reader = csv.reader(handle, strict=True)
    rows: list[ImportRow] = []
    records = _records(reader)
    try:
        header = next(records, None)
        if header is None:
            errors.append(RowError(1, None, "the file is empty (expected a header row)"))
            return []
        columns = _check_header(header[1], kind, errors, line=1)
        if columns is None:
            return []
        for line, cells in records:
            row = _parse_row(line, cells, columns, spec, errors)
            _check_line_breaks(line, cells, columns, errors)
            rows.append(row)
    except csv.Error as exc:
        # The reader cannot go on after a malformed record: report it where it starts.
        start = records.start if isinstance(records, _Records) else 0
        errors.append(RowError(start, None, _csv_problem(str(exc))))
    return rows


def _csv_problem(message: str) -> str:
    if "unexpected end of data" in message:
        return (
            'a quoted value that starts in this row is never closed (a stray " in this row?); '
            "the rest of the file would have become one value"
        )
    if "expected after" in message:
        return (
            'a closing quote is followed by more text (write a quote inside a quoted value as "")'
        )
    return f"not valid CSV: {message}"


def _check_line_breaks(
    line: int, cells: Sequence[str], columns: Sequence[str], errors: list[RowError]
) -> None:
    """A line break inside a name or id means a quote was left open: the value swallowed rows."""
    for name, cell in zip(columns, cells, strict=False):
        if name in MULTILINE_COLUMNS or ("\n" not in cell and "\r" not in cell):
            continue
        last = line + cell.count("\n")
        errors.append(
            RowError(
                line,
                name,
                f"the value runs over lines {line}-{last}: a quote opened here is closed only "
                f'on line {last} (a stray " in this row?)',
            )
        )


class _Records:
    """(first line number, cells) per record; blank lines (a trailing one, say) are skipped.

    ``start`` is the first line of the record being read, so a reader error can name it.
    """

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.start = 1
        self._previous_end = 0

    def __iter__(self) -> _Records:
        return self

    def __next__(self) -> tuple[int, list[str]]:
        while True:
            self.start = self._previous_end + 1
            cells = next(self.reader)
            self._previous_end = self.reader.line_num
            if any(cell.strip() for cell in cells):
                return self.start, cells


def _records(reader: Any) -> _Records:
    return _Records(reader)


def _read_records(
    header: Sequence[str] | None,
    records: Iterable[Sequence[Any] | Mapping[str, Any]],
    kind: str,
    errors: list[RowError],
) -> list[ImportRow]:
    """Typed rows from in-memory records numbered from 1; header problems are reported on row 0.

    A record is either a list of cells in ``header`` order or a mapping of column to value (a
    JSON object). Values may be text, numbers or None (an empty cell); they are turned into the
    text a CSV cell would hold so the very same parsers check them.
    """
    spec = {c.name: c for c in SPECS[kind]}
    columns = None if header is None else _check_header(list(header), kind, errors, line=0)
    rows: list[ImportRow] = []
    for line, record in enumerate(records, start=1):
        if isinstance(record, Mapping):
            keyed, cells = _keyed_cells(line, record, kind, errors)
            rows.append(_parse_row(line, cells, keyed, spec, errors))
        elif isinstance(record, Sequence) and not isinstance(record, str | bytes):
            if header is None:
                errors.append(RowError(line, None, "a list of values needs a header"))
            elif columns is not None:
                cells = [_cell(line, n, v, errors) for n, v in zip_longest(columns, record)]
                rows.append(_parse_row(line, cells, columns, spec, errors))
        else:
            errors.append(RowError(line, None, "expected an object of column: value"))
    return rows


def _keyed_cells(
    line: int, record: Mapping[str, Any], kind: str, errors: list[RowError]
) -> tuple[list[str], list[str | None]]:
    """The known columns of one mapping record and their cells; bad keys go to ``errors``.

    The known columns are still checked when some key is wrong, so one request lists every
    problem of the row.
    """
    known = [c.name for c in SPECS[kind]]
    columns: list[str] = []
    raw: list[Any] = []
    for key, value in record.items():
        name = str(key).strip().lower()
        if name in columns:
            errors.append(RowError(line, name, "column appears twice in the record", shape=True))
        elif name not in known:
            errors.append(
                RowError(
                    line, name or None, f"unknown column (expected: {', '.join(known)})", shape=True
                )
            )
        else:
            columns.append(name)
            raw.append(value)
    for col in SPECS[kind]:
        if col.required and col.name not in columns:
            required = ", ".join(c.name for c in SPECS[kind] if c.required)
            errors.append(
                RowError(
                    line,
                    col.name,
                    f"required column is missing (required for {kind}: {required})",
                    shape=True,
                )
            )
    return columns, [_cell(line, n, v, errors) for n, v in zip(columns, raw, strict=True)]


def _cell(line: int, column: str | None, value: Any, errors: list[RowError]) -> str | None:
    """The CSV text of a record value: None is an empty cell, numbers are written out plainly.

    Booleans and nested objects have no CSV form, so they are errors rather than guesses (and
    the cell becomes None, so it is not reported twice); a list is accepted only for
    ``aliases``, which a CSV cell writes as ``a|b``.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is a subclass of int
        if column == "digest_weekends":
            return "yes" if value else "no"
        reason = f"expected text or a number, not {str(value).lower()}"
    elif isinstance(value, int | float):
        return repr(value)
    elif isinstance(value, Decimal):  # numeric columns of a SQL source
        return str(value)
    elif isinstance(value, datetime):  # our columns are days; a timestamp's day is meant
        return value.date().isoformat()
    elif isinstance(value, date):
        return value.isoformat()
    elif column == "aliases" and isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return LIST_SEPARATOR.join(value)
        reason = "expected a list of names"
    else:
        reason = f"expected text or a number, not {type(value).__name__}"
    errors.append(RowError(line, column, reason))
    return None


def _check_header(
    header: list[str], kind: str, errors: list[RowError], *, line: int
) -> list[str] | None:
    names = [str(h).strip().lower() for h in header]
    known = [c.name for c in SPECS[kind]]
    bad = False
    seen: set[str] = set()
    for name in names:
        if name in seen:
            errors.append(RowError(line, name, "column appears twice in the header"))
            bad = True
        seen.add(name)
        if name not in known:
            errors.append(
                RowError(line, name or None, f"unknown column (expected: {', '.join(known)})")
            )
            bad = True
    missing = [c.name for c in SPECS[kind] if c.required and c.name not in seen]
    for name in missing:
        errors.append(
            RowError(
                line,
                name,
                f"required column is missing from the header (required for {kind}: "
                + ", ".join(c.name for c in SPECS[kind] if c.required)
                + ")",
            )
        )
        bad = True
    return None if bad else names


def _parse_row(
    line: int,
    cells: Sequence[str | None],
    columns: list[str],
    spec: dict[str, _Col],
    errors: list[RowError],
) -> ImportRow:
    """Typed values of one row; a None cell is a record value already reported as unusable."""
    if len(cells) > len(columns):
        extra = [c for c in cells[len(columns) :] if c is None or c.strip()]
        if extra:
            errors.append(
                RowError(line, None, f"has {len(cells)} values but the header has {len(columns)}")
            )
    values: dict[str, Any] = {}
    for index, name in enumerate(columns):
        cell = cells[index] if index < len(cells) else ""
        if cell is None:
            continue
        raw = cell.strip()
        col = spec[name]
        unstorable = _UNSTORABLE.search(raw)
        if unstorable:
            errors.append(RowError(line, name, _unstorable_reason(unstorable.group())))
            continue
        if not raw and col.required:
            errors.append(RowError(line, name, "required value is empty"))
            continue
        try:
            values[name] = col.parse(raw)
        except _Bad as exc:
            errors.append(RowError(line, name, str(exc)))
    return ImportRow(line, values, columns)


def _unstorable_reason(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return f"contains half of a UTF-16 pair ({code}), which cannot be stored: fix the text"
    return f"contains a control character ({code}): remove it"


def _check_duplicates(
    rows: list[ImportRow], key: Callable[[ImportRow], Any], column: str, errors: list[RowError]
) -> None:
    first: dict[Any, int] = {}
    for row in rows:
        k = key(row)
        if k is None or (isinstance(k, tuple) and None in k):
            continue
        if k in first:
            shown = k if not isinstance(k, tuple) else ", ".join(str(p) for p in k)
            errors.append(
                RowError(row.line, column, f"duplicate of row {first[k]} ({shown}) in this file")
            )
        else:
            first[k] = row.line


def _known_indicators() -> dict[str, Indicator]:
    """Indicators of the packaged health model (default, then segment models), by key."""
    from domain.health_model import load_health_models

    models = load_health_models(None)
    found = {i.key: i for i in models.default.indicators}
    for model in models.by_segment.values():
        for indicator in model.indicators:
            found.setdefault(indicator.key, indicator)
    return found


def _check_reading(
    row: ImportRow, indicators: dict[str, Indicator], errors: list[RowError], *, today: date
) -> None:
    """Known key, a possible value for it, and not dated in the future."""
    key, value, day = (
        row.values.get("indicator_key"),
        row.values.get("value"),
        row.values.get("day"),
    )
    if key is not None and key not in indicators:
        errors.append(
            RowError(
                row.line,
                "indicator_key",
                f"unknown indicator {key!r} (allowed: {', '.join(indicators)})",
            )
        )
    elif key is not None and value is not None and not indicators[key].accepts(value):
        ind = indicators[key]
        low = "" if ind.min_value is None else f"{ind.min_value:g}"
        high = "" if ind.max_value is None else f"{ind.max_value:g}"
        errors.append(
            RowError(row.line, "value", f"{value:g} is not a possible {key} (range {low}..{high})")
        )
    # A day of slack for timezones; anything later is a typo, and would skew the forecast.
    if day is not None and day > today + timedelta(days=1):
        errors.append(RowError(row.line, "day", f"{day.isoformat()} is in the future"))


def _resolve(
    conn: Connection,
    kind: str,
    rows: list[ImportRow],
    errors: list[RowError],
    *,
    today: date,
    person_check: PersonCheck | None = None,
) -> None:
    """Check references against the database and within the file; store the ids found."""
    if kind == "people":
        resolve_people(conn, rows, errors, check=person_check)
        return
    if kind != "accounts":
        refs = {r.values.get(_ACCOUNT_REF) for r in rows} - {None}
        acc = table("account")
        ids = _lookup(conn, acc.c.external_id, acc.c.id, refs)
        for row in rows:
            ref = row.values.get(_ACCOUNT_REF)
            if ref is None:
                continue
            if ref in ids:
                row.refs["account_id"] = ids[ref]
            else:
                errors.append(
                    RowError(row.line, _ACCOUNT_REF, f"no account with external_id {ref!r}")
                )
    emails = {r.values.get("owner_email") for r in rows} - {None}
    if emails:
        csm = table("csm")
        found = _lookup(conn, func.lower(csm.c.email), csm.c.id, emails)
        for row in rows:
            email = row.values.get("owner_email")
            if email is None:
                continue
            if email in found:
                row.refs["owner_id"] = found[email]
            else:
                errors.append(
                    RowError(
                        row.line,
                        "owner_email",
                        f"no CSM with email {email!r}: add them first with "
                        f"{add_command(email)} (or csm-bot people import FILE)",
                    )
                )

    if kind == "readings":
        indicators = _known_indicators()
        for row in rows:
            _check_reading(row, indicators, errors, today=today)
        _check_duplicates(
            rows,
            lambda r: (
                r.values.get(_ACCOUNT_REF),
                r.values.get("indicator_key"),
                r.values.get("day"),
            ),
            "day",
            errors,
        )
    else:
        _check_duplicates(rows, lambda r: r.values.get("external_id"), "external_id", errors)

    if kind == "surveys":
        for row in rows:
            survey, score = row.values.get("kind"), row.values.get("score")
            if survey in SURVEY_RANGES and score is not None:
                lo, hi = SURVEY_RANGES[survey]
                if not lo <= score <= hi:
                    errors.append(
                        RowError(row.line, "score", f"{survey} scores run {lo}-{hi}: {score}")
                    )
    if kind == "milestones":
        _check_milestone_accounts(conn, rows, errors)


def _lookup(conn: Connection, key_col: Any, id_col: Any, keys: set[Any]) -> dict[Any, int]:
    found: dict[Any, int] = {}
    for batch in chunks(sorted(keys), 500):
        found.update(conn.execute(select(key_col, id_col).where(key_col.in_(batch))).all())
    return found


def _check_milestone_accounts(
    conn: Connection, rows: list[ImportRow], errors: list[RowError]
) -> None:
    """A milestone never moves to another account: that is almost always a wrong id in the file."""
    ms = table("milestone")
    existing = {
        ext: acc_id
        for batch in chunks(sorted({r.values.get("external_id") for r in rows} - {None}), 500)
        for ext, acc_id in conn.execute(
            select(ms.c.external_id, ms.c.account_id).where(ms.c.external_id.in_(batch))
        )
    }
    for row in rows:
        ext = row.values.get("external_id")
        account_id = row.refs.get("account_id")
        if ext in existing and account_id is not None and existing[ext] != account_id:
            errors.append(
                RowError(
                    row.line,
                    _ACCOUNT_REF,
                    f"milestone {ext!r} already belongs to another account",
                )
            )


# ---------------------------------------------------------------------------------------------
# writing


def _diff(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in desired.items() if current.get(k) != v}


def _upsert_by_external_id(
    conn: Connection,
    kind: str,
    rows: list[ImportRow],
    desired_of: Callable[[ImportRow], dict[str, Any]],
    counts: ImportCounts,
    *,
    on_insert: dict[str, Any] | None = None,
    touch: str | None = None,
    on_change: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
) -> None:
    """Insert new external ids, update rows whose values differ, count the rest as unchanged.

    ``on_insert`` adds values only new rows get (timestamps); ``touch`` names a column stamped
    on every update; ``on_change(current, changes)`` runs before each update (history).
    """
    tbl = table(_TABLES[kind])
    existing: dict[str, dict[str, Any]] = {}
    for batch in chunks([r.values["external_id"] for r in rows], 500):
        for rec in conn.execute(select(tbl).where(tbl.c.external_id.in_(batch))).mappings():
            existing[rec["external_id"]] = dict(rec)
    inserts: list[dict[str, Any]] = []
    for row in rows:
        desired = desired_of(row)
        current = existing.get(row.values["external_id"])
        if current is None:
            inserts.append({**_DEFAULTS[kind], **(on_insert or {}), **desired})
            counts.inserted += 1
            if "account_id" in desired:
                counts.account_ids.add(desired["account_id"])
            continue
        changes = _diff(current, desired)
        if not changes:
            counts.unchanged += 1
            continue
        if on_change:
            on_change(current, changes)
        if touch:
            changes[touch] = utcnow()
        conn.execute(tbl.update().where(tbl.c.id == current["id"]).values(**changes))
        counts.updated += 1
        counts.account_ids.add(current["id"] if kind == "accounts" else current["account_id"])
    if inserts:
        _insert_uniform(conn, tbl, inserts)
        if kind == "accounts":
            # New accounts only have ids now; their health needs computing too.
            new = {r["external_id"] for r in inserts}
            new_ids = set(_lookup(conn, tbl.c.external_id, tbl.c.id, new).values())
            counts.account_ids |= new_ids
            counts.new_ids |= new_ids


def _insert_uniform(conn: Connection, tbl: Any, inserts: list[dict[str, Any]]) -> None:
    """Insert in groups naming the same columns: executemany needs one column set per batch.

    CSV rows all share the header; JSON records may each leave out different optional keys, and
    a key left out must get the column's default rather than an explicit NULL.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in inserts:
        groups.setdefault(tuple(sorted(values)), []).append(values)
    for group in groups.values():
        insert_dicts(conn, tbl, group)


_TABLES = {
    "accounts": "account",
    "readings": "indicator_reading",
    "milestones": "milestone",
    "renewals": "renewal",
    "surveys": "survey_response",
}


def _plain(kind: str, row: ImportRow, skip: Iterable[str] = ()) -> dict:
    """The database values a row asks for: the columns the row has, mapped one-to-one.

    An empty cell clears a nullable column; in a column that cannot be NULL it means "keep the
    current value" (or the default, for a new row).
    """
    skipped = set(skip)
    out: dict[str, Any] = {}
    for col in SPECS[kind]:
        if col.name in row.columns and col.name not in skipped:
            out[col.target] = row.values.get(col.name)
    for name in _DEFAULTS[kind]:
        if name in out and out[name] is None:
            del out[name]
    return out


def _write_accounts(conn: Connection, rows: list[ImportRow], counts: ImportCounts) -> None:
    def desired(row: ImportRow) -> dict[str, Any]:
        out = _plain("accounts", row, skip=("owner_email",))
        if "owner_email" in row.columns:
            out["owner_id"] = row.refs.get("owner_id")
        return out

    def record(current: dict[str, Any], changes: dict[str, Any]) -> None:
        if "arr" in changes or "renewal_date" in changes:
            counts.renewal_terms.add(current["id"])

    stamp = utcnow()
    _upsert_by_external_id(
        conn,
        "accounts",
        rows,
        desired,
        counts,
        on_insert={"created_at": stamp, "updated_at": stamp},
        touch="updated_at",
        on_change=record,
    )
    counts.renewal_terms |= counts.new_ids


def _write_with_account(kind: str) -> Callable[[Connection, list[ImportRow], ImportCounts], None]:
    """Renewals and surveys: one-to-one columns plus the account the row refers to."""

    def write(conn: Connection, rows: list[ImportRow], counts: ImportCounts) -> None:
        def desired(row: ImportRow) -> dict[str, Any]:
            out = _plain(kind, row, skip=(_ACCOUNT_REF,))
            out["account_id"] = row.refs["account_id"]
            return out

        if kind == "renewals":
            _adopt_derived_renewals(conn, rows)
        _upsert_by_external_id(conn, kind, rows, desired, counts)

    return write


def _adopt_derived_renewals(conn: Connection, rows: list[ImportRow]) -> None:
    """New renewal rows take over the open renewal an account's renewal date made (if any)."""
    from storage.renewals import claim_derived

    tbl = table("renewal")
    known = set(_lookup(conn, tbl.c.external_id, tbl.c.id, {r.values["external_id"] for r in rows}))
    claim_derived(
        conn,
        (
            (
                r.values["external_id"],
                r.refs["account_id"],
                r.values["renewal_date"],
                r.values.get("status"),
            )
            for r in rows
            if r.values["external_id"] not in known
        ),
    )


def _write_milestones(
    conn: Connection, rows: list[ImportRow], counts: ImportCounts, actor_label: str, note: str
) -> None:
    objective_ids = _objectives_for(conn, rows)
    events: list[dict[str, Any]] = []
    stamp = utcnow()

    def desired(row: ImportRow) -> dict[str, Any]:
        out = _plain("milestones", row, skip=(_ACCOUNT_REF, "objective", "owner_email"))
        out["account_id"] = row.refs["account_id"]
        out["objective_id"] = objective_ids[(row.refs["account_id"], _norm(row))]
        if "owner_email" in row.columns:
            out["owner_id"] = row.refs.get("owner_id")
        return out

    def record(current: dict[str, Any], changes: dict[str, Any]) -> None:
        # Every change to a milestone is kept as an event: who, when, from and to.
        for name in sorted(changes):
            if name in ("status", "due_date", "owner_id", "owner_name", "title", "completed_on"):
                events.append(
                    {
                        "milestone_id": current["id"],
                        "actor_id": None,
                        "actor_label": actor_label,
                        "at": stamp,
                        "field": name,
                        "from_value": _as_text(current.get(name)),
                        "to_value": _as_text(changes[name]),
                        "note": note,
                    }
                )

    _upsert_by_external_id(
        conn,
        "milestones",
        rows,
        desired,
        counts,
        on_insert={"updated_at": stamp},
        touch="updated_at",
        on_change=record,
    )
    if events:
        insert_dicts(conn, table("milestone_event"), events)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def _norm(row: ImportRow) -> str:
    return " ".join(str(row.values["objective"]).split()).lower()


def _objectives_for(conn: Connection, rows: list[ImportRow]) -> dict[tuple[int, str], int]:
    """Objective id per (account, objective title), creating the plan and objective if missing."""
    plan_tbl, obj_tbl, acc = table("success_plan"), table("objective"), table("account")
    wanted: dict[int, dict[str, str]] = {}
    for row in rows:
        titles = wanted.setdefault(row.refs["account_id"], {})
        titles.setdefault(_norm(row), " ".join(str(row.values["objective"]).split()))
    found: dict[tuple[int, str], int] = {}
    for account_id, titles in sorted(wanted.items()):
        plan_id = conn.execute(
            select(plan_tbl.c.id)
            .where(plan_tbl.c.account_id == account_id)
            .order_by(plan_tbl.c.id)
            .limit(1)
        ).scalar()
        if plan_id is None:
            name = conn.execute(select(acc.c.name).where(acc.c.id == account_id)).scalar_one()
            plan_id = conn.execute(
                plan_tbl.insert().values(
                    account_id=account_id, title=f"{name} success plan", created_at=utcnow()
                )
            ).inserted_primary_key[0]
        objectives = conn.execute(
            select(obj_tbl.c.id, obj_tbl.c.title, obj_tbl.c.position)
            .join(plan_tbl, plan_tbl.c.id == obj_tbl.c.plan_id)
            .where(plan_tbl.c.account_id == account_id)
            .order_by(obj_tbl.c.id)
        ).all()
        by_title: dict[str, int] = {}
        for oid, title, _ in objectives:
            by_title.setdefault(" ".join(title.split()).lower(), oid)
        position = max((p for _, _, p in objectives), default=-1) + 1
        for norm, title in titles.items():
            if norm not in by_title:
                by_title[norm] = conn.execute(
                    obj_tbl.insert().values(plan_id=plan_id, title=title, position=position)
                ).inserted_primary_key[0]
                position += 1
            found[(account_id, norm)] = by_title[norm]
    return found


def _write_readings(conn: Connection, rows: list[ImportRow], counts: ImportCounts) -> None:
    rd = table("indicator_reading")
    # Existing readings for the accounts, keys and days in the file, in a few range queries
    # rather than one query per row.
    account_ids = sorted({r.refs["account_id"] for r in rows})
    keys = sorted({r.values["indicator_key"] for r in rows})
    first = min(r.values["day"] for r in rows)
    last = max(r.values["day"] for r in rows)
    existing: dict[tuple[int, str, date], dict[str, Any]] = {}
    for batch in chunks(account_ids, 500):
        stmt = select(
            rd.c.id,
            rd.c.account_id,
            rd.c.indicator_key,
            rd.c.day,
            rd.c.value,
            rd.c.source,
            rd.c.note,
        ).where(
            and_(
                rd.c.account_id.in_(batch),
                rd.c.indicator_key.in_(keys),
                rd.c.day >= first,
                rd.c.day <= last,
            )
        )
        for rec in conn.execute(stmt).mappings():
            existing[(rec["account_id"], rec["indicator_key"], rec["day"])] = dict(rec)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for row in rows:
        account_id = row.refs["account_id"]
        key = (account_id, row.values["indicator_key"], row.values["day"])
        desired: dict[str, Any] = {"value": row.values["value"]}
        for name in ("source", "note"):
            if name in row.columns:
                desired[name] = row.values.get(name)
        if "source" in desired and desired["source"] is None:
            del desired["source"]  # empty: keep what is there ("import" for a new row)
        current = existing.get(key)
        if current is None:
            inserts.append(
                {"account_id": key[0], "indicator_key": key[1], "day": key[2], "source": "import"}
                | {"note": None}
                | desired
            )
            counts.inserted += 1
        elif _diff(current, desired):
            merged = {**current, **desired}
            updates.append(
                {
                    "_id": current["id"],
                    "_value": merged["value"],
                    "_source": merged["source"],
                    "_note": merged["note"],
                }
            )
            counts.updated += 1
        else:
            counts.unchanged += 1
            continue
        counts.account_ids.add(account_id)
    if inserts:
        insert_dicts(conn, rd, inserts)
    if updates:
        stmt = (
            rd.update()
            .where(rd.c.id == bindparam("_id"))
            .values(value=bindparam("_value"), source=bindparam("_source"), note=bindparam("_note"))
        )
        for batch in chunks(updates):
            conn.execute(stmt, batch)


# ---------------------------------------------------------------------------------------------
# entry points: a CSV file, CSV text (an HTTP body), in-memory records (JSON); one write path


def import_csv(
    engine: Engine,
    kind: str,
    path: Path,
    *,
    actor_label: str = "csv import",
    encoding: str | None = None,
    today: date | None = None,
) -> ImportReport:
    """Validate every row of a CSV file, then upsert it in one transaction.

    Any bad row raises ImportFailed listing every problem (line, column, reason) and writes
    nothing. Rows are matched by external id (readings by account, indicator and day), so
    importing the same file twice changes nothing the second time. A changing import leaves one
    AuditLog row with the counts. ``encoding`` None reads UTF-8, with or without a byte-order
    mark; a file in another encoding says which line holds the first byte that is not UTF-8.
    """
    _check_kind(kind)
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed([RowError(0, None, f"cannot read file: {exc.strerror}")], path) from exc
    text = decode_csv(data, encoding, path.name, hint=", or import it with --encoding {encoding}")
    errors: list[RowError] = []
    rows = _read_csv(text, kind, errors, path.name)
    return _import(
        engine,
        kind,
        rows,
        errors,
        actor_label=actor_label,
        source="import",
        name=path.name,
        origin={"file": path.name},
        today=today,
    )


def import_csv_text(
    engine: Engine,
    kind: str,
    data: bytes | str,
    *,
    actor_label: str = "api",
    source: str = "api",
    name: str = "csv",
    person_check: PersonCheck | None = None,
    today: date | None = None,
) -> ImportReport:
    """Like import_csv, for CSV that is already in memory (an HTTP request body).

    Bytes must be UTF-8 (a byte-order mark is dropped); row numbers are line numbers, exactly as
    for a file. ``name`` says where the data came from in errors and the audit log.
    ``person_check``: what the sender may not change about people (see storage.people_rows).
    """
    _check_kind(kind)
    text = (
        decode_csv(data, None, name, hint=" before sending it") if isinstance(data, bytes) else data
    )
    errors: list[RowError] = []
    rows = _read_csv(text, kind, errors, name)
    return _import(
        engine,
        kind,
        rows,
        errors,
        actor_label=actor_label,
        source=source,
        name=name,
        origin={"format": "csv"},
        person_check=person_check,
        today=today,
    )


def import_records(
    engine: Engine,
    kind: str,
    header: Sequence[str] | None,
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    *,
    actor_label: str = "api",
    source: str = "api",
    name: str = "records",
    partial: bool = False,
    dry_run: bool = False,
    connection: Connection | None = None,
    person_check: PersonCheck | None = None,
    today: date | None = None,
) -> ImportReport:
    """Validate and upsert in-memory records with the same checks and writes as import_csv.

    Each record is a list of cells in ``header`` order, or a mapping of column to value (a JSON
    object; ``header`` may then be None). Values are text, numbers, dates or None. Row numbers
    in errors are 1-based positions in ``rows``; header problems are reported on row 0. A column
    a mapping leaves out is left alone; None clears it, like an empty CSV cell. ``partial`` and
    ``dry_run``: see _import (a sync writes the good rows and reports the refused ones).
    ``connection``: write inside the caller's transaction (a sync writes every kind of one
    source in one transaction), which then owns the commit. ``person_check``: what the sender
    may not change about people (see storage.people_rows).
    """
    _check_kind(kind)
    errors: list[RowError] = []
    parsed = _read_records(header, rows, kind, errors)
    return _import(
        engine,
        kind,
        parsed,
        errors,
        actor_label=actor_label,
        source=source,
        name=name,
        origin={"format": "records"},
        partial=partial,
        dry_run=dry_run,
        connection=connection,
        person_check=person_check,
        today=today,
    )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown import kind {kind!r} (expected one of {', '.join(KINDS)})")


def _import(
    engine: Engine,
    kind: str,
    rows: list[ImportRow],
    errors: list[RowError],
    *,
    actor_label: str,
    source: str,
    name: str,
    origin: dict[str, str],
    partial: bool = False,
    dry_run: bool = False,
    connection: Connection | None = None,
    person_check: PersonCheck | None = None,
    today: date | None = None,
) -> ImportReport:
    """Check references, then write every row in one transaction, or raise and write nothing.

    ``partial`` (a sync): bad rows are left out and reported in ``refused`` while the good ones
    are written; a problem with the whole batch (its columns) still refuses everything.
    ``dry_run``: everything is checked and written, then rolled back; the report says what
    would have changed. ``connection``: run inside the caller's transaction instead.
    """
    options = {
        "kind": kind,
        "actor_label": actor_label,
        "source": source,
        "name": name,
        "origin": origin,
        "partial": partial,
        "dry_run": dry_run,
        "person_check": person_check,
        # The business date (CSM_TODAY when pinned): ARR changes are dated by it, and readings
        # after it are in the future.
        "today": today or date.today(),
    }
    if connection is not None:
        report = _import_on(connection, rows, errors, **options)
    else:
        with engine.connect() as conn, conn.begin() as tx:
            report = _import_on(conn, rows, errors, **options)
            if dry_run:
                tx.rollback()
    logger.info("imported from %s (%s): %s", name, source, report.summary())
    return report


def _import_on(
    conn: Connection,
    rows: list[ImportRow],
    errors: list[RowError],
    *,
    kind: str,
    actor_label: str,
    source: str,
    name: str,
    origin: dict[str, str],
    partial: bool,
    dry_run: bool,
    today: date,
    person_check: PersonCheck | None,
) -> ImportReport:
    """_import inside an open transaction; raises ImportFailed (the caller rolls back)."""
    # References are checked even when some cells failed, so one run lists every problem.
    _resolve(conn, kind, rows, errors, today=today, person_check=person_check)
    refused: tuple[RowError, ...] = ()
    if errors:
        errors.sort(key=lambda e: (e.row, e.column or ""))
        if not partial or any(e.row == 0 or e.shape for e in errors):
            raise ImportFailed(errors, name=name)
        bad = {e.row for e in errors}
        rows = [r for r in rows if r.line not in bad]
        refused = tuple(errors)
    counts = ImportCounts()
    if rows:
        if kind == "people":
            write_people(conn, rows, counts, actor_label=actor_label, source=source)
        elif kind == "accounts":
            _write_accounts(conn, rows, counts)
        elif kind == "readings":
            _write_readings(conn, rows, counts)
        elif kind == "milestones":
            # Milestone history says how the change arrived ("csv import", "api import").
            note = "csv import" if source == "import" else f"{source} import"
            _write_milestones(conn, rows, counts, actor_label, note)
        else:
            _write_with_account(kind)(conn, rows, counts)
    follow = _follow_renewals(conn, kind, rows, counts)
    # ARR history: every ARR change an import or a sync implies, with the day it took effect.
    record_import_arr(conn, kind, counts.account_ids, source=source, today=today)
    report = ImportReport(
        kind=kind,
        rows=len(rows) + len({e.row for e in refused}),
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        account_ids=frozenset(counts.account_ids),
        refused=refused,
        renewals_created=follow[0],
        renewals_updated=follow[1],
        accounts_dated=follow[2],
        dry_run=dry_run,
    )
    if report.inserted or report.updated:
        # A no-op import leaves no trace, so re-running a sync really changes nothing.
        conn.execute(
            table("audit_log")
            .insert()
            .values(
                at=utcnow(),
                actor_id=None,
                actor_label=actor_label,
                source=source,
                action="import",
                entity=kind,
                entity_id=name,
                before=None,
                after={
                    **origin,
                    "rows": report.rows,
                    "inserted": report.inserted,
                    "updated": report.updated,
                    "unchanged": report.unchanged,
                }
                | ({"refused": len({e.row for e in refused})} if refused else {}),
            )
        )
    return report


def _follow_renewals(
    conn: Connection, kind: str, rows: list[ImportRow], counts: ImportCounts
) -> tuple[int, int, int]:
    """Keep accounts and their open renewals telling one story (storage.renewals)."""
    from storage import renewals

    if kind == "accounts" and rows:
        ids = _lookup(
            conn,
            table("account").c.external_id,
            table("account").c.id,
            {r.values["external_id"] for r in rows},
        )
        created, updated = renewals.follow_accounts(
            conn, set(ids.values()), changed=counts.renewal_terms
        )
        return created, updated, 0
    if kind == "renewals" and counts.account_ids:
        return 0, 0, renewals.follow_renewals(conn, counts.account_ids)
    return 0, 0, 0
