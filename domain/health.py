"""Health scoring: indicator scores, the freshness-aware weighted score, drivers and trend."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from domain.health_model import HealthModel, Indicator
from domain.numbers import round_half_away

Band = Literal["red", "amber", "green", "insufficient"]
Status = Literal["fresh", "stale", "missing"]

# Anchor scores of the piecewise-linear indicator curve (design: floor->0, red->50, green->76,
# ceiling->100). They match the default bands, so an indicator at its red threshold alone is red.
SCORE_AT_FLOOR = 0.0
SCORE_AT_RED = 50.0
SCORE_AT_GREEN = 76.0
SCORE_AT_CEILING = 100.0

# Below this share of the total weight present, the overall score would be mostly guesswork.
MIN_COVERAGE = 0.5
# Weights are floats summed from YAML; a coverage of exactly 50% must not fail on rounding noise.
_EPS = 1e-9
# A reading older than its max age is stale: shown with its age, but it does not count. Older than
# this it is not worth showing at all and counts as missing.
OLDEST_READING_DAYS = 400


def indicator_score(indicator: Indicator, value: float) -> float:
    """Score a raw value 0..100: linear between floor/red/green/ceiling, clamped at both ends.

    Works for lower-is-better indicators by mirroring the axis, so the same breakpoints apply.
    """
    if math.isnan(value):
        raise ValueError(f"indicator {indicator.key!r}: value is NaN")
    sign = 1.0 if indicator.direction == "higher" else -1.0
    v = sign * value
    floor = sign * indicator.floor
    red = sign * indicator.red
    green = sign * indicator.green
    ceiling = sign * indicator.ceiling
    # After mirroring, floor < red < green <= ceiling holds for both directions (validated).
    if v <= floor:
        return SCORE_AT_FLOOR
    if v >= ceiling:
        # Checked before green so a model with green == ceiling gives its best value 100.
        return SCORE_AT_CEILING
    if v < red:
        return SCORE_AT_FLOOR + (SCORE_AT_RED - SCORE_AT_FLOOR) * (v - floor) / (red - floor)
    if v < green:
        return SCORE_AT_RED + (SCORE_AT_GREEN - SCORE_AT_RED) * (v - red) / (green - red)
    return SCORE_AT_GREEN + (SCORE_AT_CEILING - SCORE_AT_GREEN) * (v - green) / (ceiling - green)


@dataclass(frozen=True)
class IndicatorResult:
    """One indicator's part in a health result; score/value are None when it did not count."""

    key: str
    label: str
    kind: str
    weight: float
    value: float | None
    score: float | None
    day: date | None
    age_days: int | None
    status: Status
    effective_weight: float  # weight after redistributing missing/stale weight; 0 if not counted
    responses: int | None = None  # survey-fed indicators: the answers behind the value


@dataclass(frozen=True)
class Driver:
    """An indicator pulling the score down: impact = weight * (100 - score)."""

    key: str
    label: str
    kind: str
    value: float | None
    score: float
    weight: float
    impact: float


