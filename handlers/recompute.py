"""Recompute health snapshots from indicator readings: one day for the scheduler, a range for backfills."""

from __future__ import annotations

import gc
import json
import logging
import time as _time
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import chain, groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Date, MetaData, Select, Table, Text, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from domain.forecast import (
    Columns,
    Forecast,
    Window,
    fit_windows,
    fits_trend,
    forecast_red,
    trend_windows,
    trend_windows_of_columns,
)
from domain.health import OLDEST_READING_DAYS, HealthResult, IndicatorResult, score_health
from domain.numbers import round_half_away
from domain.surveys import survey_reading
from storage.bulk import table

if TYPE_CHECKING:
    from domain.health_model import HealthModel, HealthModels
    from domain.trendfit import TrendFit

logger = logging.getLogger(__name__)

# The forecast fits a trend over this many days of each continuous leading indicator.
FORECAST_WINDOW_DAYS = 28
FORECAST_HORIZON_DAYS = 60
# Days scored, fitted and written together: numpy fits all their trends in a few passes, and
# the upsert is one executemany; a batch of this size stays a few MB.
FIT_BATCH = 500
_FETCH = 1_000
_WINDOW = timedelta(days=FORECAST_WINDOW_DAYS)
_INF = float("inf")
_ACCOUNT = itemgetter(0)
_KEY = itemgetter(1)


@dataclass(frozen=True)
class RecomputeSummary:
    """What a recomputation did: accounts scored, snapshots written, how many lacked data, time."""

    accounts: int
    snapshots: int
    insufficient: int
    seconds: float


def lookback_days(models: HealthModels) -> dict[str, int]:
    """Per indicator key, how many days of readings a range of days reads in full.

    A reading older than its max age no longer counts, and the forecast only looks at the last
    FORECAST_WINDOW_DAYS of continuous leading indicators. Older readings are only read one per
    account and key (the newest), to show as stale.
    """
    need: dict[str, int] = {}
    for model in _all_models(models):
        for ind in model.indicators:
            days = ind.max_age_days
            if fits_trend(ind):
                days = max(days, FORECAST_WINDOW_DAYS)
            need[ind.key] = max(need.get(ind.key, 0), days)
    return need


def fitted_keys(models: HealthModels) -> frozenset[str]:
    """Keys of the indicators the forecast fits a trend to, in any of the models."""
    return frozenset(
        ind.key for m in _all_models(models) for ind in m.indicators if fits_trend(ind)
    )


def _all_models(models: HealthModels) -> list[HealthModel]:
    return [models.default, *models.by_segment.values()]


def _keys_table(cutoffs: dict[str, date], params: dict[str, Any], dialect: str, prefix: str) -> str:
    """A derived table ``(ikey, cutoff)`` of literal rows, one per indicator key.

    Driving the read from accounts x keys lets the database seek the (account, key, day) index
    for each pair instead of scanning every reading ever stored.
    """
    # SQLite stores dates as ISO text, and CAST(... AS DATE) there would turn it into a number.
    cast = (lambda p: p) if dialect == "sqlite" else (lambda p: f"CAST({p} AS DATE)")
    rows = []
    for n, (key, cutoff) in enumerate(sorted(cutoffs.items())):
        params[f"{prefix}k{n}"] = key
        params[f"{prefix}c{n}"] = cutoff
        rows.append(f"SELECT :{prefix}k{n} AS ikey, {cast(f':{prefix}c{n}')} AS cutoff")
    return " UNION ALL ".join(rows)


