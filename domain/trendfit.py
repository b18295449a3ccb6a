"""Robust trend of a short series: Theil–Sen slope, its confidence range, and whether it is real.

The slope is the median of the slopes between every pair of readings (Theil 1950, Sen 1968), so
one odd day cannot tilt it. Whether there is a trend at all is the Mann–Kendall test on the same
pairs (the share of pairs going up against those going down, with the tie correction); the range
of plausible slopes is Sen's distribution-free confidence interval, read off the same sorted pair
slopes. Everything is exact (no sampling); slope and range match scipy.stats.theilslopes (the
intercept is its method="joint", the median of y - slope * x).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

# Two-sided confidence of the slope range and of the trend test.
CONFIDENCE = 0.90
# The last readings this far (in robust standard deviations of the residuals) on the other side of
# the line mean the series has left its trend (a recovery after a slide, or a relapse): there is
# then no trend to extrapolate.
BREAK_SIGMAS = 3.0
RECENT_POINTS = 3


@dataclass(frozen=True)
class TrendFit:
    """A robust line through (x, y) with x in days; intercept is the line's value at x = 0."""

    points: int
    slope: float  # Theil–Sen: median pairwise slope, units per day
    slope_low: float  # the CONFIDENCE range of the slope
    slope_high: float
    intercept: float
    z: float  # Mann–Kendall statistic; |z| >= z_critical means a trend at CONFIDENCE
    significant: bool
    broken: bool  # the newest readings left the line in the other direction

    @property
    def clear(self) -> bool:
        """A trend worth projecting: significant, and the newest readings still follow it."""
        return self.significant and not self.broken


@dataclass(frozen=True)
class _Design:
    """What depends on the x values alone, computed once per distinct set of days."""

    i: np.ndarray
    j: np.ndarray
    inv_dx: np.ndarray  # 1 / (x_j - x_i) for the pairs with distinct x
    sign_dx: np.ndarray | None  # None when every pair has x_j > x_i (distinct, ascending days)
    keep: np.ndarray | None  # pairs with distinct x, None when that is all of them
    x: np.ndarray
    x_ties: float


@lru_cache(maxsize=256)
def _design(xs: tuple[float, ...]) -> _Design:
    x = np.asarray(xs, dtype=float)
    i, j = np.triu_indices(len(xs), 1)
    dx = x[j] - x[i]
    keep = dx != 0
    all_kept = bool(keep.all())
    sign_dx = None if bool((dx > 0).all()) else np.sign(dx)
    return _Design(
        i=i if all_kept else i[keep],
        j=j if all_kept else j[keep],
        inv_dx=1.0 / dx[keep],
        sign_dx=sign_dx,
        keep=None if all_kept else keep,
        x=x,
        x_ties=_tie_term(x),
    )


