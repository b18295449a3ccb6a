"""Health scoring: indicator curves, weighting, freshness, coverage, bands, drivers and trend."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.health import Driver, indicator_score, score_health, trend
from domain.health_model import Bands, HealthModel, Indicator, load_health_models

AS_OF = date(2026, 11, 23)
MODEL = load_health_models().default


def ind(key: str, weight: float, **over: object) -> Indicator:
    """A higher-is-better 0/40/70/100 indicator, overridable."""
    fields: dict[str, object] = {
        "key": key,
        "label": key.title(),
        "weight": weight,
        "direction": "higher",
        "red": 40,
        "green": 70,
        "floor": 0,
        "ceiling": 100,
        "kind": "leading",
        "objectivity": "objective",
        "measure": "quantitative",
        "max_age_days": 14,
    }
    fields.update(over)
    return Indicator(**fields)  # type: ignore[arg-type]


def days_ago(n: int) -> date:
    return AS_OF - timedelta(days=n)


# Every indicator fresh; hand-computed scores in comments, overall 7240 / 100 = 72.4.
ALL_FRESH = {
    "product_usage": (days_ago(1), 55.0),  # 50 + 26 * 15/30 = 63
    "feature_adoption": (days_ago(3), 45.0),  # 50 + 26 * 15/30 = 63
    "support_tickets": (days_ago(0), 3.0),  # at green: 76
    "exec_engagement": (days_ago(10), 60.0),  # 50 + 26 * 30/60 = 63
    "nps": (days_ago(100), 65.0),  # 76 + 24 * 35/70 = 88
    "payment_days_overdue": (days_ago(45), 0.0),  # at ceiling: 100; exactly max_age -> fresh
    "csm_sentiment": (days_ago(5), 2.0),  # 50 + 26 * 1/1.5 = 67.33
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-10, 0),
        (0, 0),
        (20, 25),
        (40, 50),
        (55, 63),
        (70, 76),
        (85, 88),
        (100, 100),
        (130, 100),
    ],
)
def test_indicator_score_higher_is_better(value: float, expected: float) -> None:
    assert indicator_score(MODEL.indicator("product_usage"), value) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (30, 0),
        (20, 0),
        (14, 25),
        (8, 50),
        (5.5, 63),
        (3, 76),
        (1.5, 88),
        (0, 100),
        (-2, 100),
    ],
)
def test_indicator_score_lower_is_better(value: float, expected: float) -> None:
    assert indicator_score(MODEL.indicator("support_tickets"), value) == pytest.approx(expected)


def test_amber_zone_value_scores_in_the_amber_band() -> None:
    usage = MODEL.indicator("product_usage")
    assert MODEL.bands.band(indicator_score(usage, 41)) == "amber"
    assert MODEL.bands.band(indicator_score(usage, 69)) == "amber"
    assert MODEL.bands.band(indicator_score(usage, 39)) == "red"


def test_green_equal_to_ceiling_gives_the_best_value_100() -> None:
    top = ind("top", 1, green=100)
    assert indicator_score(top, 100) == 100
    assert indicator_score(top, 70) == pytest.approx(50 + 26 * 30 / 60)


def test_weighted_mean_all_fresh() -> None:
    result = score_health(MODEL, ALL_FRESH, AS_OF)
    assert result.score == 72.4
    assert result.band == "amber"
    assert result.coverage == 1.0
    assert [r.key for r in result.indicators] == list(MODEL.keys)
    assert all(r.status == "fresh" for r in result.indicators)
    assert [r.effective_weight for r in result.indicators] == [r.weight for r in result.indicators]
    nps = result.indicators[4]
    assert (nps.value, nps.score, nps.day, nps.age_days) == (65.0, 88.0, days_ago(100), 100)


def test_missing_indicator_weight_is_redistributed() -> None:
    latest = {k: v for k, v in ALL_FRESH.items() if k != "payment_days_overdue"}
    result = score_health(MODEL, latest, AS_OF)
    # (7240 - 10 * 100) / 90 = 69.33
    assert result.score == 69.3
    assert result.coverage == pytest.approx(0.9)
    payment = result.indicators[5]
    assert (payment.status, payment.value, payment.score, payment.effective_weight) == (
        "missing",
        None,
        None,
        0.0,
    )
    usage = result.indicators[0]
    assert usage.effective_weight == pytest.approx(25 * 100 / 90)
    assert sum(r.effective_weight for r in result.indicators) == pytest.approx(100)


def test_stale_indicator_is_kept_visible_but_does_not_count() -> None:
    latest = {**ALL_FRESH, "payment_days_overdue": (days_ago(46), 0.0)}
    result = score_health(MODEL, latest, AS_OF)
    assert result.score == 69.3
    payment = result.indicators[5]
    assert (payment.status, payment.value, payment.age_days, payment.score) == (
        "stale",
        0.0,
        46,
        None,
    )
    assert payment.effective_weight == 0.0


def test_exactly_half_the_weight_is_enough() -> None:
    latest = {k: ALL_FRESH[k] for k in ("product_usage", "feature_adoption", "exec_engagement")}
    result = score_health(MODEL, latest, AS_OF)  # 25 + 15 + 10 = 50 of 100
    assert result.coverage == 0.5
    assert result.score == 63.0
    assert result.band == "amber"


def test_just_below_half_the_weight_is_insufficient() -> None:
    model = HealthModel("m", (ind("a", 50.0), ind("b", 50.001)), Bands())
    result = score_health(model, {"a": (AS_OF, 70.0)}, AS_OF)
    assert result.score is None
    assert result.band == "insufficient"
    assert result.coverage == pytest.approx(50 / 100.001)
    # Not scored, so nothing carries weight, but the known value still explains itself.
    assert [r.effective_weight for r in result.indicators] == [0.0, 0.0]
    assert [d.key for d in result.drivers] == ["a"]


def test_no_data_at_all() -> None:
    result = score_health(MODEL, {}, AS_OF)
    assert (result.score, result.band, result.coverage, result.drivers) == (
        None,
        "insufficient",
        0.0,
        (),
    )
    assert {r.status for r in result.indicators} == {"missing"}


def test_one_light_indicator_alone_is_insufficient() -> None:
    result = score_health(MODEL, {"product_usage": ALL_FRESH["product_usage"]}, AS_OF)
    assert result.score is None
    assert result.band == "insufficient"
    assert result.coverage == 0.25


def test_one_heavy_indicator_alone_decides_the_score() -> None:
    model = HealthModel("m", (ind("a", 60), ind("b", 40)), Bands())
    result = score_health(model, {"a": (AS_OF, 55.0)}, AS_OF)
    assert result.score == 63.0
    assert result.coverage == 0.6
    assert result.indicators[0].effective_weight == 100


def test_all_stale_is_insufficient() -> None:
    latest = {key: (days_ago(365), value) for key, (_, value) in ALL_FRESH.items()}
    result = score_health(MODEL, latest, AS_OF)
    assert result.score is None
    assert result.band == "insufficient"
    assert {r.status for r in result.indicators} == {"stale"}
    assert result.drivers == ()


def test_readings_after_as_of_count_as_missing() -> None:
    latest = {**ALL_FRESH, "payment_days_overdue": (AS_OF + timedelta(days=1), 0.0)}
    result = score_health(MODEL, latest, AS_OF)
    assert result.score == 69.3
    assert result.indicators[5].status == "missing"
    assert result.indicators[5].day is None


def test_unknown_keys_are_ignored() -> None:
    latest = {**ALL_FRESH, "mood_ring": (AS_OF, 1.0)}
    assert score_health(MODEL, latest, AS_OF).score == 72.4


@pytest.mark.parametrize(
    ("value", "score", "band"),
    [
        (40.0, 50.0, "red"),
        (40 + 0.1 * 30 / 26, 50.1, "amber"),
        (70 - 0.1 * 30 / 26, 75.9, "amber"),
        (70.0, 76.0, "green"),
    ],
)
def test_band_edges_through_scoring(value: float, score: float, band: str) -> None:
    model = HealthModel("m", (ind("a", 1),), Bands())
    result = score_health(model, {"a": (AS_OF, value)}, AS_OF)
    assert (result.score, result.band) == (score, band)


def test_custom_bands_apply() -> None:
    model = HealthModel("m", (ind("a", 1),), Bands(red_max=60, green_min=90))
    assert score_health(model, {"a": (AS_OF, 50.0)}, AS_OF).band == "red"  # 58.67 <= 60
    assert score_health(model, {"a": (AS_OF, 85.0)}, AS_OF).band == "amber"  # 88 < 90
    assert score_health(model, {"a": (AS_OF, 95.0)}, AS_OF).band == "green"  # 96


def test_drivers_ranked_by_impact_ties_in_model_order() -> None:
    latest = {**ALL_FRESH, "support_tickets": (AS_OF, 5.5)}  # 63, same as exec_engagement
    result = score_health(MODEL, latest, AS_OF)
    # impacts: usage 25*37=925, adoption 15*37=555, sentiment 15*32.67=490,
    # tickets 10*37=370, exec 10*37=370 (tie: model order), nps 15*12=180; payment 0 -> left out
    assert [d.key for d in result.drivers] == [
        "product_usage",
        "feature_adoption",
        "csm_sentiment",
        "support_tickets",
        "exec_engagement",
        "nps",
    ]
    first = result.drivers[0]
    assert first == Driver(
        "product_usage", "Active seats %", "leading", 55.0, first.score, 25.0, first.impact
    )
    assert first.impact == pytest.approx(925)
    assert result.drivers_json()[2] == {
        "key": "csm_sentiment",
        "label": "CSM sentiment",
        "kind": "leading",
        "value": 2.0,
        "score": 67.3,
        "weight": 15.0,
        "impact": 490.0,
    }


def test_indicator_scores_json_is_plain_data() -> None:
    latest = {k: v for k, v in ALL_FRESH.items() if k != "nps"}
    data = score_health(MODEL, latest, AS_OF).indicator_scores_json()
    assert list(data) == list(MODEL.keys)
    assert data["csm_sentiment"] == {
        "label": "CSM sentiment",
        "kind": "leading",
        "value": 2.0,
        "score": 67.3,
        "day": "2026-11-18",
        "age_days": 5,
        "status": "fresh",
        "weight": 15.0,
        "effective_weight": round(15 * 100 / 85, 4),
    }
    assert data["nps"]["status"] == "missing"
    assert data["nps"]["day"] is None
    assert data["nps"]["effective_weight"] == 0.0


@pytest.mark.parametrize(
    ("args", "d7", "d30", "direction"),
    [
        ((70.0, 60.0, 80.0), 10.0, -10.0, "up"),  # the week moved: it decides
        ((55.0, 61.5, 40.0), -6.5, 15.0, "down"),
        ((60.0, 58.0, 30.0), 2.0, 30.0, "up"),  # a quiet week, a big month: the month decides
        ((60.0, 62.0, None), -2.0, None, "flat"),
        ((60.0, 62.1, None), -2.1, None, "down"),
        ((60.0, None, 50.0), None, 10.0, "up"),
        ((60.0, 58.5, 64.9), 1.5, -4.9, "flat"),  # both within their noise
        ((60.0, 61.0, 65.1), -1.0, -5.1, "down"),
        ((60.0, None, None), None, None, "unknown"),
        ((None, 60.0, 50.0), None, None, "unknown"),
    ],
)
def test_trend(
    args: tuple[float | None, float | None, float | None],
    d7: float | None,
    d30: float | None,
    direction: str,
) -> None:
    result = trend(*args)
    assert (result.delta_7d, result.delta_30d, result.direction) == (d7, d30, direction)
    assert (result.current, result.score_7d_ago, result.score_30d_ago) == args


def test_a_slow_slide_reads_down_not_flat() -> None:
    """Acme in the demo: -1.8 in 7 days (within the week's noise) but -16.5 in 30 days. The old
    arrow read only the week and said "flat" next to a 16-point fall."""
    result = trend(54.2, 56.0, 70.7)
    assert (result.delta_7d, result.delta_30d) == (-1.8, -16.5)
    assert (result.direction, result.basis) == ("down", "30d")
    # Any slide faster than 5 points a month shows, even one no single week reveals.
    slow = trend(60.0, 61.4, 66.0)  # 0.2 points a day
    assert slow.direction == "down"


def test_trend_thresholds_are_configurable() -> None:
    assert trend(60.0, 55.0, None, flat_within_7d=5).direction == "flat"
    assert trend(60.0, 55.0, None, flat_within_7d=4.9).direction == "up"
    assert trend(60.0, 59.0, 50.0, flat_within_30d=10).direction == "flat"
    assert trend(60.0, 59.0, 50.0, flat_within_30d=9.9).direction == "up"


def test_deltas_round_half_away_from_zero() -> None:
    # 54.2 - 70.7 is -16.500000000000004 in floating point; 16.45 is 16.449999... Both print as
    # a person would round them.
    assert trend(54.2, None, 70.7).delta_30d == -16.5
    assert trend(66.45, 50.0, None).delta_7d == 16.5


def test_nan_reading_counts_as_missing() -> None:
    latest = {**ALL_FRESH, "payment_days_overdue": (AS_OF, float("nan"))}
    result = score_health(MODEL, latest, AS_OF)
    assert result.score == 69.3
    assert result.indicators[5].status == "missing"
    with pytest.raises(ValueError, match="NaN"):
        indicator_score(MODEL.indicator("nps"), float("nan"))