def readings_queries(
    models: HealthModels,
    first: date,
    last: date,
    account_ids: Sequence[int] | None = None,
    *,
    dialect: str = "sqlite",
) -> list[tuple[str, dict[str, Any]]]:
    """The plain SQL statements (with parameters) that read what scoring ``first``..``last`` needs.

    Each comes back ordered by account, so callers stream them account by account. For a single
    day (the scheduler's daily run) they are:

    * the forecast window: the last FORECAST_WINDOW_DAYS of each continuous leading indicator;
    * the newest reading of every indicator (up to OLDEST_READING_DAYS old: an old one is shown
      as stale, with its age), one index seek per account and key (a 120-day NPS look-back
      would otherwise drag 120 daily rows per account into Python only to keep the newest).

    For a range of days (backfills) every reading inside each indicator's look-back is read,
    plus the newest one before it (what the first days of the range see as stale).
    Shared with the benchmark, which times exactly these reads as its baseline.
    """
    ids_sql = " WHERE a.id IN :ids" if account_ids is not None else ""
    base: dict[str, Any] = {"last": last}
    if account_ids is not None:
        base["ids"] = list(account_ids)
    select_cols = "SELECT r.account_id, r.indicator_key, r.day, r.value FROM account a CROSS JOIN"
    keys_all = {i.key for m in _all_models(models) for i in m.indicators}

    def newest(cutoffs: dict[str, date], oldest: date, prefix: str, *, before: bool) -> tuple:
        params = {k: v for k, v in base.items() if k != "last"} | {"oldest": oldest}
        keys = _keys_table(cutoffs, params, dialect, prefix)
        # The newest day per account and key is one index seek; only that row is then read.
        upper = "x.day < k.cutoff" if before else "x.day <= k.cutoff"
        sql = (
            f"{select_cols} ({keys}) k JOIN indicator_reading r ON r.account_id = a.id "
            "AND r.indicator_key = k.ikey AND r.day = (SELECT MAX(x.day) FROM indicator_reading x "
            f"WHERE x.account_id = a.id AND x.indicator_key = k.ikey AND {upper} "
            f"AND x.day >= :oldest){ids_sql} ORDER BY a.id"
        )
        return sql, params

    if first != last:
        params = dict(base)
        cutoffs = {key: first - timedelta(days=days) for key, days in lookback_days(models).items()}
        keys = _keys_table(cutoffs, params, dialect, "w")
        sql = (
            f"{select_cols} ({keys}) k JOIN indicator_reading r ON r.account_id = a.id "
            "AND r.indicator_key = k.ikey AND r.day >= k.cutoff AND r.day <= :last"
            f"{ids_sql} ORDER BY a.id"
        )
        oldest = first - timedelta(days=OLDEST_READING_DAYS)
        return [(sql, params), newest(cutoffs, oldest, "b", before=True)]

    fitted = fitted_keys(models)
    window_params = dict(base)
    start = last - timedelta(days=FORECAST_WINDOW_DAYS - 1)
    keys = _keys_table(dict.fromkeys(fitted, start), window_params, dialect, "w")
    window = (
        f"{select_cols} ({keys}) k JOIN indicator_reading r ON r.account_id = a.id "
        "AND r.indicator_key = k.ikey AND r.day >= k.cutoff AND r.day <= :last"
        f"{ids_sql} ORDER BY a.id"
    )
    latest = newest(
        dict.fromkeys(keys_all, last), last - timedelta(days=OLDEST_READING_DAYS), "l", before=False
    )
    # A model without continuous leading indicators has nothing to fit a trend to.
    return [(window, window_params), latest] if fitted else [latest]


