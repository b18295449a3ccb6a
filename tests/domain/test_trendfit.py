"""Theil–Sen slope, its range and the Mann–Kendall test, checked by hand and by brute force."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from domain.trendfit import theil_sen


def test_one_outlier_cannot_tilt_the_slope() -> None:
    # Least squares through these points has slope 19.6; the median pair slope is 1.
    fit = theil_sen([0, 1, 2, 3, 4], [1, 2, 3, 4, 100])
    assert fit is not None
    assert fit.slope == 1.0
    assert fit.intercept == 1.0


def test_a_perfectly_monotone_series() -> None:
    fit = theil_sen(range(7), [10, 12, 14, 16, 18, 20, 22])
    assert fit is not None
    # S = 21 concordant pairs; var = 7 * 6 * 19 / 18 = 44.33; z = (21 - 1) / sqrt(44.33) = 3.00.
    assert fit.z == pytest.approx(20 / math.sqrt(7 * 6 * 19 / 18))
    assert fit.significant and fit.clear
    assert (fit.slope, fit.slope_low, fit.slope_high) == (2.0, 2.0, 2.0)


def test_no_trend_in_a_constant_series() -> None:
    fit = theil_sen(range(10), [5.0] * 10)
    assert fit is not None
    assert (fit.slope, fit.z, fit.significant) == (0.0, 0.0, False)


def test_too_few_points() -> None:
    assert theil_sen([0, 1], [1, 2]) is None
    assert theil_sen([3, 3, 3], [1, 2, 3]) is None  # one distinct day: no slope


def test_a_recovery_breaks_the_trend() -> None:
    xs = list(range(-27, 1))
    ys = [45 - 1.4 * x for x in xs[:-3]] + [62.0, 68.0, 72.0]  # slide, then three days up
    fit = theil_sen(xs, ys)
    assert fit is not None
    assert fit.significant and fit.broken and not fit.clear


def _naive(xs: list[int], ys: list[float]) -> tuple[float, float, float, float]:
    slopes = sorted(
        (y2 - y1) / (x2 - x1)
        for (x1, y1), (x2, y2) in itertools.combinations(zip(xs, ys, strict=True), 2)
        if x2 != x1
    )
    n = len(xs)
    s = sum((y2 > y1) - (y2 < y1) for y1, y2 in itertools.combinations(ys, 2))
    ties = [ys.count(v) for v in set(ys) if ys.count(v) > 1]
    var = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties)) / 18
    z = (s - math.copysign(1, s)) / math.sqrt(var) if s else 0.0
    spread = 1.6448536269514722 * math.sqrt(var)
    lo = slopes[max(round((len(slopes) - spread) / 2) - 1, 0)]
    hi = slopes[min(round((len(slopes) + spread) / 2), len(slopes) - 1)]
    return statistics.median(slopes), lo, hi, z


def test_matches_a_brute_force_reading_of_the_definitions() -> None:
    rng = random.Random(3)
    for _ in range(300):
        n = rng.randint(4, 28)
        xs = sorted(rng.sample(range(-27, 1), n))
        ys = [round(50 + rng.uniform(-1, 1) * x + rng.gauss(0, 3), rng.choice((0, 1))) for x in xs]
        fit = theil_sen(xs, ys)
        assert fit is not None
        slope, lo, hi, z = _naive(xs, ys)
        assert fit.slope == pytest.approx(slope)
        assert (fit.slope_low, fit.slope_high) == pytest.approx((lo, hi))
        assert fit.z == pytest.approx(z)