@dataclass(frozen=True)
class HealthResult:
    """The overall health of one account on one day."""

    score: float | None
    band: Band
    coverage: float
    indicators: tuple[IndicatorResult, ...]
    drivers: tuple[Driver, ...]

    def indicator_scores_json(self) -> dict[str, dict[str, Any]]:
        """Plain JSON-able per-indicator breakdown, keyed by indicator key (for snapshots)."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.indicators:
            entry = {
                "label": r.label,
                "kind": r.kind,
                "value": r.value,
                "score": None if r.score is None else round_half_away(r.score),
                "day": None if r.day is None else r.day.isoformat(),
                "age_days": r.age_days,
                "status": r.status,
                "weight": r.weight,
                "effective_weight": round(r.effective_weight, 4),
            }
            if r.responses is not None:
                entry["responses"] = r.responses
            out[r.key] = entry
        return out

    def drivers_json(self) -> list[dict[str, Any]]:
        """Plain JSON-able drivers, biggest impact first."""
        return [
            {
                "key": d.key,
                "label": d.label,
                "kind": d.kind,
                "value": d.value,
                "score": round_half_away(d.score),
                "weight": d.weight,
                "impact": round_half_away(d.impact),
            }
            for d in self.drivers
        ]


def score_health(
    model: HealthModel,
    latest: Mapping[str, tuple[date, float]],
    as_of: date,
    *,
    responses: Mapping[str, int] | None = None,
) -> HealthResult:
    """Score an account from its most recent reading per indicator, as seen on `as_of`.

    Stale (older than max_age_days) and missing readings get no weight; their weight is spread
    over the fresh indicators in proportion to their own weights. With less than half of the total
    weight fresh the score is None and the band "insufficient". Readings dated after `as_of`, or
    more than OLDEST_READING_DAYS before it, count as missing, so re-scoring a past day never
    peeks into the future. ``responses`` gives the number of survey answers behind the values of
    survey-fed indicators (shown on the card). The score is rounded to one decimal, half away from
    zero, and the band is the band of that rounded number: the number shown and its colour agree.
    """
    total = model.total_weight
    rows: list[tuple[Indicator, date | None, float | None, int | None, Status, float | None]] = []
    fresh_weight = 0.0
    for ind in model.indicators:
        reading = latest.get(ind.key)
        # NaN is what a blank spreadsheet cell often becomes: no reading, not a score of NaN.
        if reading is None or reading[0] > as_of or math.isnan(reading[1]):
            rows.append((ind, None, None, None, "missing", None))
            continue
        day, value = reading
        value = float(value)
        age = (as_of - day).days
        if age > OLDEST_READING_DAYS:
            rows.append((ind, None, None, None, "missing", None))
            continue
        if age > ind.max_age_days:
            # Keep the stale value visible (the "why"), but it does not count.
            rows.append((ind, day, value, age, "stale", None))
            continue
        fresh_weight += ind.weight
        rows.append((ind, day, value, age, "fresh", indicator_score(ind, value)))

    coverage = fresh_weight / total if total > 0 else 0.0
    sufficient = fresh_weight > 0 and fresh_weight >= total * MIN_COVERAGE - _EPS
    scale = total / fresh_weight if sufficient else 0.0

    results: list[IndicatorResult] = []
    drivers: list[tuple[float, int, Driver]] = []
    weighted = 0.0
    for index, (ind, day, value, age, status, score) in enumerate(rows):
        counted = status == "fresh" and sufficient
        # Positional arguments: this runs for every indicator of every account on each
        # recompute, and keyword matching is a measurable part of it.
        results.append(
            IndicatorResult(
                ind.key,
                ind.label,
                ind.kind,
                ind.weight,
                value,
                score,
                day,
                age,
                status,
                ind.weight * scale if counted else 0.0,
                None if responses is None else responses.get(ind.key),
            )
        )
        if score is None:
            continue
        weighted += ind.weight * score
        impact = ind.weight * (SCORE_AT_CEILING - score)
        if impact > 0:
            # Drivers stay useful even when the score is insufficient: they show what is known.
            driver = Driver(ind.key, ind.label, ind.kind, value, score, ind.weight, impact)
            drivers.append((-impact, index, driver))
    drivers.sort(key=lambda t: (t[0], t[1]))

    overall: float | None = None
    band: Band = "insufficient"
    if sufficient:
        overall = round_half_away(weighted / fresh_weight)
        # Band the rounded number, so the score shown and its colour always agree.
        band = model.bands.band(overall)
    return HealthResult(
        score=overall,
        band=band,
        coverage=min(1.0, coverage),
        indicators=tuple(results),
        drivers=tuple(d for _, _, d in drivers),
    )


# The trend rule (docs/health.md): a change of more than 2 points in 7 days sets the direction;
# when the last week is within that noise, a change of more than 5 points in 30 days does (a slow
# slide of 0.2 points a day is a slide); otherwise the score is flat.
FLAT_WITHIN_7D = 2.0
FLAT_WITHIN_30D = 5.0

Direction = Literal["up", "down", "flat", "unknown"]


@dataclass(frozen=True)
class Trend:
    """Score change against the snapshots 7 and 30 days earlier, and the direction they give."""

    current: float | None
    score_7d_ago: float | None
    score_30d_ago: float | None
    delta_7d: float | None
    delta_30d: float | None
    direction: Direction
    basis: Literal["7d", "30d", "none"] = "none"  # which change set the direction


def _delta(current: float | None, past: float | None) -> float | None:
    if current is None or past is None:
        return None
    return round_half_away(current - past)


def trend(
    current: float | None,
    score_7d_ago: float | None,
    score_30d_ago: float | None,
    *,
    flat_within_7d: float = FLAT_WITHIN_7D,
    flat_within_30d: float = FLAT_WITHIN_30D,
) -> Trend:
    """Deltas (one decimal) and a direction that reads both the 7- and the 30-day change.

    The week decides when it moved more than ``flat_within_7d`` points (recent movement is what
    a CSM acts on); otherwise the month decides when it moved more than ``flat_within_30d``, so a
    slow slide reads "down" even though no single week shows it; otherwise "flat". "unknown"
    without any earlier score.
    """
    d7 = _delta(current, score_7d_ago)
    d30 = _delta(current, score_30d_ago)
    direction: Direction = "unknown"
    basis: Literal["7d", "30d", "none"] = "none"
    if d7 is not None and abs(d7) > flat_within_7d + _EPS:
        direction, basis = ("up" if d7 > 0 else "down"), "7d"
    elif d30 is not None and abs(d30) > flat_within_30d + _EPS:
        direction, basis = ("up" if d30 > 0 else "down"), "30d"
    elif d7 is not None or d30 is not None:
        direction = "flat"
    return Trend(current, score_7d_ago, score_30d_ago, d7, d30, direction, basis)
