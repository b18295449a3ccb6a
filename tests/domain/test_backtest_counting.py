"""Backtest counting on a tiny hand-built history: every call, hit and miss accounted for."""

from __future__ import annotations

from datetime import date, timedelta

from domain.backtest import (
    ALL_DAYS,
    BAND_STAYS,
    FORECAST,
    NOT_RED_TODAY,
    SLOPE_7D,
    DayRecord,
    evaluate,
    format_table,
)

D0 = date(2026, 1, 1)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def band(score: float) -> str:
    return "red" if score <= 50 else "green" if score >= 76 else "amber"


def history(scores: list[float], forecasts: list[int | None]) -> list[DayRecord]:
    return [
        DayRecord(day(n), s, band(s), f)
        for n, (s, f) in enumerate(zip(scores, forecasts, strict=True))
    ]


def test_counts_on_a_hand_built_history() -> None:
    # Account 1 slides into red on day 9 and stays; account 2 stays amber throughout.
    falling = [70, 68, 66, 64, 62, 60, 58, 55, 52, 50, 48, 47]
    calls_1 = [None, None, None, None, None, 5, 3, 2, 1, 0, 0, 0]
    flat = [60.0] * 12
    calls_2 = [None, None, None, 2, None, None, None, None, None, None, None, None]
    table = evaluate({1: history(falling, calls_1), 2: history(flat, calls_2)}, horizons=(3,))

    # Evaluable days: those with 3 recorded days after them, days 0..8 for each account.
    # Account 1 turns red on day 9, so "red within 3 days" happened on days 6, 7 and 8.
    forecast = table.get(ALL_DAYS, FORECAST, 3)
    # Calls: account 1 on days 6 (3), 7 (2), 8 (1) -> hits; day 5 (5) is no call; account 2
    # on day 3 (2) -> a false alarm.
    assert (forecast.true_pos, forecast.false_pos, forecast.false_neg) == (3, 1, 0)
    assert forecast.true_neg == 18 - 4
    assert forecast.precision == 0.75 and forecast.recall == 1.0

    stays = table.get(ALL_DAYS, BAND_STAYS, 3)
    assert (stays.calls, stays.positives, stays.recall) == (0, 3, 0.0)  # never red on days 0-8
    assert stays.precision is None  # no calls: undefined, not 0

    slope = table.get(ALL_DAYS, SLOPE_7D, 3)
    # Account 1: day 7 is 55 after 70 on day 0 (-15/7 a day): 55 - 6.4 = 48.6 -> red; day 8:
    # 52 - (16/7) * 3 = 45.1 -> red. Day 6 (58 vs... no day -1): no 7-day history before day 7.
    assert (slope.true_pos, slope.false_pos) == (2, 0)
    assert slope.recall == 2 / 3

    turning = table.get(NOT_RED_TODAY, FORECAST, 3)
    assert turning.total == 18  # nobody was red on days 0-8
    assert (turning.true_pos, turning.false_pos) == (3, 1)


def test_already_red_days_count_for_all_days_only() -> None:
    red = [40.0] * 6
    table = evaluate({1: history(red, [0] * 6)}, horizons=(2,))
    assert table.get(ALL_DAYS, FORECAST, 2).true_pos == 4
    assert table.get(ALL_DAYS, BAND_STAYS, 2).true_pos == 4
    assert table.get(NOT_RED_TODAY, FORECAST, 2).total == 0


def test_a_gap_in_the_history_ends_what_can_be_judged() -> None:
    records = history([60.0] * 5, [None] * 5)
    del records[3]  # day 3 missing: days 1 and 2 cannot see 2 full days ahead
    table = evaluate({1: records}, horizons=(2,))
    assert table.get(ALL_DAYS, FORECAST, 2).total == 1  # only day 0 (days 1, 2 are covered)
    assert table.first_day == table.last_day == day(0)


def test_days_without_a_score_are_not_judged() -> None:
    records = [DayRecord(day(n), None, "insufficient", None) for n in range(5)]
    table = evaluate({1: records}, horizons=(1,))
    assert table.get(ALL_DAYS, FORECAST, 1).total == 0


def test_the_printed_table() -> None:
    table = evaluate({1: history([60.0] * 20, [None] * 20)}, horizons=(14,))
    text = format_table(table)
    assert "Backtest over 1 accounts" in text
    rows = [line.split() for line in text.splitlines()]
    # predictor, N, days, red, calls, hits, precision, recall: no calls and nothing turned red.
    assert ["forecast", "14", "6", "0", "0", "0", "—", "—"] in rows
    assert ["band", "stays", "14", "6", "0", "0", "0", "—", "—"] in rows
