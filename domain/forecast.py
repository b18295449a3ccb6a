"""Forecast when an account's health turns red: robust trends of its continuous leading
indicators, projected forward from today's readings, with a range when the trend is uncertain."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal

from domain.health import HealthResult, indicator_score, score_health
from domain.health_model import HealthModel, Indicator
from domain.numbers import round_half_away

if TYPE_CHECKING:
    from domain.trendfit import TrendFit

HORIZON_DAYS = 60
WINDOW_DAYS = 28
MIN_POINTS = 7
# A forecast needs the same share of the model's weight as the score itself.
_MIN_COVERAGE = 0.5

ForecastStatus = Literal["already_red", "red", "no_red", "no_trend", "insufficient"]
Verdict = Literal["trend", "no clear trend", "trend broke recently"]


@dataclass(frozen=True)
class IndicatorTrend:
    """The fitted trend of one continuous leading indicator over the window."""

    key: str
    points: int
    slope: float  # units per day (Theil–Sen)
    slope_low: float  # the slope's confidence range
    slope_high: float
    verdict: Verdict

    @property
    def clear(self) -> bool:
        return self.verdict == "trend"


@dataclass(frozen=True)
class MovingInput:
    """One indicator the projection moves: today's reading and its slopes (units per day)."""

    indicator: Indicator
    value: float
    slope: float
    worse_slope: float  # the end of the slope's range nearer red
    better_slope: float


@dataclass(frozen=True)
class ProjectedDay:
    """The projected score ``days`` after the forecast day: likely, and the range around it."""

    days: int
    low: float  # with every trend at the worse end of its range
    mid: float
    high: float


@dataclass(frozen=True)
class Forecast:
    """When (if at all) the projected score first falls into the red band, and how sure that is.

    ``red_in_days`` is the day on the likely path (0 = already red); ``red_in_days_earliest`` and
    ``red_in_days_latest`` the same day with every trend at the worse or better end of its range
    (latest None: beyond the horizon). ``projection()`` gives the whole path for charts.
    """

    status: ForecastStatus
    red_in_days: int | None
    red_in_days_earliest: int | None
    red_in_days_latest: int | None
    horizon_days: int
    current_score: float | None
    trends: tuple[IndicatorTrend, ...] = ()
    projected_inputs: tuple[str, ...] = ()  # the indicators the projection uses (model order)
    constant: float = 0.0  # weight x score of the indicators held at today's value
    used_weight: float = 0.0
    moving: tuple[MovingInput, ...] = ()
    red_max: float = 50.0

    @property
    def enough_data(self) -> bool:
        return self.status != "insufficient"

    @property
    def slopes(self) -> dict[str, float]:
        """Fitted slopes (units per day) of every indicator with enough points, clear or not."""
        return {t.key: t.slope for t in self.trends}

    @property
    def worsening(self) -> tuple[str, ...]:
        """Indicators with a clear trend toward red, in model order."""
        return tuple(m.indicator.key for m in self.moving if _toward_red(m.indicator, m.slope))

    def summary(self) -> str:
        """One short phrase for chat: "likely to turn red in 12–20 days", "no clear trend"."""
        return describe(
            self.status,
            self.red_in_days,
            self.red_in_days_earliest,
            self.red_in_days_latest,
            self.horizon_days,
        )

    def projection(self, days: int | None = None) -> tuple[ProjectedDay, ...]:
        """The projected score for day 0 (today) to ``days`` (default the horizon), one decimal."""
        if self.used_weight <= 0 or self.current_score is None:
            return ()
        last = self.horizon_days if days is None else days
        out = []
        for k in range(last + 1):
            mid = _score_at(self, k, "slope")
            low = _score_at(self, k, "worse_slope")
            high = _score_at(self, k, "better_slope")
            out.append(ProjectedDay(k, low, mid, high))
        return tuple(out)


def describe(
    status: str | None,
    red_in_days: int | None,
    earliest: int | None,
    latest: int | None,
    horizon_days: int = HORIZON_DAYS,
) -> str:
    """The forecast phrase from its stored parts (snapshots keep these, not the Forecast)."""
    if status == "already_red" or (status is None and red_in_days == 0):
        return "already red"
    if red_in_days is not None and status in ("red", None):
        low = red_in_days if earliest is None else earliest
        if latest is None and earliest is not None:
            return f"likely to turn red in {low}–{horizon_days}+ days"
        high = red_in_days if latest is None else latest
        # A narrow range reads better as one number: within 2 days, or a quarter of the time left.
        if high - low <= max(2, round(0.25 * red_in_days)):
            unit = "day" if red_in_days == 1 else "days"
            return f"likely to turn red in ~{red_in_days} {unit}"
        return f"likely to turn red in {low}–{high} days"
    if status == "no_trend":
        return "no clear trend"
    if status == "insufficient":
        return "not enough data to forecast"
    return f"no red in sight for {horizon_days} days"