@lru_cache(maxsize=8)
def _z_critical(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _ties(ordered: list[float]) -> float:
    """Sum of t(t-1)(2t+5) over groups of equal values in a sorted list (the Mann–Kendall
    variance correction); a few dozen values at most, so plain Python."""
    total = 0.0
    run = 1
    for a, b in itertools.pairwise(ordered):
        if a == b:
            run += 1
        elif run > 1:
            total += run * (run - 1) * (2 * run + 5)
            run = 1
    if run > 1:
        total += run * (run - 1) * (2 * run + 5)
    return total


def _tie_term(values: np.ndarray) -> float:
    return _ties(np.sort(values).tolist())


def _row_medians(values: np.ndarray) -> np.ndarray:
    """The median of each row (np.median's generality costs more than these small rows)."""
    ordered = np.sort(values, axis=1)
    n = ordered.shape[1]
    mid = n // 2
    return ordered[:, mid] if n % 2 else (ordered[:, mid - 1] + ordered[:, mid]) / 2


def theil_sen(
    xs: Sequence[float], ys: Sequence[float], *, confidence: float = CONFIDENCE
) -> TrendFit | None:
    """The robust trend of the points; None with fewer than 3 points or a single distinct x.

    ``xs`` must be in ascending order (days); equal x values are allowed (pairs between them are
    left out of the slopes, as in scipy).
    """
    return theil_sen_many(xs, [ys], confidence=confidence)[0]


def theil_sen_many(
    xs: Sequence[float], rows: Sequence[Sequence[float]], *, confidence: float = CONFIDENCE
) -> list[TrendFit | None]:
    """theil_sen for several series measured on the same days, in one numpy pass (a recompute
    fits every account's continuous indicators, which share their days)."""
    n = len(xs)
    if n < 3 or not rows:
        return [None] * len(rows)
    design = _design(tuple(xs))
    pairs = design.inv_dx.size
    if pairs == 0:
        return [None] * len(rows)
    x = design.x
    y = np.asarray(rows, dtype=float)  # one series per row
    # The pair differences, in the same order as the pairs the slopes use.
    dy = y[:, design.j] - y[:, design.i]
    slopes = np.sort(dy * design.inv_dx, axis=1)
    mid = pairs // 2
    medians = slopes[:, mid] if pairs % 2 else (slopes[:, mid - 1] + slopes[:, mid]) / 2

    # Mann–Kendall: S counts concordant minus discordant pairs; its variance under "no trend"
    # is n(n-1)(2n+5)/18 less the ties' share.
    signs = np.sign(dy)
    if design.sign_dx is not None:
        full_sign_dx = design.sign_dx if design.keep is None else design.sign_dx[design.keep]
        signs = signs * full_sign_dx
    s_all = signs.sum(axis=1).tolist()
    ordered = np.sort(y, axis=1)
    tied = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1).tolist()
    base_var = n * (n - 1) * (2 * n + 5) - design.x_ties
    z_crit = _z_critical(confidence)
    # The line's level (median of y - slope * x) and the recent-break check, for every row at once.
    intercepts = _row_medians(y - medians[:, None] * x)
    residuals = y - (intercepts[:, None] + medians[:, None] * x)
    centre = _row_medians(residuals)
    sigma = 1.4826 * _row_medians(np.abs(residuals - centre[:, None]))
    recent = _row_medians(residuals[:, -RECENT_POINTS:])
    out: list[TrendFit | None] = []
    rows_data = zip(
        medians.tolist(), intercepts.tolist(), sigma.tolist(), recent.tolist(), strict=True
    )
    for r, (slope, intercept, spread_sigma, recent_r) in enumerate(rows_data):
        s = s_all[r]
        var = (base_var - (_ties(ordered[r].tolist()) if tied[r] else 0.0)) / 18.0
        if var > 0:
            z = (s - math.copysign(1.0, s)) / math.sqrt(var) if s else 0.0
            # Sen's confidence interval: ranks (N -/+ z sqrt(var)) / 2 of the sorted pair slopes.
            spread = z_crit * math.sqrt(var)
            lo_rank = max(round((pairs - spread) / 2) - 1, 0)  # half to even, as scipy
            hi_rank = min(round((pairs + spread) / 2), pairs - 1)
            low, high = float(slopes[r, lo_rank]), float(slopes[r, hi_rank])
        else:  # every y equal: no trend, and the slope is exactly 0
            z, low, high = 0.0, slope, slope
        significant = abs(z) >= z_crit and slope != 0
        broken = False
        if significant and n > RECENT_POINTS + 3:
            # A recovery after a slide sits above a falling line; a relapse below a rising one.
            against = -recent_r * math.copysign(1.0, slope)
            # The floor on sigma keeps a noiseless line (sigma 0) from breaking on float noise.
            broken = against > BREAK_SIGMAS * max(spread_sigma, 1e-9 + 1e-6 * abs(intercept))
        out.append(
            TrendFit(n, slope, min(low, high), max(low, high), intercept, z, significant, broken)
        )
    return out
