"""Forecast when an account's health turns red, from the recent slope of its leading indicators."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import reduce
from operator import add, mul

from domain.health import HealthResult, indicator_score, score_health
from domain.health_model import HealthModel, Indicator

# Slopes smaller than this (units per day) are noise from float arithmetic, not a trend.
_SLOPE_EPS = 1e-9


@dataclass(frozen=True)
class Forecast:
    """When (if at all) the projected health score first falls into the red band."""

    red_in_days: int | None  # 0 = already red; None = not within the horizon or not enough data
    horizon_days: int
    slopes: dict[str, float]  # leading indicator key -> least-squares slope, units per day
    worsening: tuple[str, ...]  # leading indicators whose slope moves toward red, model order
    enough_data: bool = True  # False when no leading trend could be fitted (or too little weight)
    current_score: float | None = None  # today's score by score_health, for context
    projected_inputs: tuple[str, ...] = field(default=())  # indicators the projection used

    def summary(self) -> str:
        """One short phrase for chat, e.g. "likely to turn red in ~12 days"."""
        if self.red_in_days == 0:
            return "already red"
        if self.red_in_days is not None:
            unit = "day" if self.red_in_days == 1 else "days"
            return f"likely to turn red in ~{self.red_in_days} {unit}"
        if not self.enough_data:
            return "not enough data to forecast"
        return f"no red in sight for {self.horizon_days} days"


def _scan(
    readings: Sequence[tuple[date, float]], as_of: date, window_days: int, fit: bool
) -> tuple[tuple[date, float] | None, tuple[int, float, float] | None]:
    """One pass over an indicator's readings: its latest reading up to as_of and, when `fit`,
    the least-squares line through the readings in (as_of - window_days, as_of].

    x is days relative to as_of (<= 0), so the line's intercept is the fitted value today. The
    line is (points, intercept, slope), or None without points or when all share one day.
    One pass and integer ordinals keep this cheap enough for 10k accounts per run.
    """
    today = as_of.toordinal()
    lo = today - window_days  # x > -window_days, in ordinals: the fit's window
    if fit and len(readings) > 1:
        quick = _scan_window(readings, today, lo)
        if quick is not None:
            return quick
    # The newest reading is remembered as (day, value) and made into a tuple once at the end:
    # sorted input (the usual case) would otherwise build one per reading.
    best_day: date | None = None
    best_value = 0.0
    best_ord = -1  # below every ordinal, so the first usable reading is taken
    n = 0
    sx = sy = sxx = sxy = 0.0
    for day, value in readings:
        ordinal = day.toordinal()
        if ordinal > today or value != value:  # future, or NaN (a blank cell): not a reading
            continue
        if ordinal >= best_ord:
            best_day, best_value, best_ord = day, value, ordinal
        if fit and ordinal > lo:
            x = ordinal - today
            n += 1
            sx += x
            sy += value
            sxx += x * x
            sxy += x * value
    best = None if best_day is None else (best_day, float(best_value))
    if n == 0:
        return best, None
    denom = n * sxx - sx * sx
    if denom == 0:
        return best, ((n, sy / n, 0.0) if n == 1 else None)
    slope = (n * sxy - sx * sy) / denom
    return best, (n, (sy - slope * sx) / n, slope)


# Day sequences already seen, with what _scan_window derives from them alone. Recomputing a
# portfolio hands every account the same few sequences (the last 28 days), and the days are
# shared date objects, so the lookup is cheap; the cache is bounded.
_DaysInfo = tuple[int, list[int], float, float]
_DAYS_CACHE: dict[tuple[tuple[date, ...], int, int], _DaysInfo | None] = {}
_DAYS_CACHE_MAX = 1024


def _days_info(days: tuple[date, ...], today: int, lo: int) -> _DaysInfo | None:
    """(index of the newest day, x per day, sum of x, sum of x squared) when every day lies in
    the window (lo, today]; None when some day is outside it."""
    key = (days, today, lo)
    try:
        return _DAYS_CACHE[key]
    except KeyError:
        pass
    ords = [day.toordinal() for day in days]
    info: _DaysInfo | None = None
    if max(ords) <= today and min(ords) > lo:
        newest = max(ords)
        last = len(ords) - 1 - ords[::-1].index(newest)  # the last of equal newest days wins
        xs = [o - today for o in ords]
        # Integer sums are exact, as are the float running sums of the loop in _scan.
        info = (last, xs, float(sum(xs)), float(sum(x * x for x in xs)))
    if len(_DAYS_CACHE) >= _DAYS_CACHE_MAX:
        _DAYS_CACHE.clear()
    _DAYS_CACHE[key] = info
    return info


def _scan_window(
    readings: Sequence[tuple[date, float]], today: int, lo: int
) -> tuple[tuple[date, float], tuple[int, float, float] | None] | None:
    """_scan for readings that all lie inside the window, with the per-reading arithmetic done
    by C loops in the same order as _scan's (so the floats are bit for bit the same); None
    when that does not apply (a day outside the window, or a NaN value) and _scan must loop."""
    days, values = zip(*readings, strict=True)
    info = _days_info(days, today, lo)
    if info is None:
        return None
    last, xs, sx, sxx = info
    sy = reduce(add, values, 0.0)
    if sy != sy:  # a NaN among the values (or infinities that cancel): the careful loop decides
        return None
    sxy = reduce(add, map(mul, xs, values), 0.0)
    n = len(xs)
    best = (days[last], float(values[last]))
    denom = n * sxx - sx * sx
    if denom == 0:
        return best, ((n, sy / n, 0.0) if n == 1 else None)
    slope = (n * sxy - sx * sy) / denom
    return best, (n, (sy - slope * sx) / n, slope)


def _moves_toward_red(ind: Indicator, slope: float) -> bool:
    return slope < -_SLOPE_EPS if ind.direction == "higher" else slope > _SLOPE_EPS


def forecast_red(
    model: HealthModel,
    series: Mapping[str, Sequence[tuple[date, float]]],
    as_of: date,
    *,
    horizon_days: int = 60,
    window_days: int = 28,
    min_points: int = 7,
    current: HealthResult | None = None,
) -> Forecast:
    """Project the leading indicators' recent trend forward and find the first red day.

    Each leading indicator with at least `min_points` readings in the window gets a least-squares
    line; everything else holds its latest value. Projected values count as fresh; held values
    count only if fresh today, so a forecast never resurrects stale data. The overall score uses
    score_health's weighting and the model's bands (on the score rounded to one decimal).
    Readings after `as_of` are ignored.

    `current` is today's score_health result for the newest of these readings, when the caller
    has already computed it (recomputing snapshots scores every account anyway); it is used
    as given instead of scoring the same readings a second time.
    """
    latest: dict[str, tuple[date, float]] = {}
    slopes: dict[str, float] = {}
    lines: dict[str, tuple[float, float]] = {}
    worse: list[str] = []  # in model order, as slopes are
    for ind in model.indicators:
        key = ind.key
        best, fit = _scan(series.get(key) or (), as_of, window_days, ind.kind == "leading")
        if best is not None:
            latest[key] = best
        if fit is not None and fit[0] >= min_points:
            _, intercept, slope = fit
            slopes[key] = slope
            lines[key] = (intercept, slope)
            if _moves_toward_red(ind, slope):
                worse.append(key)
    worsening = tuple(worse)

    if current is None:
        current = score_health(model, latest, as_of)
    if current.band == "red":
        return Forecast(0, horizon_days, slopes, worsening, True, current.score)

    # Split the score into a constant part (held values, flat lines) and the moving indicators.
    fresh_now = {r.key for r in current.indicators if r.status == "fresh"}
    constant = 0.0
    used_weight = 0.0
    moving: list[tuple[Indicator, float, float]] = []
    used: list[str] = []
    for ind in model.indicators:
        line = lines.get(ind.key)
        if line is not None:
            intercept, slope = line
            if abs(slope) <= _SLOPE_EPS:
                constant += ind.weight * indicator_score(ind, intercept)
            else:
                moving.append((ind, intercept, slope))
        elif ind.key in fresh_now:
            constant += ind.weight * indicator_score(ind, latest[ind.key][1])
        else:
            continue
        used_weight += ind.weight
        used.append(ind.key)

    def not_found(enough: bool) -> Forecast:
        return Forecast(None, horizon_days, slopes, worsening, enough, current.score, tuple(used))

    # A forecast needs at least one fitted trend and the same coverage rule as the score itself.
    if not lines or used_weight < model.total_weight * 0.5 - 1e-9 or horizon_days < 1:
        return not_found(False)

    red_max = model.bands.red_max

    def is_red(k: int) -> bool:
        # indicator_score clamps to [floor, ceiling], which is the same as clamping the value.
        total = constant
        for ind, intercept, slope in moving:
            total += ind.weight * indicator_score(ind, intercept + slope * k)
        return round(total / used_weight, 1) <= red_max

    # Each moving score is monotone in k, so the lowest possible score within the horizon is the
    # sum of each one's worse end. Most accounts are nowhere near red: stop here, no day loop.
    lowest = constant
    for ind, intercept, slope in moving:
        lowest += ind.weight * min(
            indicator_score(ind, intercept + slope),
            indicator_score(ind, intercept + slope * horizon_days),
        )
    if round(lowest / used_weight, 1) > red_max:
        return not_found(True)

    if all(_moves_toward_red(ind, slope) for ind, _, slope in moving):
        # Everything moving is getting worse: the score only falls, so bisect for the first red day.
        lo, hi = 1, horizon_days
        if not is_red(hi):
            return not_found(True)
        while lo < hi:
            mid = (lo + hi) // 2
            if is_red(mid):
                hi = mid
            else:
                lo = mid + 1
        return Forecast(lo, horizon_days, slopes, worsening, True, current.score, tuple(used))

    # Mixed directions (rare): walk day by day.
    for k in range(1, horizon_days + 1):
        if is_red(k):
            return Forecast(k, horizon_days, slopes, worsening, True, current.score, tuple(used))
    return not_found(True)
