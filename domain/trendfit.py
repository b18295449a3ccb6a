"""Robust trend of a short series: Theil–Sen slope, its confidence range, and whether it is real.

The slope is the median of the slopes between every pair of readings (Theil 1950, Sen 1968), so
one odd day cannot tilt it. Whether there is a trend at all is the Mann–Kendall test on the same
pairs (the share of pairs going up against those going down, with the tie correction); the range
of plausible slopes is Sen's distribution-free confidence interval, read off the same sorted pair
slopes. Everything is exact (no sampling); slope and range match scipy.stats.theilslopes (the
intercept is its method="joint", the median of y - slope * x).
"""

from __future__ import annotations

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


def _tie_term(values: np.ndarray) -> float:
    """Sum of t(t-1)(2t+5) over groups of equal values (the Mann–Kendall variance correction)."""
    ordered = np.sort(values)
    if not (ordered[1:] == ordered[:-1]).any():
        return 0.0
    _, counts = np.unique(ordered, return_counts=True)
    counts = counts[counts > 1].astype(float)
    return float(np.sum(counts * (counts - 1) * (2 * counts + 5)))


def _median_sorted(values: np.ndarray) -> float:
    n = values.size
    mid = n // 2
    return float(values[mid]) if n % 2 else float((values[mid - 1] + values[mid]) / 2)


def theil_sen(
    xs: Sequence[float], ys: Sequence[float], *, confidence: float = CONFIDENCE
) -> TrendFit | None:
    """The robust trend of the points; None with fewer than 3 points or a single distinct x.

    ``xs`` must be in ascending order (days); equal x values are allowed (pairs between them are
    left out of the slopes, as in scipy).
    """
    n = len(xs)
    if n < 3:
        return None
    design = _design(tuple(xs))
    pairs = design.inv_dx.size
    if pairs == 0:
        return None
    x = design.x
    y = np.asarray(ys, dtype=float)
    # The full pair differences, in the same order as the pairs the slopes use.
    dy = y[design.j] - y[design.i]
    slopes = np.sort(dy * design.inv_dx)
    slope = _median_sorted(slopes)

    # Mann–Kendall: S counts concordant minus discordant pairs; its variance under "no trend"
    # is n(n-1)(2n+5)/18 less the ties' share.
    signs = np.sign(dy)
    if design.sign_dx is not None:
        full_sign_dx = design.sign_dx if design.keep is None else design.sign_dx[design.keep]
        signs = signs * full_sign_dx
    s = float(signs.sum())
    var = (n * (n - 1) * (2 * n + 5) - _tie_term(y) - design.x_ties) / 18.0
    z_crit = _z_critical(confidence)
    if var > 0:
        z = (s - math.copysign(1.0, s)) / math.sqrt(var) if s else 0.0
        # Sen's confidence interval: ranks (N -/+ z sqrt(var)) / 2 of the sorted pair slopes.
        spread = z_crit * math.sqrt(var)
        lo_rank = max(round((pairs - spread) / 2) - 1, 0)  # half to even, as scipy
        hi_rank = min(round((pairs + spread) / 2), pairs - 1)
        low, high = float(slopes[lo_rank]), float(slopes[hi_rank])
    else:  # every y equal: no trend, and the slope is exactly 0
        z, low, high = 0.0, slope, slope
    significant = abs(z) >= z_crit and slope != 0
    intercept = _median_sorted(np.sort(y - slope * x))

    broken = False
    if significant and n > RECENT_POINTS + 3:
        residuals = y - (intercept + slope * x)
        centre = _median_sorted(np.sort(residuals))
        sigma = 1.4826 * _median_sorted(np.sort(np.abs(residuals - centre)))
        recent = _median_sorted(np.sort(residuals[-RECENT_POINTS:]))
        # A recovery after a slide sits above a falling line; a relapse below a rising one.
        against = -recent * math.copysign(1.0, slope)
        # The floor on sigma keeps a noiseless line (sigma 0) from breaking on float noise.
        broken = against > BREAK_SIGMAS * max(sigma, 1e-9 + 1e-6 * abs(intercept))
    return TrendFit(n, slope, min(low, high), max(low, high), intercept, z, significant, broken)