def fits_trend(ind: Indicator) -> bool:
    """Whether the forecast fits a trend to this indicator: leading, and declared continuous."""
    return ind.kind == "leading" and ind.continuous


def describe_short(
    status: str | None,
    red_in_days: int | None,
    earliest: int | None,
    latest: int | None,
    horizon_days: int = HORIZON_DAYS,
) -> str | None:
    """The forecast in a list row ("red in ~14d", "red in 12–20d"); None unless red is coming."""
    if red_in_days is None or red_in_days <= 0 or status not in ("red", None):
        return None
    phrase = describe(status, red_in_days, earliest, latest, horizon_days)
    return (
        phrase.replace("likely to turn red in ", "red in ")
        .replace(" days", "d")
        .replace(" day", "d")
    )


def _toward_red(ind: Indicator, slope: float) -> bool:
    return slope < 0 if ind.direction == "higher" else slope > 0


def _score_at(f: Forecast, k: int, which: str) -> float:
    total = f.constant
    for m in f.moving:
        total += m.indicator.weight * indicator_score(m.indicator, m.value + getattr(m, which) * k)
    return round_half_away(total / f.used_weight)


# Day sequences already seen, with the x values they give (None: not the simple case). A
# recompute hands every account the same few sequences of shared date objects (the last 28
# days), so the lookup replaces a per-reading loop; the cache is bounded.
_XS_CACHE: dict[tuple[tuple[date, ...], date, int], list[int] | None] = {}
_XS_CACHE_MAX = 1024


def _simple_xs(days: tuple[date, ...], as_of: date, window_days: int) -> list[int] | None:
    """Day offsets when the days are strictly ascending and all inside the window, else None."""
    today = as_of.toordinal()
    xs = [day.toordinal() - today for day in days]
    if xs[-1] > 0 or xs[0] <= -window_days:
        return None
    if any(a >= b for a, b in itertools.pairwise(xs)):
        return None
    return xs


def _window_points(
    readings: Sequence[tuple[date, float]], as_of: date, window_days: int
) -> tuple[list[int], list[float]]:
    """Day offsets (<= 0, ascending) and values of the readings in (as_of - window, as_of]."""
    if readings:
        days, values = zip(*readings, strict=True)
        key = (days, as_of, window_days)
        try:
            xs = _XS_CACHE[key]
        except KeyError:
            if len(_XS_CACHE) >= _XS_CACHE_MAX:
                _XS_CACHE.clear()
            xs = _XS_CACHE[key] = _simple_xs(days, as_of, window_days)
        if xs is not None:
            total = sum(values)
            if total == total:  # no NaN (a blank cell) among them
                return xs, [float(v) for v in values]
    today = as_of.toordinal()
    lo = today - window_days
    points = []
    for day, value in readings:
        ordinal = day.toordinal()
        if lo < ordinal <= today and value == value:  # value == value: not NaN
            points.append((ordinal - today, float(value)))
    points.sort()
    return [x for x, _ in points], [y for _, y in points]


def _latest(readings: Sequence[tuple[date, float]], as_of: date) -> tuple[date, float] | None:
    best: tuple[date, float] | None = None
    for day, value in readings:
        if day <= as_of and value == value and (best is None or day >= best[0]):
            best = (day, float(value))
    return best


def _trend_of(ind: Indicator, fit: TrendFit) -> IndicatorTrend:
    verdict: Verdict = (
        "trend" if fit.clear else ("trend broke recently" if fit.broken else "no clear trend")
    )
    return IndicatorTrend(ind.key, fit.points, fit.slope, fit.slope_low, fit.slope_high, verdict)


def fit_trend(
    ind: Indicator, readings: Sequence[tuple[date, float]], as_of: date, window_days: int
) -> tuple[IndicatorTrend | None, TrendFit | None]:
    """The trend of one indicator over the window; (None, None) with fewer than 3 points."""
    from domain.trendfit import theil_sen

    xs, ys = _window_points(readings, as_of, window_days)
    fit = theil_sen(xs, ys)
    if fit is None:
        return None, None
    return _trend_of(ind, fit), fit


