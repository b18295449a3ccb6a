"""The worked examples of docs/health.md, computed by the code that computes the real numbers."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from domain import metrics
from domain.forecast import MovingInput, _first_red_day, describe
from domain.health import score_health, trend
from domain.health_model import load_health_models
from domain.retention import retention_inputs

DOC = (Path(__file__).resolve().parents[2] / "docs" / "health.md").read_text(encoding="utf-8")
MODEL = load_health_models().default
DAY = date(2026, 11, 27)
ANSWERS = [10, 9, 9, 8, 6, 3]
LATEST = {
    "product_usage": (DAY, 55.0),
    "feature_adoption": (DAY - timedelta(days=2), 45.0),
    "support_tickets": (DAY, 6.0),
    "exec_engagement": (DAY - timedelta(days=31), 45.0),
    "nps": (DAY - timedelta(days=12), metrics.nps(ANSWERS)),
    "payment_days_overdue": (DAY, 0.0),
    "csm_sentiment": (DAY - timedelta(days=9), 2.0),
}


def test_the_score_example() -> None:
    result = score_health(MODEL, LATEST, DAY, responses={"nps": len(ANSWERS)})
    scores = {r.key: r.score for r in result.indicators}
    assert scores["product_usage"] == scores["feature_adoption"] == 63.0
    assert scores["support_tickets"] == pytest.approx(60.4)
    assert scores["nps"] == pytest.approx(64.44, abs=0.01)
    assert scores["payment_days_overdue"] == 100.0
    assert scores["csm_sentiment"] == pytest.approx(67.33, abs=0.01)
    stale = result.indicators[3]
    assert (stale.key, stale.status, stale.age_days, stale.score) == (
        "exec_engagement",
        "stale",
        31,
        None,
    )
    assert (result.score, result.band, result.coverage) == (67.8, "amber", 0.9)
    assert "= 6100.7 / 90 = **67.8, amber**" in DOC
    assert metrics.nps(ANSWERS) == pytest.approx(16.67, abs=0.01)


def test_the_trend_example() -> None:
    moved = trend(67.8, 69.6, 84.3)
    assert (moved.delta_7d, moved.delta_30d, moved.direction) == (-1.8, -16.5, "down")
    assert "−1.8 in 7 days" in DOC and "−16.5 in 30 days" in DOC


def test_the_forecast_example() -> None:
    result = score_health(MODEL, LATEST, DAY)
    held = sum(
        MODEL.indicator(r.key).weight * r.score
        for r in result.indicators
        if r.score is not None and r.key not in ("product_usage", "feature_adoption")
    )
    assert held == pytest.approx(3580.7, abs=0.05)
    moving = [
        MovingInput(MODEL.indicator("product_usage"), 55.0, -1.2, -1.4, -1.0),
        MovingInput(MODEL.indicator("feature_adoption"), 45.0, -0.8, -1.0, -0.6),
    ]
    days = [
        _first_red_day(held, 90.0, moving, pick, 50.0, 60)
        for pick in (lambda m: m.slope, lambda m: m.worse_slope, lambda m: m.better_slope)
    ]
    assert days == [34, 28, 42]
    phrase = describe("red", *days)
    assert phrase == "likely to turn red in 28–42 days"
    assert f'"{phrase}"' in DOC


def test_the_retention_example() -> None:
    q1 = retention_inputs(
        {
            1: [(date(2025, 2, 15), 100_000.0), (date(2026, 2, 15), 120_000.0)],
            2: [(date(2024, 3, 1), 100_000.0), (date(2026, 3, 1), 0.0)],
        },
        date(2026, 1, 1),
        date(2026, 3, 31),
    )
    assert (round(q1.grr * 100, 1), round(q1.nrr * 100, 1)) == (50.0, 60.0)
    assert q1.logo_churn == 0.5
    assert (round(q1.mrr_start), round(q1.mrr_end)) == (16_667, 10_000)
    assert "GRR = (200,000 − 0 − 100,000) / 200,000 = **50.0 %**" in DOC
    # What the digest computed before, with today's ARR as the base, for the record.
    old_base = 120_000 + 100_000
    assert round(metrics.grr(old_base, 0, 100_000) * 100, 1) == 54.5
    assert round(metrics.nrr(old_base, 20_000, 0, 100_000) * 100, 1) == 63.6
