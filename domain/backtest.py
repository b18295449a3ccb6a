"""Backtest counting: replayed "red within N days" calls against what happened, for the forecast
and two naive baselines, as precision and recall."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from domain.numbers import round_half_away

FORECAST = "forecast"
BAND_STAYS = "band stays"
SLOPE_7D = "7-day slope"
PREDICTORS = (FORECAST, BAND_STAYS, SLOPE_7D)
ALL_DAYS = "all account-days"
NOT_RED_TODAY = "not red on the day"
POPULATIONS = (ALL_DAYS, NOT_RED_TODAY)


@dataclass(frozen=True)
class DayRecord:
    """One account on one replayed day: its score and band, and the forecast made that day."""

    day: date
    score: float | None
    band: str
    forecast_red_in_days: int | None  # 0 = already red; None = no red within the horizon


@dataclass
class Counts:
    """A confusion matrix of "red within N days" calls."""

    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0
    true_neg: int = 0

    def add(self, predicted: bool, happened: bool) -> None:
        if predicted and happened:
            self.true_pos += 1
        elif predicted:
            self.false_pos += 1
        elif happened:
            self.false_neg += 1
        else:
            self.true_neg += 1

    @property
    def calls(self) -> int:
        return self.true_pos + self.false_pos

    @property
    def positives(self) -> int:
        return self.true_pos + self.false_neg

    @property
    def total(self) -> int:
        return self.true_pos + self.false_pos + self.false_neg + self.true_neg

    @property
    def precision(self) -> float | None:
        """Of the "red within N days" calls, the share that came true; None without calls."""
        return None if self.calls == 0 else self.true_pos / self.calls

    @property
    def recall(self) -> float | None:
        """Of the times it turned red within N days, the share that was called; None if never."""
        return None if self.positives == 0 else self.true_pos / self.positives


@dataclass(frozen=True)
class BacktestTable:
    """Counts per (population, predictor, horizon), all from one replay."""

    horizons: tuple[int, ...]
    counts: Mapping[tuple[str, str, int], Counts]
    accounts: int
    first_day: date | None
    last_day: date | None

    def get(self, population: str, predictor: str, horizon: int) -> Counts:
        return self.counts[(population, predictor, horizon)]


def _forecast_says_red(record: DayRecord, horizon: int) -> bool:
    return record.forecast_red_in_days is not None and record.forecast_red_in_days <= horizon


def _slope_says_red(
    record: DayRecord, week_ago: DayRecord | None, horizon: int, red_max: float
) -> bool:
    """Red now, or the overall score's change over the last 7 days, continued, reaches red."""
    if record.band == "red":
        return True
    if week_ago is None or week_ago.score is None or record.score is None:
        return False
    slope = (record.score - week_ago.score) / 7
    return slope < 0 and round_half_away(record.score + slope * horizon) <= red_max


def evaluate(
    histories: Mapping[int, Sequence[DayRecord]],
    *,
    horizons: Iterable[int] = (14, 30),
    red_max: float = 50.0,
) -> BacktestTable:
    """Count every call each predictor makes against what the history shows happened.

    An account-day counts when it has a score and the history covers the N days after it (a day
    without a record breaks the coverage). "Happened" means red on at least one of those N days.
    The baselines: "band stays" calls red within N days exactly when the account is red today;
    "7-day slope" continues the overall score's change over the last 7 days for N days. Each
    population is counted separately: every account-day, and only those not red on the day
    (turning red, where "band stays" by definition never calls anything).
    """
    spans = tuple(sorted(set(horizons)))
    counts = {(pop, pred, n): Counts() for pop in POPULATIONS for pred in PREDICTORS for n in spans}
    first: date | None = None
    last: date | None = None
    accounts = 0
    for records in histories.values():
        by_day = {r.day: r for r in records}
        if not by_day:
            continue
        accounts += 1
        for record in records:
            if record.score is None:
                continue
            week_ago = by_day.get(record.day - timedelta(days=7))
            red_after = _red_days_after(by_day, record.day, spans[-1])
            if red_after is None:
                continue
            covered, red_on = red_after
            red_now = record.band == "red"
            for n in spans:
                if covered < n:
                    continue
                happened = any(k <= n for k in red_on)
                calls = {
                    FORECAST: _forecast_says_red(record, n),
                    BAND_STAYS: red_now,
                    SLOPE_7D: _slope_says_red(record, week_ago, n, red_max),
                }
                for pred, said in calls.items():
                    counts[(ALL_DAYS, pred, n)].add(said, happened)
                    if not red_now:
                        counts[(NOT_RED_TODAY, pred, n)].add(said, happened)
                first = record.day if first is None or record.day < first else first
                last = record.day if last is None or record.day > last else last
    return BacktestTable(spans, counts, accounts, first, last)


def _red_days_after(
    by_day: Mapping[date, DayRecord], day: date, horizon: int
) -> tuple[int, list[int]] | None:
    """(how many following days the history covers, up to horizon; the offsets that were red)."""
    red_on: list[int] = []
    covered = 0
    for k in range(1, horizon + 1):
        record = by_day.get(day + timedelta(days=k))
        if record is None:
            break
        covered = k
        if record.band == "red":
            red_on.append(k)
    return (covered, red_on) if covered else None


def format_table(table: BacktestTable) -> str:
    """The table `csm-bot backtest` prints: precision and recall per predictor and horizon."""
    lines = []
    span = (
        f"{table.first_day.isoformat()} to {table.last_day.isoformat()}"
        if table.first_day and table.last_day
        else "no evaluable days"
    )
    lines.append(f"Backtest over {table.accounts} accounts, forecast days {span}")
    for pop in POPULATIONS:
        lines.append("")
        lines.append(f"{pop}:")
        header = f"  {'predictor':<12} {'N':>3} {'days':>7} {'red':>6} {'calls':>6} {'hits':>6} {'precision':>9} {'recall':>7}"
        lines.append(header)
        for n in table.horizons:
            for pred in PREDICTORS:
                c = table.get(pop, pred, n)
                lines.append(
                    f"  {pred:<12} {n:>3} {c.total:>7} {c.positives:>6} {c.calls:>6} "
                    f"{c.true_pos:>6} {_pct(c.precision):>9} {_pct(c.recall):>7}"
                )
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{round_half_away(value * 100):.1f}%"
