"""Survey answers as indicator values: the NPS, CSAT or CES of the answers in a window of days."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from domain import metrics

SCORERS: dict[str, Callable[[Iterable[int]], float | None]] = {
    "nps": metrics.nps,
    "csat": metrics.csat,
    "ces": metrics.ces,
}


@dataclass(frozen=True)
class SurveyReading:
    """What a window of answers says: the value, how many answers, and the window itself."""

    kind: str
    value: float
    responses: int
    first_day: date  # the window, both ends included
    last_day: date
    newest: date  # the day of the newest answer in the window (the reading's date)


def window_start(as_of: date, window_days: int) -> date:
    """The first day of a window of ``window_days`` days that ends on ``as_of`` (both included)."""
    return as_of - timedelta(days=window_days - 1)


def survey_reading(
    kind: str, answers: Sequence[tuple[date, int]], as_of: date, window_days: int
) -> SurveyReading | None:
    """The survey figure over the ``window_days`` days ending on ``as_of``; None without answers.

    ``answers`` are (day, score) sorted by day. The same function answers "Acme's NPS over the last
    120 days" and gives the "Account NPS" indicator its value, so the two cannot disagree.
    """
    first = window_start(as_of, window_days)
    lo = bisect_left(answers, (first,))
    hi = bisect_right(answers, (as_of, float("inf")))
    if hi <= lo:
        return None
    in_window = answers[lo:hi]
    value = SCORERS[kind](score for _, score in in_window)
    if value is None:  # pragma: no cover - only without answers, excluded above
        return None
    return SurveyReading(kind, value, len(in_window), first, as_of, in_window[-1][0])
