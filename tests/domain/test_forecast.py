"""Red forecast: hand-checked day counts, the no-forecast cases, and a brute-force cross-check."""

from __future__ import annotations

import random
import time
from datetime import date, timedelta

import pytest

from domain.forecast import Forecast, forecast_red
from domain.health import score_health
from domain.health_model import Bands, HealthModel, Indicator, load_health_models

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
    assert result.red_in_days == 51
    assert result.slopes["usage"] == pytest.approx(-1.0)
    assert result.worsening == ("usage",)
    assert result.current_score == 76.0
    assert result.summary() == "likely to turn red in ~51 days"


def test_red_beyond_the_horizon_is_none() -> None:
    series = {"usage": daily(70.0, -1.0), **NPS_AT_GREEN}
    result = forecast_red(TWO, series, AS_OF, horizon_days=50)
    assert result.red_in_days is None
    assert result.enough_data
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


def test_flat_series_never_turns_red() -> None:
    result = forecast_red(TWO, {"usage": daily(55.0, 0.0), **NPS_AT_GREEN}, AS_OF)
    assert result == Forecast(None, 60, {"usage": 0.0}, (), True, 69.5, ("usage", "nps"))
    assert result.summary() == "no red in sight for 60 days"


def test_improving_indicator_is_not_worsening() -> None:
    result = forecast_red(TWO, {"usage": daily(45.0, 0.5), **NPS_AT_GREEN}, AS_OF)
    assert result.red_in_days is None
    assert result.slopes["usage"] == pytest.approx(0.5)
    assert result.worsening == ()


def test_already_red_is_zero() -> None:
    series = {"usage": daily(10.0, 0.0), "nps": [(AS_OF, 0.0)]}  # (12.5 + 50) / 2 = 31.25
    result = forecast_red(TWO, series, AS_OF)
    assert result.red_in_days == 0
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
    narrow = forecast_red(TWO, {"usage": points, **NPS_AT_GREEN}, AS_OF, window_days=10)
    assert narrow.slopes["usage"] == pytest.approx(0.0)
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


def _brute_force(
    model: HealthModel, series: dict[str, list[tuple[date, float]]], horizon: int
) -> int | None:
    """The obvious, slow reading of the spec: refit naively, rescore every day with score_health."""
    latest = {k: max(v) for k, v in series.items() if v}
    now = score_health(model, latest, AS_OF)
    if now.band == "red":
        return 0
    fresh = {r.key for r in now.indicators if r.status == "fresh"}
    lines = {}
    for ind_ in model.indicators:
        pts = [((d - AS_OF).days, v) for d, v in series.get(ind_.key, []) if (AS_OF - d).days < 28]
        if ind_.kind == "leading" and len(pts) >= 7:
            mx = sum(x for x, _ in pts) / len(pts)
            my = sum(y for _, y in pts) / len(pts)
            slope = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
            lines[ind_.key] = (my - slope * mx, slope)
    if not lines:
        return None
    for k in range(1, horizon + 1):
        day = AS_OF + timedelta(days=k)
        projected = {key: (day, a + b * k) for key, (a, b) in lines.items()}
        held = {key: (day, latest[key][1]) for key in fresh if key not in lines}
        result = score_health(model, {**held, **projected}, day)
        if result.band == "red":
            return k
    return None


def test_matches_brute_force_on_random_portfolios() -> None:
    rng = random.Random(20261123)
    found = set()
    for _ in range(300):
        series: dict[str, list[tuple[date, float]]] = {}
        for indicator in MODEL.indicators:
            if rng.random() < 0.1:
                continue
            lo, hi = sorted((indicator.floor, indicator.ceiling))
            base = rng.uniform(lo, hi)
            drift = rng.uniform(-2.5, 2.5) * (hi - lo) / 100
            step = rng.choice((1, 2, 3, 5))
            count = rng.randint(1, 20)
            series[indicator.key] = [
                (AS_OF - timedelta(days=age), base - drift * age + rng.uniform(-1, 1))
                for age in range(rng.randint(0, 20), rng.randint(0, 20) + count * step, step)
            ]
        expected = _brute_force(MODEL, series, 60)
        assert forecast_red(MODEL, series, AS_OF).red_in_days == expected, series
        found.add("none" if expected is None else "now" if expected == 0 else "later")
    # The random cases must exercise every outcome, or this test proves little.
    assert found == {"none", "now", "later"}


def test_fast_enough_for_a_large_portfolio() -> None:
    rng = random.Random(7)
    portfolios = [
        {
            key: daily(rng.uniform(20, 90), rng.uniform(-1.5, 1.5))
            for key in ("product_usage", "feature_adoption")
        }
        | {"nps": [(AS_OF, rng.uniform(-20, 60))], "csm_sentiment": [(AS_OF, 2.0)]}
        for _ in range(2000)
    ]
    started = time.perf_counter()
    results = [forecast_red(MODEL, s, AS_OF) for s in portfolios]
    elapsed = time.perf_counter() - started
    assert len({r.red_in_days for r in results}) > 3
    # ~0.1 s on a laptop; a generous bound that still catches an accidental O(days^2) path.
    assert elapsed < 2.0


def test_nan_readings_are_skipped() -> None:
    usage = [*daily(70.0, -1.0), (AS_OF, float("nan"))]
    result = forecast_red(TWO, {"usage": usage, **NPS_AT_GREEN}, AS_OF)
    assert result.red_in_days == 51
