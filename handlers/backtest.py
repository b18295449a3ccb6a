"""Backtest the red forecast: replay every day of the stored history as the nightly recompute
would have seen it, and count each "red within N days" call against what happened."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from domain.backtest import BacktestTable, DayRecord, evaluate
from domain.health_model import HealthModels
from handlers.recompute import (
    FORECAST_WINDOW_DAYS,
    fitted_keys,
    score_day,
    scored_accounts,
    stream_readings,
    stream_surveys,
)
from storage.bulk import table

logger = logging.getLogger(__name__)

HORIZONS = (14, 30)


@dataclass(frozen=True)
class BacktestRun:
    """A replay and its counts."""

    table: BacktestTable
    histories: dict[int, list[DayRecord]]
    first: date
    last: date


def history_span(engine: Engine) -> tuple[date, date] | None:
    """The first and last day with any reading, or None for an empty database."""
    rd = table("indicator_reading")
    with engine.connect() as conn:
        first, last = conn.execute(select(func.min(rd.c.day), func.max(rd.c.day))).one()
    if first is None or last is None:
        return None
    to_date = date.fromisoformat
    return (
        first if isinstance(first, date) else to_date(first),
        last if isinstance(last, date) else to_date(last),
    )


def replay(
    engine: Engine,
    *,
    models: HealthModels,
    first: date,
    last: date,
    account_ids: Iterable[int] | None = None,
) -> dict[int, list[DayRecord]]:
    """Score and forecast every account on every day of [first, last] from the readings and
    survey answers dated up to that day, exactly as recompute does; nothing is written."""
    ids = None if account_ids is None else sorted(set(account_ids))
    fitted = fitted_keys(models)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    histories: dict[int, list[DayRecord]] = {}
    with engine.connect() as conn:
        targets = scored_accounts(conn, first, ids)
        answers = dict(stream_surveys(conn, models, first, last, ids))
        readings = stream_readings(conn, models, first, last, ids)
        next_reading = next(readings, None)
        for account_id, segment, churned_on in targets:
            while next_reading is not None and next_reading[0] < account_id:
                next_reading = next(readings, None)
            series = {}
            if next_reading is not None and next_reading[0] == account_id:
                series = next_reading[1]
                next_reading = next(readings, None)
            model = models.for_segment(segment)
            surveys = answers.get(account_id, {})
            records: list[DayRecord] = []
            for day in days:
                if churned_on is not None and day >= churned_on:
                    break
                result, forecast = score_day(model, series, surveys, day, fitted)
                records.append(DayRecord(day, result.score, result.band, forecast.red_in_days))
            histories[account_id] = records
    return histories


def run_backtest(
    engine: Engine,
    *,
    models: HealthModels,
    first: date | None = None,
    last: date | None = None,
    horizons: Iterable[int] = HORIZONS,
) -> BacktestRun:
    """Replay the history (by default from a full forecast window after the first reading to the
    last reading) and count the forecast's calls and both baselines' in the same run."""
    span = history_span(engine)
    if span is None:
        raise ValueError("there are no readings to backtest (import some, or seed the demo)")
    start = first or span[0] + timedelta(days=FORECAST_WINDOW_DAYS)
    end = last or span[1]
    if end < start:
        raise ValueError(f"nothing to replay between {start} and {end}")
    histories = replay(engine, models=models, first=start, last=end)
    red_max = models.default.bands.red_max
    table_ = evaluate(histories, horizons=horizons, red_max=red_max)
    logger.info("backtest replayed %d accounts from %s to %s", len(histories), start, end)
    return BacktestRun(table_, histories, start, end)
