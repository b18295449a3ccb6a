"""Red forecast: hand-checked day counts, what is held and what moves, ranges, and a brute-force
cross-check of the whole projection."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from datetime import date, timedelta

import pytest

from domain.forecast import Forecast, describe, describe_short, forecast_red
from domain.health import score_health
from domain.health_model import Bands, HealthModel, Indicator, load_health_models
from domain.numbers import round_half_away

AS_OF = date(2026, 11, 23)
MODEL = load_health_models().default


def ind(key: str, weight: float, kind: str = "leading", **over: object) -> Indicator:
    fields: dict[str, object] = {
        "key": key,
        "label": key,
        "weight": weight,
        "direction": "higher",
        "red": 40,
        "green": 70,
        "floor": 0,
        "ceiling": 100,
        "kind": kind,
        "objectivity": "objective",
        "measure": "quantitative",
        "max_age_days": 14,
    }
    fields.update(over)
    return Indicator(**fields)  # type: ignore[arg-type]


# usage: leading 0/40/70/100; nps: lagging, held at its green value (76) for the whole horizon.
TWO = HealthModel("two", (ind("usage", 50), ind("nps", 50, kind="lagging")), Bands())
NPS_AT_GREEN = {"nps": [(AS_OF - timedelta(days=3), 70.0)]}


def daily(start: float, per_day: float, days: int = 28) -> list[tuple[date, float]]:
    """`days` daily readings ending today at `start`, changing by `per_day` each day."""
    return [(AS_OF - timedelta(days=age), start - per_day * age) for age in range(days)]


def test_steadily_falling_leading_indicator() -> None:
    series = {"usage": daily(70.0, -1.0), **NPS_AT_GREEN}
    result = forecast_red(TWO, series, AS_OF)
    # usage(k) = 70 - k. Score = (76 + s(k)) / 2 <= 50 needs s(k) <= 24, i.e. 50 * v / 40 <= 24,
    # v <= 19.2, k >= 50.8: day 51 scores (76 + 23.75) / 2 = 49.9; day 50 is (76 + 25) / 2 = 50.5.
    assert result.status == "red"
    assert result.red_in_days == 51
    # A noiseless line leaves no doubt about the slope: the range is that one day.
    assert result.red_in_days_earliest == result.red_in_days_latest == 51
    assert result.slopes["usage"] == pytest.approx(-1.0)
    assert result.worsening == ("usage",)
    assert result.current_score == 76.0
    assert result.summary() == "likely to turn red in ~51 days"


def test_red_beyond_the_horizon() -> None:
    series = {"usage": daily(70.0, -1.0), **NPS_AT_GREEN}
    result = forecast_red(TWO, series, AS_OF, horizon_days=50)
    assert result.red_in_days is None
    assert result.status == "no_red"
    assert result.summary() == "no red in sight for 50 days"


def test_rising_tickets_on_a_lower_is_better_indicator() -> None:
    tickets = ind("tickets", 50, direction="lower", floor=20, red=8, green=3, ceiling=0)
    model = HealthModel("t", (tickets, ind("nps", 50, kind="lagging")), Bands())
    result = forecast_red(model, {"tickets": daily(3.0, 0.5), **NPS_AT_GREEN}, AS_OF)
    # t(k) = 3 + k/2; past red, s = 50 * (20 - t) / 12. Day 22: t = 14, s = 25, score 50.5;
    # day 23: t = 14.5, s = 22.92, score 49.5 -> red.
    assert result.red_in_days == 23
    assert result.slopes["tickets"] == pytest.approx(0.5)
    assert result.worsening == ("tickets",)


def test_flat_series_has_no_clear_trend() -> None:
    result = forecast_red(TWO, {"usage": daily(55.0, 0.0), **NPS_AT_GREEN}, AS_OF)
    assert result.status == "no_trend"
    assert result.red_in_days is None
    assert result.summary() == "no clear trend"
    assert result.projected_inputs == ("usage", "nps")


def test_improving_indicator_is_not_worsening() -> None:
    result = forecast_red(TWO, {"usage": daily(45.0, 0.5), **NPS_AT_GREEN}, AS_OF)
    assert result.red_in_days is None
    assert result.status == "no_red"
    assert result.slopes["usage"] == pytest.approx(0.5)
    assert result.worsening == ()


def test_already_red_is_zero() -> None:
    series = {"usage": daily(10.0, 0.0), "nps": [(AS_OF, 0.0)]}  # (12.5 + 50) / 2 = 31.25
    result = forecast_red(TWO, series, AS_OF)
    assert (result.red_in_days, result.status) == (0, "already_red")
    assert result.summary() == "already red"


def test_too_few_points_gives_no_forecast() -> None:
    series = {"usage": daily(70.0, -5.0, days=6), **NPS_AT_GREEN}
    result = forecast_red(TWO, series, AS_OF)
    assert result.red_in_days is None
    assert result.slopes == {}
    assert not result.enough_data
    assert result.summary() == "not enough data to forecast"
    # Seven points are enough (the default min_points), and fewer can be allowed explicitly.
    assert forecast_red(TWO, {"usage": daily(70.0, -5.0, days=7), **NPS_AT_GREEN}, AS_OF).slopes
    assert forecast_red(TWO, series, AS_OF, min_points=6).red_in_days is not None


def test_only_readings_inside_the_window_count() -> None:
    # 40 daily points, but only the 28 in (as_of - 28, as_of] are fitted: the old ones fell
    # steeply, the recent ones are flat.
    points = [
        (AS_OF - timedelta(days=age), 60.0 if age < 28 else 60.0 + 5 * age) for age in range(40)
    ]
    result = forecast_red(TWO, {"usage": points, **NPS_AT_GREEN}, AS_OF)
    assert result.slopes["usage"] == pytest.approx(0.0)
    assert result.status == "no_trend"
    sparse = [(d, v) for d, v in points if (AS_OF - d).days % 7 == 0]  # 4 in window, 6 in all
    assert forecast_red(TWO, {"usage": sparse, **NPS_AT_GREEN}, AS_OF).slopes == {}


def test_future_readings_are_ignored_and_order_does_not_matter() -> None:
    series = {"usage": daily(70.0, -1.0), **NPS_AT_GREEN}
    future = [(AS_OF + timedelta(days=d), 0.0) for d in range(1, 10)]
    shuffled = series["usage"] + future
    random.Random(3).shuffle(shuffled)
    result = forecast_red(TWO, {**series, "usage": shuffled}, AS_OF)
    assert result.red_in_days == 51


def test_lagging_indicators_are_not_projected() -> None:
    series = {"usage": daily(70.0, 0.0), "nps": daily(70.0, -3.0)}
    result = forecast_red(TWO, series, AS_OF)
    assert result.slopes == {"usage": 0.0}
    assert result.red_in_days is None


def test_no_readings_at_all() -> None:
    result = forecast_red(MODEL, {}, AS_OF)
    assert (result.red_in_days, result.enough_data) == (None, False)


# ---------------------------------------------------------------------------------------------
# the defects the old forecast had


def _steady_default_model(**override: list[tuple[date, float]]) -> dict:
    """Every default-model indicator fresh and flat for 28 days, scoring 59.8, except overrides."""
    level = {
        "product_usage": 42.0,
        "feature_adoption": 33.0,
        "support_tickets": 7.0,
        "exec_engagement": 70.0,
        "nps": 0.0,
        "payment_days_overdue": 0.0,
        "csm_sentiment": 2.0,
    }
    series = {key: daily(value, 0.0) for key, value in level.items()}
    series.update(override)
    return series


def test_one_sentiment_rerating_is_a_step_not_a_trend() -> None:
    # The CSM re-rated the account from green (3) to amber (2) ten days ago; nothing else moved.
    # A line through 3,3,3,...,2,2,2 "falls" 0.04 a day: the old forecast projected that step
    # into "likely to turn red in ~40 days".
    sentiment = [(AS_OF - timedelta(days=age), 3.0 if age >= 10 else 2.0) for age in range(28)]
    series = _steady_default_model(csm_sentiment=sentiment)
    assert not MODEL.indicator("csm_sentiment").continuous
    result = forecast_red(MODEL, series, AS_OF)
    assert result.current_score == 59.8
    assert result.red_in_days is None
    assert result.status == "no_trend"
    assert "csm_sentiment" not in result.slopes  # held, never fitted
    assert result.summary() == "no clear trend"


def test_the_exec_touchpoint_sawtooth_is_held() -> None:
    # Days since the executive meeting: climbs by one a day and resets at every meeting.
    sawtooth = [(AS_OF - timedelta(days=age), float((27 - age) % 20 + 40)) for age in range(28)]
    series = _steady_default_model(exec_engagement=sawtooth)
    result = forecast_red(MODEL, series, AS_OF)
    assert "exec_engagement" not in result.slopes
    assert result.red_in_days is None


def test_projection_starts_from_todays_readings() -> None:
    # A slide with noise; today's reading sits above the fitted line. The projection starts at
    # today's score exactly (what the card shows), not at the line's end.
    rng = random.Random(4)
    usage = [(d, v + rng.gauss(0, 1.0)) for d, v in daily(64.0, -1.2)]
    usage[0] = (AS_OF, 65.0)
    result = forecast_red(TWO, {"usage": usage, **NPS_AT_GREEN}, AS_OF)
    current = score_health(TWO, {"usage": (AS_OF, 65.0), "nps": NPS_AT_GREEN["nps"][0]}, AS_OF)
    assert result.status == "red"
    assert result.projection(0)[0].mid == current.score == result.current_score
    assert result.moving[0].value == 65.0


def test_a_recovery_ends_the_trend() -> None:
    # 25 days of slide, then three days of recovery to 72: the old forecast still said red in
    # ~16 days from the fitted line. The newest readings have left the line: no trend to project.
    usage = [(AS_OF - timedelta(days=age), 45.0 + 1.4 * (age - 3)) for age in range(3, 28)]
    usage += [(AS_OF - timedelta(days=2), 62.0), (AS_OF - timedelta(days=1), 68.0), (AS_OF, 72.0)]
    result = forecast_red(TWO, {"usage": usage, **NPS_AT_GREEN}, AS_OF)
    assert result.red_in_days is None
    assert result.trends[0].verdict == "trend broke recently"
    assert result.status == "no_trend"


def test_noise_is_not_a_trend() -> None:
    # Flat truth plus noise, two points above red: least squares always finds some slope, and
    # the old forecast called red in 33 of these 200 series. The trend test rarely finds one.
    rng = random.Random(11)
    called = 0
    for _ in range(200):
        usage = [(AS_OF - timedelta(days=age), 24.0 + rng.gauss(0, 3.0)) for age in range(28)]
        usage[0] = (AS_OF, 24.0)
        result = forecast_red(TWO, {"usage": usage, **NPS_AT_GREEN}, AS_OF)
        assert result.current_score == 53.0
        called += result.red_in_days is not None
    assert called <= 10  # ~5%: a 90% two-sided test, and only a falling false trend calls red


def test_noisy_slide_gives_a_range() -> None:
    rng = random.Random(7)
    usage = [(d, v + rng.gauss(0, 5.0)) for d, v in daily(60.0, -1.0)]
    usage[0] = (AS_OF, 60.0)
    result = forecast_red(TWO, {"usage": usage, **NPS_AT_GREEN}, AS_OF)
    assert result.status == "red"
    low, mid, high = result.red_in_days_earliest, result.red_in_days, result.red_in_days_latest
    # Noise ±5 around a 1-point-a-day slide: the slope is known to within its 90 % range, so the
    # day is too; a single "~41 days" would claim more than the data says.
    assert (low, mid, high) == (36, 41, 50)
    assert result.summary() == "likely to turn red in 36–50 days"
    path = result.projection()
    assert len(path) == 61
    assert all(p.low <= p.mid <= p.high for p in path)
    assert path[mid].mid <= 50 < path[mid - 1].mid


@pytest.mark.parametrize(
    ("parts", "phrase", "short"),
    [
        (("red", 14, 13, 15), "likely to turn red in ~14 days", "red in ~14d"),
        (("red", 1, 1, 1), "likely to turn red in ~1 day", "red in ~1d"),
        (("red", 16, 12, 20), "likely to turn red in 12–20 days", "red in 12–20d"),
        (("red", 40, 25, None), "likely to turn red in 25–60+ days", "red in 25–60+d"),
        (("already_red", 0, 0, 0), "already red", None),
        (("no_red", None, None, None), "no red in sight for 60 days", None),
        (("no_trend", None, None, None), "no clear trend", None),
        (("insufficient", None, None, None), "not enough data to forecast", None),
        ((None, 12, None, None), "likely to turn red in ~12 days", "red in ~12d"),  # old rows
    ],
)
def test_phrases(parts: tuple, phrase: str, short: str | None) -> None:
    assert describe(*parts) == phrase
    assert describe_short(*parts) == short


# ---------------------------------------------------------------------------------------------
# brute force: the obvious, slow reading of the rule, on random portfolios


def _naive_fit(points: list[tuple[int, float]]) -> tuple[float, float, float, bool, bool] | None:
    """Theil–Sen slope, 90% range, Mann–Kendall significance and the recent-break check, with
    plain loops (ties in y corrected, as the real one)."""
    n = len(points)
    if n < 3:
        return None
    slopes = sorted(
        (y2 - y1) / (x2 - x1) for (x1, y1), (x2, y2) in itertools.combinations(points, 2)
    )
    slope = statistics.median(slopes)
    s = sum((y2 > y1) - (y2 < y1) for (_, y1), (_, y2) in itertools.combinations(points, 2))
    ties = [
        t for t in (sum(1 for _, y in points if y == v) for v in {y for _, y in points}) if t > 1
    ]
    var = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties)) / 18
    z = (s - math.copysign(1, s)) / math.sqrt(var) if s and var > 0 else 0.0
    spread = 1.6448536269514722 * math.sqrt(var) if var > 0 else 0.0
    lo = slopes[max(round((len(slopes) - spread) / 2) - 1, 0)] if var > 0 else slope
    hi = slopes[min(round((len(slopes) + spread) / 2), len(slopes) - 1)] if var > 0 else slope
    significant = abs(z) >= 1.6448536269514722 and slope != 0
    broken = False
    if significant and n > 6:
        intercept = statistics.median(y - slope * x for x, y in points)
        residuals = [y - (intercept + slope * x) for x, y in points]
        centre = statistics.median(residuals)
        sigma = 1.4826 * statistics.median(abs(r - centre) for r in residuals)
        recent = statistics.median(residuals[-3:])
        broken = -recent * math.copysign(1, slope) > 3 * max(sigma, 1e-9 + 1e-6 * abs(intercept))
    return slope, lo, hi, significant, broken


def _brute_force(
    model: HealthModel, series: dict[str, list[tuple[date, float]]], horizon: int
) -> tuple[int | None, int | None, int | None]:
    latest = {k: max(v) for k, v in series.items() if v}
    now = score_health(model, latest, AS_OF)
    if now.band == "red":
        return 0, 0, 0
    fresh = {r.key: r.value for r in now.indicators if r.status == "fresh"}
    moving: dict[str, tuple[float, float, float]] = {}
    fitted = False
    for ind_ in model.indicators:
        if ind_.kind != "leading" or not ind_.continuous:
            continue
        pts = sorted(
            ((d - AS_OF).days, v) for d, v in series.get(ind_.key, []) if 0 <= (AS_OF - d).days < 28
        )
        if len(pts) < 7:
            continue
        fit = _naive_fit(pts)
        if fit is None:
            continue
        fitted = True
        slope, lo, hi, significant, broken = fit
        if significant and not broken and ind_.key in fresh:
            worse, better = (lo, hi) if ind_.direction == "higher" else (hi, lo)
            moving[ind_.key] = (slope, worse, better)
    if not fitted or now.score is None or not moving:
        return None, None, None

    def first_red(which: int) -> int | None:
        for k in range(1, horizon + 1):
            day = AS_OF + timedelta(days=k)
            values = {
                key: (day, fresh[key] + moving[key][which] * k if key in moving else fresh[key])
                for key in fresh
            }
            if score_health(model, values, day).band == "red":
                return k
        return None

    return first_red(0), first_red(1), first_red(2)


def test_matches_brute_force_on_random_portfolios() -> None:
    rng = random.Random(20261123)
    found = set()
    for _ in range(150):
        series: dict[str, list[tuple[date, float]]] = {}
        for indicator in MODEL.indicators:
            if rng.random() < 0.1:
                continue
            lo, hi = sorted((indicator.floor, indicator.ceiling))
            base = rng.uniform(lo, hi)
            drift = rng.uniform(-2.5, 2.5) * (hi - lo) / 100
            noise = rng.choice((0.0, 0.5, 3.0)) * (hi - lo) / 100
            step = rng.choice((1, 1, 2, 3))
            count = rng.randint(1, 28)
            series[indicator.key] = [
                (AS_OF - timedelta(days=age), round(base - drift * age + rng.gauss(0, noise), 1))
                for age in range(rng.randint(0, 3), rng.randint(0, 3) + count * step, step)
            ]
        point, earliest, latest = _brute_force(MODEL, series, 60)
        result = forecast_red(MODEL, series, AS_OF)
        assert result.red_in_days == point, series
        if point is not None:
            assert (result.red_in_days_earliest, result.red_in_days_latest) == (earliest, latest)
        found.add("none" if point is None else "now" if point == 0 else "later")
    # The random cases must exercise every outcome, or this test proves little.
    assert found == {"none", "now", "later"}


def test_nan_readings_are_skipped() -> None:
    usage = [*daily(70.0, -1.0)[1:], (AS_OF - timedelta(days=0), float("nan"))]
    usage.append((AS_OF, 70.0))
    result = forecast_red(TWO, {"usage": usage, **NPS_AT_GREEN}, AS_OF)
    assert result.red_in_days == 51


def test_forecast_is_a_plain_dataclass_with_its_range() -> None:
    """What the charts draw: a plain, comparable value with the range and the projected path."""
    series = {"usage": daily(70.0, -1.0), **NPS_AT_GREEN}
    a, b = forecast_red(TWO, series, AS_OF), forecast_red(TWO, series, AS_OF)
    assert isinstance(a, Forecast) and a == b
    # Day 1: usage 69 scores 50 + 26 * 29 / 30 = 75.13; with NPS at 76 the mean is 75.57 -> 75.6.
    assert [p.mid for p in a.projection(2)] == [
        76.0,
        round_half_away((76 + 50 + 26 * 29 / 30) / 2),
        75.1,
    ]