def forecast_red(
    model: HealthModel,
    series: Mapping[str, Sequence[tuple[date, float]]],
    as_of: date,
    *,
    horizon_days: int = HORIZON_DAYS,
    window_days: int = WINDOW_DAYS,
    min_points: int = MIN_POINTS,
    current: HealthResult | None = None,
) -> Forecast:
    """Project today's score forward along the clear trends of the continuous leading indicators.

    Each leading indicator declared ``continuous`` with at least ``min_points`` readings in the
    last ``window_days`` gets a Theil–Sen slope; only a clear one (Mann–Kendall significant at
    90 %, and the newest readings still on the line) moves, starting from today's reading. Every
    other fresh indicator (lagging, step-like, subjective, or without a clear trend) is held at
    today's value; stale ones stay out, as in the score. The first day whose score (one decimal)
    is in the red band is the forecast; the same with every slope at either end of its range gives
    the earliest and latest day. Readings after ``as_of`` are ignored.

    ``current`` is today's score_health result for the newest of these readings when the caller
    has it (recompute does): the projection starts from exactly that score.
    """
    if current is None:
        latest = {}
        for key, readings in series.items():
            found = _latest(readings, as_of)
            if found is not None:
                latest[key] = found
        current = score_health(model, latest, as_of)
    red_max = model.bands.red_max
    if current.band == "red":
        return Forecast("already_red", 0, 0, 0, horizon_days, current.score, red_max=red_max)

    # The windows of the continuous leading indicators, fitted together when they share their
    # days (they usually do: daily readings), which is one numpy pass per account.
    windows: dict[tuple[int, ...], list[tuple[Indicator, list[float]]]] = {}
    for ind in model.indicators:
        if not fits_trend(ind):
            continue
        readings = series.get(ind.key)
        if not readings or len(readings) < min_points:
            continue
        xs, ys = _window_points(readings, as_of, window_days)
        if len(xs) >= min_points:
            windows.setdefault(tuple(xs), []).append((ind, ys))
    fitted: dict[str, tuple[IndicatorTrend, TrendFit]] = {}
    if windows:
        # numpy loads only when something is fitted: a chat answer that reads a stored
        # forecast (most of them) never pays for it.
        from domain.trendfit import theil_sen_many
    for xs_key, members in windows.items():
        results = theil_sen_many(xs_key, [ys for _, ys in members])
        for (ind, _), fit in zip(members, results, strict=True):
            if fit is not None:
                fitted[ind.key] = (_trend_of(ind, fit), fit)
    trends = [fitted[i.key][0] for i in model.indicators if i.key in fitted]
    fits = {key: fit for key, (_, fit) in fitted.items()}

    constant = 0.0
    used_weight = 0.0
    moving: list[MovingInput] = []
    used: list[str] = []
    for r, ind in zip(current.indicators, model.indicators, strict=True):
        if r.status != "fresh" or r.score is None or r.value is None:
            continue
        fit = fits.get(ind.key)
        if fit is not None and fit.clear:
            low, high = fit.slope_low, fit.slope_high
            worse, better = (low, high) if ind.direction == "higher" else (high, low)
            moving.append(MovingInput(ind, r.value, fit.slope, worse, better))
        else:
            constant += ind.weight * r.score
        used_weight += ind.weight
        used.append(ind.key)

    def result(status: ForecastStatus, *days: int | None) -> Forecast:
        point, earliest, latest_day = days if days else (None, None, None)
        return Forecast(
            status,
            point,
            earliest,
            latest_day,
            horizon_days,
            current.score,
            tuple(trends),
            tuple(used),
            constant,
            used_weight,
            tuple(moving),
            red_max,
        )

    if (
        current.score is None
        or not trends
        or used_weight < model.total_weight * _MIN_COVERAGE - 1e-9
        or horizon_days < 1
    ):
        return result("insufficient")
    if not moving:
        return result("no_trend")

    def first_red(slope_of: Callable[[MovingInput], float]) -> int | None:
        return _first_red_day(constant, used_weight, moving, slope_of, red_max, horizon_days)

    earliest = first_red(lambda m: m.worse_slope)
    if earliest is None:
        # The worse end of every range never reaches red: neither do the others.
        return result("no_red")
    point = first_red(lambda m: m.slope)
    latest_day = first_red(lambda m: m.better_slope) if point is not None else None
    return result("red" if point is not None else "no_red", point, earliest, latest_day)


def _first_red_day(
    constant: float,
    used_weight: float,
    moving: Sequence[MovingInput],
    slope_of: Callable[[MovingInput], float],
    red_max: float,
    horizon: int,
) -> int | None:
    """The first day 1..horizon whose projected score (one decimal) is red, or None."""
    terms = [(m.indicator, m.value, slope_of(m)) for m in moving]

    def score(k: int) -> float:
        total = constant
        for ind, value, slope in terms:
            total += ind.weight * indicator_score(ind, value + slope * k)
        return round_half_away(total / used_weight)

    # Each moving score is monotone in k, so the lowest score within the horizon is the sum of
    # each one's worse end. Most accounts are nowhere near red: stop here, without a day loop.
    lowest = constant
    for ind, value, slope in terms:
        lowest += ind.weight * min(
            indicator_score(ind, value + slope), indicator_score(ind, value + slope * horizon)
        )
    if round_half_away(lowest / used_weight) > red_max:
        return None
    if all(_toward_red(ind, slope) or slope == 0 for ind, _, slope in terms):
        # Everything moving gets worse: the score only falls, so bisect for the first red day.
        if score(horizon) > red_max:
            return None
        lo, hi = 1, horizon
        while lo < hi:
            mid = (lo + hi) // 2
            if score(mid) <= red_max:
                hi = mid
            else:
                lo = mid + 1
        return lo
    for k in range(1, horizon + 1):  # mixed directions: walk day by day
        if score(k) <= red_max:
            return k
    return None