def _text(sql: str, params: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A text() statement with typed dates and its id list expanded into IN (...)."""
    stmt = text(sql)
    binds = [bindparam(k, type_=Date()) for k, v in params.items() if isinstance(v, date)]
    if "ids" in params:
        binds.append(bindparam("ids", expanding=True))
    return stmt.bindparams(*binds)


Series = dict[str, list[tuple[date, float]]]


class _Days(dict):  # type: ignore[type-arg]
    """Day values as dates, each distinct one parsed once (SQLite hands dates back as ISO text;
    there are only a few hundred distinct days among millions of rows)."""

    def __missing__(self, day: Any) -> date:
        value = day if isinstance(day, date) else date.fromisoformat(day)
        self[day] = value
        return value


@contextmanager
def streamed_batches(
    conn: Connection, sql: str, params: dict[str, Any]
) -> Iterator[Iterator[Sequence[Any]]]:
    """The rows of one of readings_queries' statements, streamed in batches of plain tuples
    (account_id, key, day, value). Shared with the benchmark, whose baseline fetches the same."""
    # Per statement: Connection.execution_options() would switch the whole connection (and so
    # the upserts that follow) to server-side cursors.
    result = conn.execute(_text(sql, params), params, execution_options={"stream_results": True})
    try:
        yield _batches(result, conn.dialect.name == "sqlite")
    finally:
        result.close()


@contextmanager
def _streamed_rows(conn: Connection, sql: str, params: dict[str, Any]) -> Iterator[Iterator[Any]]:
    """streamed_batches, row after row."""
    with streamed_batches(conn, sql, params) as batches:
        yield chain.from_iterable(batches)


def _groups(
    conn: Connection, sql: str, params: dict[str, Any], days: _Days
) -> Iterator[tuple[int, Series]]:
    """(account_id, {key: [(day, value), ...]}) per account, from one statement ordered by account."""
    with _streamed_rows(conn, sql, params) as rows:
        # groupby and the comprehension keep the per-row work in C: this loop sees millions of
        # rows. Rows arrive grouped by account and (in practice) by key; a key seen twice for
        # one account is simply extended.
        for account_id, account_rows in groupby(rows, _ACCOUNT):
            series: Series = {}
            for key, key_rows in groupby(account_rows, _KEY):
                readings = [(days[day], value) for _, _, day, value in key_rows]
                have = series.get(key)
                if have is None:
                    series[key] = readings
                else:
                    have.extend(readings)
            yield account_id, series


def stream_readings(
    conn: Connection,
    models: HealthModels,
    first: date,
    last: date,
    account_ids: Sequence[int] | None = None,
) -> Iterator[tuple[int, Series]]:
    """(account_id, {key: [(day, value), ...] sorted by day}) for each account that has readings.

    Plain Core statements, streamed (server-side cursors on PostgreSQL) and merged by account,
    so memory holds one account at a time however large the portfolio is. For each key the
    newest reading is last in its list.
    """
    days = _Days()
    streams = [
        _groups(conn, sql, params, days)
        for sql, params in readings_queries(
            models, first, last, account_ids, dialect=conn.dialect.name
        )
    ]
    heads = [next(stream, None) for stream in streams]
    while True:
        live = [head[0] for head in heads if head is not None]
        if not live:
            return
        account_id = min(live)
        merged: Series = {}
        for n, head in enumerate(heads):
            if head is None or head[0] != account_id:
                continue
            for key, rows in head[1].items():
                have = merged.get(key)
                if have is None:
                    merged[key] = rows
                else:
                    # The latest-reading stream repeats the window's newest row; add it only
                    # when the window has nothing as recent (a reading older than the window).
                    # The window arrives in day order, so the repeat is nearly always its last
                    # row: check that before searching the whole list.
                    last = have[-1] if have else None
                    have.extend(r for r in rows if r != last and r not in have)
            heads[n] = next(streams[n], None)
        yield account_id, _sorted(merged)


Latest = dict[str, tuple[date, float]]
DayInputs = tuple[Latest, dict[str, Columns]]


def stream_day(
    conn: Connection, models: HealthModels, day: date, account_ids: Sequence[int] | None = None
) -> Iterator[tuple[int, DayInputs]]:
    """What scoring one day needs, per account with readings (in id order): the newest reading
    of each indicator, and the trend window of each fitted one as columns (days, values).

    The same statements as stream_readings(day, day), but the window's rows are never taken
    apart in Python: they are split into columns by zip, in C, and their days stay as the
    driver returns them (ISO text on SQLite, parsed once per distinct run of days by the
    forecast). Only the newest reading per key gets a date. The window's newest row is the
    newest reading the other statement returns, so the two never need merging.
    """
    *window, latest = readings_queries(models, day, day, account_ids, dialect=conn.dialect.name)
    days = _Days()
    with ExitStack() as stack:
        newest = _newest_rows(stack.enter_context(_streamed_rows(conn, *latest)), days)
        # A model without continuous leading indicators has no window to read.
        windows = (
            _window_columns(stack.enter_context(_streamed_rows(conn, *window[0])))
            if window
            else iter(())
        )
        head = next(windows, None)
        for account_id, readings in newest:
            # Every account with a reading in the window has a newest reading (the same row).
            while head is not None and head[0] < account_id:
                head = next(windows, None)
            if head is not None and head[0] == account_id:
                yield account_id, (readings, head[1])
                head = next(windows, None)
            else:
                yield account_id, (readings, {})


def _newest_rows(rows: Iterator[Any], days: _Days) -> Iterator[tuple[int, Latest]]:
    for account_id, account_rows in groupby(rows, _ACCOUNT):
        yield account_id, {key: (days[day], value) for _, key, day, value in account_rows}


def _window_columns(rows: Iterator[Any]) -> Iterator[tuple[int, dict[str, Columns]]]:
    # groupby and zip keep the per-row work in C: this loop sees nearly a million rows. Rows
    # arrive grouped by account and (in practice) by key; a key seen twice is joined up (the
    # forecast sorts a window whose days are out of order).
    for account_id, account_rows in groupby(rows, _ACCOUNT):
        columns: dict[str, Columns] = {}
        for key, key_rows in groupby(account_rows, _KEY):
            _, _, day_column, value_column = zip(*key_rows, strict=True)
            have = columns.get(key)
            if have is None:
                columns[key] = (day_column, value_column)
            else:
                columns[key] = (
                    (*have[0], *day_column),
                    (*have[1], *value_column),
                )
        yield account_id, columns


def _batches(result: Any, sqlite: bool) -> Iterator[Sequence[Any]]:
    """Lists of rows from a result, as cheaply as the backend allows."""
    if sqlite:
        # Millions of rows: plain tuples straight from the driver's cursor. SQLAlchemy's Row
        # wrapping costs more than SQLite needs to produce them, and pysqlite results are not
        # pre-buffered, so nothing is skipped.
        while batch := result.cursor.fetchmany(_FETCH):
            yield batch
    else:
        # A server-side cursor whose first rows SQLAlchemy has already buffered: go through it.
        yield from result.partitions(_FETCH)


def _sorted(series: dict[str, list[tuple[date, float]]]) -> dict[str, list[tuple[date, float]]]:
    # The index usually delivers rows by day already; sorting a sorted list is linear.
    for lst in series.values():
        lst.sort()
    return series


def scored_accounts(
    conn: Connection, first: date, account_ids: Sequence[int] | None
) -> list[tuple[int, str | None, date | None]]:
    """(id, segment, churned_on) of the accounts to score, in id order.

    A churned customer has no health from the day it churned, so those are left out.
    """
    rows = conn.execute(_accounts_statement(first, account_ids)).all()
    return [(row[0], row[1], row[2]) for row in rows]


def _accounts_statement(first: date, account_ids: Sequence[int] | None) -> Select[Any]:
    acc = table("account")
    stmt = (
        select(acc.c.id, acc.c.segment, acc.c.churned_on)
        .where((acc.c.churned_on.is_(None)) | (acc.c.churned_on > first))
        .order_by(acc.c.id)
    )
    if account_ids is not None:
        stmt = stmt.where(acc.c.id.in_(account_ids))
    return stmt


def side_reads(
    models: HealthModels, first: date, last: date, account_ids: Sequence[int] | None = None
) -> list[tuple[Select[Any], dict[str, Any]]]:
    """The statements (with parameters) a recompute runs besides readings_queries: the accounts
    to score and the survey answers. Shared with the benchmark, whose baseline reads them too."""
    reads = [(_accounts_statement(first, account_ids), {})]
    surveys = _surveys_statement(models, first, last, account_ids)
    if surveys is not None:
        reads.append(surveys)
    return reads


_JSON_COLUMNS = ("indicator_scores", "drivers")


@lru_cache(maxsize=1)
def _snapshot_text_table() -> Table:
    """health_snapshot with its JSON columns bound as text that is already JSON (SQLite only,
    where JSON is stored as text anyway): recompute serializes them through _JsonText."""
    snap = table("health_snapshot")
    return Table(
        snap.name,
        MetaData(),
        *(Column(c.name, Text() if c.name in _JSON_COLUMNS else c.type) for c in snap.columns),
    )


def _json_number(x: Any) -> str:
    """A number (or None) exactly as json.dumps writes it."""
    kind = x.__class__
    if kind is float:
        # json writes a finite float as float.__repr__ (x - x is NaN for NaN and infinities).
        return repr(x) if x - x == 0 else json.dumps(x)
    if kind is int:
        return repr(x)
    return "null" if x is None else json.dumps(x)  # anything unusual, as json writes it


class _JsonText:
    """The snapshot's JSON columns as the exact text json.dumps gives for
    HealthResult.indicator_scores_json() and drivers_json(), each distinct entry formatted once.

    JSON encoding is a large part of a recompute, and most of it is formatting floats. Across a
    portfolio most entries repeat (readings have one decimal; the same sentiment, no overdue
    invoices ...), so each entry's text is kept under the raw values it is made of. A zero is
    keyed by its text: 0.0 and -0.0 are equal (and hash alike) but print differently.
    """

    # Enough for every distinct entry of a large portfolio's day; a long backfill starts over.
    MAX_ENTRIES = 200_000

    def __init__(self) -> None:
        self._scores: dict[tuple[Any, ...], str] = {}
        self._drivers: dict[tuple[Any, ...], str] = {}

    def scores(self, result: HealthResult) -> str:
        cache = self._scores
        pieces = []
        for r in result.indicators:
            value, score, effective, weight = r.value, r.score, r.effective_weight, r.weight
            # The result itself is the key when none of its numbers is zero and the weight is
            # a float, as nearly always (25 == 25.0 and -0.0 == 0.0, but each prints its own).
            if value and score and effective and weight.__class__ is float:
                key: Any = r
            else:
                key = (
                    r.key,
                    r.label,
                    r.kind,
                    value if value else repr(value),
                    score if score else repr(score),
                    r.day,
                    r.age_days,
                    r.status,
                    weight if weight.__class__ is float else repr(weight),
                    effective if effective else repr(effective),
                    r.responses,
                )
            piece = cache.get(key)
            if piece is None:
                piece = self._score_entry(r)
                if len(cache) >= self.MAX_ENTRIES:
                    cache.clear()
                cache[key] = piece
            pieces.append(piece)
        return "{" + ", ".join(pieces) + "}"

    @staticmethod
    def _score_entry(r: IndicatorResult) -> str:
        num = _json_number
        score = "null" if r.score is None else num(round_half_away(r.score))
        day = "null" if r.day is None else '"' + r.day.isoformat() + '"'
        piece = (
            f"{json.dumps(r.key)}: {{"
            f'"label": {json.dumps(r.label)}, "kind": {json.dumps(r.kind)}, '
            f'"value": {num(r.value)}, "score": {score}, "day": {day}, '
            f'"age_days": {num(r.age_days)}, "status": {json.dumps(r.status)}, '
            f'"weight": {num(r.weight)}, "effective_weight": {num(round(r.effective_weight, 4))}'
        )
        if r.responses is not None:
            piece += f', "responses": {num(r.responses)}'
        return piece + "}"

    def drivers(self, result: HealthResult) -> str:
        cache = self._drivers
        num = _json_number
        pieces = []
        for d in result.drivers:
            value, score, weight = d.value, d.score, d.weight
            if value and score and weight.__class__ is float:
                key: Any = d  # as for the scores
            else:
                key = (
                    d.key,
                    d.label,
                    d.kind,
                    value if value else repr(value),
                    score if score else repr(score),
                    weight if weight.__class__ is float else repr(weight),
                    d.impact,  # above zero: a driver pulls the score down
                )
            piece = cache.get(key)
            if piece is None:
                piece = (
                    f'{{"key": {json.dumps(d.key)}, "label": {json.dumps(d.label)}, '
                    f'"kind": {json.dumps(d.kind)}, "value": {num(d.value)}, '
                    f'"score": {num(round_half_away(d.score))}, "weight": {num(d.weight)}, '
                    f'"impact": {num(round_half_away(d.impact))}}}'
                )
                if len(cache) >= self.MAX_ENTRIES:
                    cache.clear()
                cache[key] = piece
            pieces.append(piece)
        return "[" + ", ".join(pieces) + "]"


def _upsert_statement(conn: Connection):  # type: ignore[no-untyped-def]
    sqlite_db = conn.dialect.name == "sqlite"
    snap = _snapshot_text_table() if sqlite_db else table("health_snapshot")
    insert = sqlite.insert if sqlite_db else postgresql.insert
    stmt = insert(snap)
    # A snapshot recomputed for the same account and day overwrites every other column.
    return stmt.on_conflict_do_update(
        index_elements=[snap.c.account_id, snap.c.day],
        set_={col: stmt.excluded[col] for col in _SNAPSHOT_COLUMNS if col not in _SNAPSHOT_KEY},
    )


Surveys = dict[str, list[tuple[date, int]]]


def prepare_day(
    model: HealthModel,
    series: Series,
    surveys: Surveys,
    day: date,
    fitted: frozenset[str],
    in_range: bool = False,
) -> tuple[HealthResult, dict[str, Window]]:
    """Score one account on one day from its (day-sorted) readings and survey answers, and the
    trend windows its forecast needs (none when it is red already: nothing to forecast).

    ``in_range`` says every reading is on or before ``day`` (saves the search). Survey answers in
    a survey-fed indicator's window are its value (the newest imported reading otherwise).
    """
    latest: dict[str, tuple[date, float]] = {}
    window: dict[str, list[tuple[date, float]]] = {}
    window_start = (day - _WINDOW, _INF)
    for key, lst in series.items():
        end = len(lst) if in_range else bisect_right(lst, (day, _INF))
        if not end:
            continue
        latest[key] = last = lst[end - 1]
        if key in fitted:
            # The forecast fits a trend through the last FORECAST_WINDOW_DAYS only; handing it
            # older rows would just make it skip them one by one.
            start = bisect_right(lst, window_start, 0, end)
            window[key] = lst[start:end] if start < end else [last]
    result = _score_with_surveys(model, latest, surveys, day)
    if result.band == "red" or not window:
        return result, {}
    return result, trend_windows(model, window, day, window_days=FORECAST_WINDOW_DAYS)


def prepare_one_day(
    model: HealthModel, inputs: DayInputs, surveys: Surveys, day: date
) -> tuple[HealthResult, dict[str, Window]]:
    """prepare_day from stream_day's inputs (the recompute of a single day)."""
    latest, columns = inputs
    result = _score_with_surveys(model, latest, surveys, day)
    if result.band == "red" or not columns:
        return result, {}
    return result, trend_windows_of_columns(model, columns, day, window_days=FORECAST_WINDOW_DAYS)


def _score_with_surveys(
    model: HealthModel, latest: Latest, surveys: Surveys, day: date
) -> HealthResult:
    """score_health of the newest readings, survey answers in a survey-fed indicator's window
    taking the place of its reading."""
    responses: dict[str, int] | None = None
    if surveys:
        for ind in model.survey_fed:
            answers = surveys.get(ind.survey or "")
            if not answers:
                continue
            reading = survey_reading(ind.survey or "", answers, day, ind.survey_window)
            if reading is not None:
                if responses is None:
                    latest = dict(latest)  # the caller's readings stay as they were
                    responses = {}
                latest[ind.key] = (reading.newest, reading.value)
                responses[ind.key] = reading.responses
    return score_health(model, latest, day, responses=responses)


def finish_day(
    model: HealthModel, result: HealthResult, day: date, fits: dict[str, TrendFit]
) -> Forecast:
    """The forecast from a prepared day and the fits of its trend windows."""
    return forecast_red(
        model,
        None,
        day,
        horizon_days=FORECAST_HORIZON_DAYS,
        window_days=FORECAST_WINDOW_DAYS,
        # The projection starts from exactly this score (never a second scoring of the same day).
        current=result,
        fits=fits,
    )


def score_day(
    model: HealthModel,
    series: Series,
    surveys: Surveys,
    day: date,
    fitted: frozenset[str],
    in_range: bool = False,
) -> tuple[HealthResult, Forecast]:
    """Score one account on one day and forecast from there: what recompute stores and the
    backtest replays (recompute does the same in batches: prepare_day, fit_windows, finish_day)."""
    result, windows = prepare_day(model, series, surveys, day, fitted, in_range)
    return result, finish_day(model, result, day, fit_windows([windows])[0])


# The columns recompute writes, in the order _snapshot_values gives them.
_SNAPSHOT_COLUMNS = (
    "account_id",
    "day",
    "score",
    "band",
    "coverage",
    "model_name",
    "indicator_scores",
    "drivers",
    "forecast_red_in_days",
    "forecast_red_earliest",
    "forecast_red_latest",
    "forecast_status",
    "computed_at",
)
_SNAPSHOT_KEY = ("account_id", "day")
_SCORE = _SNAPSHOT_COLUMNS.index("score")


def _snapshot_values(
    account_id: int,
    day: Any,
    model: HealthModel,
    result: HealthResult,
    forecast: Forecast,
    computed_at: Any,
    as_text: _JsonText | None = None,
) -> tuple[Any, ...]:
    """One account's snapshot for one day, in _SNAPSHOT_COLUMNS order.

    With ``as_text`` the JSON columns come as JSON text (for _snapshot_text_table), else as
    the plain data the JSON column type serializes.
    """
    return (
        account_id,
        day,
        result.score,
        result.band,
        result.coverage,
        model.name,
        result.indicator_scores_json() if as_text is None else as_text.scores(result),
        result.drivers_json() if as_text is None else as_text.drivers(result),
        forecast.red_in_days,
        forecast.red_in_days_earliest,
        forecast.red_in_days_latest,
        forecast.status,
        computed_at,
    )


class _SnapshotWriter:
    """Upserts snapshot rows given as _snapshot_values tuples.

    On SQLite the upsert is compiled once and the rows go to the driver's executemany with
    each value already as SQLAlchemy would bind it (the day and computed_at converted once, not
    per row): SQLAlchemy's per-row parameter processing costs about half of SQLite's insert.
    Elsewhere each row becomes the dict SQLAlchemy's upsert takes.
    """

    def __init__(self, conn: Connection, computed_at: datetime) -> None:
        self._upsert = _upsert_statement(conn)
        self.as_text = _JsonText() if conn.dialect.name == "sqlite" else None
        self.computed_at: Any = computed_at
        self._sql: str | None = None
        self._day_values: dict[date, Any] = {}
        if self.as_text is None:
            return
        dialect = conn.dialect
        compiled = self._upsert.compile(dialect=dialect, column_keys=list(_SNAPSHOT_COLUMNS))
        if compiled.positiontup is None or tuple(compiled.positiontup) != _SNAPSHOT_COLUMNS:
            return  # not the plain positional statement expected: let SQLAlchemy bind
        columns = self._upsert.table.c
        processors = [
            columns[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in _SNAPSHOT_COLUMNS
        ]
        self._sql = str(compiled)
        self._bind_day = processors[1]
        at = processors[-1]
        self.computed_at = computed_at if at is None else at(computed_at)
        # Per-row processors other than the day's and computed_at's, applied above.
        self._per_row = [(n, f) for n, f in enumerate(processors[2:-1], 2) if f is not None]

    def day(self, day: date) -> Any:
        """The day as the rows carry it (already bound on SQLite)."""
        if self._sql is None or self._bind_day is None:
            return day
        value = self._day_values.get(day)
        if value is None:
            value = self._day_values[day] = self._bind_day(day)
        return value

    def write(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if self._sql is None:
            conn.execute(
                self._upsert, [dict(zip(_SNAPSHOT_COLUMNS, row, strict=True)) for row in rows]
            )
            return
        if self._per_row:
            processed = []
            for row in rows:
                values = list(row)
                for n, process in self._per_row:
                    values[n] = process(values[n])
                processed.append(tuple(values))
            rows = processed
        conn.exec_driver_sql(self._sql, rows)


def survey_kinds(models: HealthModels) -> dict[str, int]:
    """Survey kinds that feed an indicator, with the longest window any model reads them over."""
    kinds: dict[str, int] = {}
    for model in _all_models(models):
        for ind in model.survey_fed:
            kind = ind.survey or ""
            kinds[kind] = max(kinds.get(kind, 0), ind.survey_window)
    return kinds


def stream_surveys(
    conn: Connection,
    models: HealthModels,
    first: date,
    last: date,
    account_ids: Sequence[int] | None = None,
) -> Iterator[tuple[int, Surveys]]:
    """(account_id, {kind: [(day, score), ...] by day}) for the accounts with answers that feed an
    indicator on some day in [first, last], in account order."""
    statement = _surveys_statement(models, first, last, account_ids)
    if statement is None:
        return
    current: int | None = None
    answers: Surveys = {}
    # .all(): one fetch of a few thousand rows, cheaper than row after row.
    for account_id, kind, day, score in conn.execute(*statement).all():
        if account_id != current:
            if current is not None:
                yield current, answers
            current, answers = account_id, {}
        answers.setdefault(kind, []).append((day, score))
    if current is not None:
        yield current, answers


def _surveys_statement(
    models: HealthModels, first: date, last: date, account_ids: Sequence[int] | None
) -> tuple[Select[Any], dict[str, Any]] | None:
    """The survey answers that feed an indicator on some day in [first, last]; None when no
    indicator is survey-fed."""
    kinds = survey_kinds(models)
    if not kinds:
        return None
    srv = table("survey_response")
    stmt = (
        select(srv.c.account_id, srv.c.kind, srv.c.responded_on, srv.c.score)
        .where(
            srv.c.kind.in_(sorted(kinds)),
            srv.c.responded_on >= first - timedelta(days=max(kinds.values())),
            srv.c.responded_on <= last,
        )
        .order_by(srv.c.account_id, srv.c.kind, srv.c.responded_on)
    )
    if account_ids is not None:
        stmt = stmt.where(srv.c.account_id.in_(bindparam("ids", expanding=True)))
    return stmt, ({"ids": list(account_ids)} if account_ids is not None else {})


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Cyclic garbage collection off while scoring.

    Scoring allocates millions of short-lived tuples and lists that reference counting frees
    at once and that never form cycles; the collector would run thousands of times over them
    (and the process's long-lived objects) and free nothing, about 6% of a 10k-account run.
    The previous state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _compute(
    engine: Engine,
    *,
    first: date,
    last: date,
    models: HealthModels,
    account_ids: Iterable[int] | None,
) -> tuple[int, int, int]:
    """Score every selected account on every day in [first, last]; returns the three counts."""
    ids = None if account_ids is None else sorted(set(account_ids))
    fitted = fitted_keys(models)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    single = len(days) == 1
    computed_at = datetime.now(UTC)
    accounts = snapshots = insufficient = 0
    with _gc_paused(), engine.begin() as conn:
        writer = _SnapshotWriter(conn, computed_at)
        as_text, at = writer.as_text, writer.computed_at
        targets = scored_accounts(conn, first, ids)
        readings: Iterator[tuple[int, Any]]
        if single:
            # The nightly run: each account's newest readings and trend windows, nothing more.
            readings = stream_day(conn, models, first, ids)
            no_readings: Any = ({}, {})
        else:
            readings = stream_readings(conn, models, first, last, ids)
            no_readings = {}
        # Survey answers are few (a handful per account and quarter): read them all up front.
        answers = dict(stream_surveys(conn, models, first, last, ids))
        model_for = {}
        prepared: list[tuple[int, date, HealthModel, HealthResult, dict[str, Window]]] = []

        def flush() -> int:
            """Fit the prepared days' trends in one go, forecast, and write their snapshots."""
            nonlocal snapshots
            if not prepared:
                return 0
            fits = fit_windows([item[4] for item in prepared])
            rows = [
                _snapshot_values(
                    account_id,
                    writer.day(day),
                    model,
                    result,
                    finish_day(model, result, day, fit),
                    at,
                    as_text,
                )
                for (account_id, day, model, result, _), fit in zip(prepared, fits, strict=True)
            ]
            prepared.clear()
            writer.write(conn, rows)
            snapshots += len(rows)
            return sum(1 for row in rows if row[_SCORE] is None)

        next_reading = next(readings, None)
        for account_id, segment, churned_on in targets:
            # Merge the account list with the reading stream: accounts without any reading in
            # the window still get a snapshot ("insufficient data"), never a gap.
            while next_reading is not None and next_reading[0] < account_id:
                next_reading = next(readings, None)
            if next_reading is not None and next_reading[0] == account_id:
                inputs = next_reading[1]
                next_reading = next(readings, None)
            else:
                inputs = no_readings
            model = model_for.get(segment)
            if model is None:
                model = model_for[segment] = models.for_segment(segment)
            accounts += 1
            surveys = answers.get(account_id, {})
            for day in days:
                if churned_on is not None and day >= churned_on:
                    break
                if single:
                    result, windows = prepare_one_day(model, inputs, surveys, day)
                else:
                    result, windows = prepare_day(model, inputs, surveys, day, fitted)
                prepared.append((account_id, day, model, result, windows))
            if len(prepared) >= FIT_BATCH:
                insufficient += flush()
        insufficient += flush()
    return accounts, snapshots, insufficient


def recompute_health(
    engine: Engine,
    *,
    as_of: date,
    models: HealthModels,
    account_ids: Iterable[int] | None = None,
) -> RecomputeSummary:
    """Write (or overwrite) every selected account's health snapshot for ``as_of``.

    Works the same on SQLite and PostgreSQL: one streamed read of the readings the models can
    use, scoring per account with the model of its segment, batched upserts in one transaction.
    """
    started = _time.perf_counter()
    accounts, snapshots, insufficient = _compute(
        engine, first=as_of, last=as_of, models=models, account_ids=account_ids
    )
    seconds = _time.perf_counter() - started
    logger.info(
        "recomputed health for %d accounts as of %s (%d insufficient) in %.2fs",
        accounts,
        as_of,
        insufficient,
        seconds,
    )
    return RecomputeSummary(accounts, snapshots, insufficient, seconds)


def backfill_snapshots(
    engine: Engine,
    *,
    start: date,
    end: date,
    models: HealthModels,
    account_ids: Iterable[int] | None = None,
) -> int:
    """One snapshot per account per day in [start, end], so 7- and 30-day trends have history."""
    if end < start:
        raise ValueError(f"backfill range is empty: {start} > {end}")
    total = 0
    # Slices of days keep each account's in-memory history small for long backfills.
    for first_day in range(0, (end - start).days + 1, 120):
        first = start + timedelta(days=first_day)
        last = min(end, first + timedelta(days=119))
        total += _compute(engine, first=first, last=last, models=models, account_ids=account_ids)[1]
    return total
