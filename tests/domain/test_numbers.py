"""Health numbers print with one decimal, rounded half away from zero, everywhere."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal

import pytest

from bot.render import signed
from domain.numbers import format_score, format_signed, round_half_away, shown_score


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (-16.5, 0, -17.0),  # round() gives -16: halves go to even
        (16.5, 0, 17.0),
        (2.675, 2, 2.68),  # binary 2.67499999...: people still read 2.675
        (16.45, 1, 16.5),
        (-16.45, 1, -16.5),
        (75.94, 1, 75.9),
        (75.95, 1, 76.0),
        (50.05, 1, 50.1),
        (-0.04, 1, 0.0),
        (54.2 - 70.7, 1, -16.5),  # -16.500000000000004
    ],
)
def test_round_half_away_from_zero(value: float, digits: int, expected: float) -> None:
    assert round_half_away(value, digits) == expected


def test_round_half_away_agrees_with_decimal_everywhere() -> None:
    rng = random.Random(5)
    for _ in range(20_000):
        value = round(rng.uniform(-200, 200), rng.choice((1, 2, 3, 6)))
        for digits in (0, 1, 2):
            exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)
            assert round_half_away(value, digits) == float(exact) + 0.0, (value, digits)


def test_signed_changes_keep_their_half() -> None:
    # The card printed a 30-day change of -16.5 as "−16".
    assert format_signed(-16.5) == "−16.5"
    assert format_signed(54.2 - 70.7) == "−16.5"
    assert format_signed(3) == "+3.0"
    assert format_signed(0.04) == "±0"
    assert format_signed(None) == "—"
    assert signed(-16.5) == "−16.5"  # the template filter is the same rule
    assert signed(None) == "—"


def test_scores_show_one_decimal() -> None:
    assert format_score(75.9) == "75.9"
    assert format_score(76) == "76.0"
    assert format_score(None) == "—"
    assert shown_score(66.45) == 66.5
    assert shown_score(None) is None
