"""Survey answers as indicator values: NPS, CSAT and CES over a window ending on the day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain import metrics
from domain.surveys import survey_reading

DAY = date(2026, 11, 23)


def ago(n: int) -> date:
    return DAY - timedelta(days=n)


def test_nps_over_the_window_counts_both_ends() -> None:
    answers = [(ago(130), 0), (ago(119), 10), (ago(60), 9), (ago(30), 6), (ago(0), 8)]
    reading = survey_reading("nps", answers, DAY, 120)
    assert reading is not None
    # Day 119 is the window's first day (120 days with today); day 130 is outside it.
    assert reading.responses == 4
    assert reading.value == metrics.nps([10, 9, 6, 8]) == 25.0
    assert (reading.first_day, reading.last_day, reading.newest) == (ago(119), DAY, DAY)


def test_answers_after_the_day_are_not_seen() -> None:
    answers = [(ago(10), 9), (DAY + timedelta(days=1), 0)]
    reading = survey_reading("nps", answers, DAY, 90)
    assert reading is not None and (reading.value, reading.responses) == (100.0, 1)


@pytest.mark.parametrize(
    ("kind", "scores", "value"),
    [("csat", [5, 4, 2, 1], 50.0), ("ces", [7, 5, 6], 6.0), ("nps", [9, 10, 0], 100 / 3)],
)
def test_each_kind_uses_its_formula(kind: str, scores: list[int], value: float) -> None:
    reading = survey_reading(kind, [(ago(n), s) for n, s in enumerate(scores)][::-1], DAY, 30)
    assert reading is not None
    assert reading.value == pytest.approx(value)


def test_no_answers_in_the_window() -> None:
    assert survey_reading("nps", [(ago(200), 9)], DAY, 120) is None
    assert survey_reading("nps", [], DAY, 120) is None
