"""The nightly (single-day) recompute takes shortcuts; each gives exactly what the plain path gives.

No timings here (bench/bench_recompute.py has those): these keep the shortcuts honest.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

import domain.trendfit as trendfit
from domain.forecast import fits_trend
from domain.health_model import HealthModel, HealthModels, load_health_models
from domain.trendfit import theil_sen_many
from handlers.recompute import _window_columns, recompute_health, score_day
from storage.bulk import insert_dicts, table

TODAY = date(2026, 11, 23)
AT = datetime(2026, 11, 23, 6, tzinfo=UTC)


def _models() -> HealthModels:
    """The default model, and an enterprise one whose weights are whole numbers (25, not 25.0:
    JSON writes them differently) and whose executive touchpoint weighs more."""
    default = load_health_models(None).default
    heavier = {"exec_engagement": 20}
    indicators = tuple(
        dataclasses.replace(ind, weight=heavier.get(ind.key, int(ind.weight)))
        for ind in default.indicators
    )
    enterprise = HealthModel(name="enterprise", indicators=indicators, bands=default.bands)
    return HealthModels(default=default, by_segment={"enterprise": enterprise}, source="test")


def _portfolio(engine: Engine, rng: random.Random) -> None:
    """Accounts whose readings take every shape the recompute meets: trends that slide, recover
    or stall, noisy and flat series, ties, gaps too wide to fit, stale and ancient readings,
    readings dated after the day, zeros of both signs, survey answers, churn."""
    keys = [ind.key for ind in load_health_models(None).default.indicators]
    accounts, readings, answers = [], [], []
    for n in range(1, 41):
        churned = None
        if n == 7:
            churned = TODAY - timedelta(days=3)  # gone: no snapshot today
        elif n == 8:
            churned = TODAY + timedelta(days=3)
        accounts.append(
            {
                "external_id": f"ACC-{n}",
                "name": f"Account {n}",
                "aliases": [],
                "segment": "enterprise" if n % 3 == 0 else "mid-market",
                "churned_on": churned,
                "created_at": AT,
                "updated_at": AT,
            }
        )
        if n == 5:
            continue  # no readings at all
        shape = n % 6
        for key in keys:
            start, step = rng.uniform(20, 90), rng.choice([-1.5, -0.6, 0.0, 0.4, 1.2])
            every = 3 if shape == 1 else 1  # every third day: too few points to fit
            for back in range(0, 60, every):
                if shape == 2 and back < 4:
                    continue  # nothing in the last days
                value = start + step * (60 - back) + rng.gauss(0, 2 if shape != 3 else 0)
                if shape == 3:
                    value = round(value)  # whole numbers: many ties
                if shape == 4 and back < 5:
                    value = start  # a recovery (or a relapse) at the end
                if key == "csm_sentiment":
                    value = rng.choice([1.0, 2.0, 3.0])
                if key == "payment_days_overdue" and shape != 5:
                    value = rng.choice([0.0, -0.0, 0.0, 12.0])
                readings.append((n, key, TODAY - timedelta(days=back), round(value, 1)))
        # A stale executive touchpoint, one too old to show, and one from the future.
        readings.append((n, "exec_engagement", TODAY - timedelta(days=75), 40.0))
        readings.append((n, "nps", TODAY - timedelta(days=500), -20.0))
        readings.append((n, "support_tickets", TODAY + timedelta(days=2), 1.0))
        if n % 4 == 0:
            for back in rng.sample(range(1, 200), 6):
                answers.append((n, "nps", TODAY - timedelta(days=back), rng.randint(0, 10)))
    with engine.begin() as conn:
        insert_dicts(conn, table("account"), accounts)
        # Only the newest reading of a key per account and day is kept (as imports do).
        unique = {(a, k, d): v for a, k, d, v in readings}
        insert_dicts(
            conn,
            table("indicator_reading"),
            [
                {"account_id": a, "indicator_key": k, "day": d, "value": v, "source": "test"}
                for (a, k, d), v in unique.items()
            ],
        )
        insert_dicts(
            conn,
            table("survey_response"),
            [
                {"account_id": a, "kind": kind, "responded_on": d, "score": s}
                for a, kind, d, s in answers
            ],
        )


def _inputs(engine: Engine, account_id: int) -> tuple[dict, dict]:
    """One account's readings and survey answers read plainly, as the card's live path does."""
    rd, srv = table("indicator_reading"), table("survey_response")
    series: dict[str, list[tuple[date, float]]] = {}
    answers: dict[str, list[tuple[date, int]]] = {}
    with engine.connect() as conn:
        for key, day, value in conn.execute(
            select(rd.c.indicator_key, rd.c.day, rd.c.value)
            .where(rd.c.account_id == account_id, rd.c.day <= TODAY)
            .order_by(rd.c.day)
        ):
            series.setdefault(key, []).append((day, value))
        for kind, day, score in conn.execute(
            select(srv.c.kind, srv.c.responded_on, srv.c.score)
            .where(srv.c.account_id == account_id, srv.c.responded_on <= TODAY)
            .order_by(srv.c.responded_on)
        ):
            answers.setdefault(kind, []).append((day, score))
    return series, answers


def test_the_nightly_recompute_stores_what_the_plain_path_computes(any_engine: Engine) -> None:
    models = _models()
    _portfolio(any_engine, random.Random(5))

    summary = recompute_health(any_engine, as_of=TODAY, models=models)
    recompute_health(any_engine, as_of=TODAY, models=models)  # and again: the update path

    snap, acc = table("health_snapshot"), table("account")
    with any_engine.connect() as conn:
        segments = dict(conn.execute(select(acc.c.id, acc.c.segment)).all())
        rows = conn.execute(select(snap).order_by(snap.c.account_id)).mappings().all()
        texts = {}
        if any_engine.dialect.name == "sqlite":  # JSON is text there: compare it exactly
            texts = {
                r[0]: (r[1], r[2])
                for r in conn.exec_driver_sql(
                    "SELECT account_id, indicator_scores, drivers FROM health_snapshot"
                )
            }
    assert summary.snapshots == len(rows) == 39  # 40 accounts, one churned before today
    statuses = set()
    for row in rows:
        model = models.for_segment(segments[row["account_id"]])
        fitted = frozenset(i.key for i in model.indicators if fits_trend(i))
        series, answers = _inputs(any_engine, row["account_id"])
        result, forecast = score_day(model, series, answers, TODAY, fitted)
        expected: dict[str, Any] = {
            "day": TODAY,
            "score": result.score,
            "band": result.band,
            "coverage": result.coverage,
            "model_name": model.name,
            "indicator_scores": result.indicator_scores_json(),
            "drivers": result.drivers_json(),
            "forecast_red_in_days": forecast.red_in_days,
            "forecast_red_earliest": forecast.red_in_days_earliest,
            "forecast_red_latest": forecast.red_in_days_latest,
            "forecast_status": forecast.status,
        }
        assert {k: row[k] for k in expected} == expected, row["account_id"]
        if texts:
            scores_text, drivers_text = texts[row["account_id"]]
            assert scores_text == json.dumps(result.indicator_scores_json())
            assert drivers_text == json.dumps(result.drivers_json())
        statuses.add(forecast.status)
    # The portfolio reaches every kind of forecast, so each was compared.
    assert statuses >= {"already_red", "no_trend", "insufficient", "no_red"}


def test_snapshot_times_are_converted_once_per_recompute_on_sqlite(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlmodel.sql.sqltypes import UTCDateTime

    _portfolio(engine, random.Random(2))
    calls = []
    convert = UTCDateTime.process_bind_param

    def counting(self, value, dialect):  # type: ignore[no-untyped-def]
        calls.append(value)
        return convert(self, value, dialect)

    monkeypatch.setattr(UTCDateTime, "process_bind_param", counting)
    summary = recompute_health(engine, as_of=TODAY, models=_models())

    # SQLAlchemy used to process every row's parameters: the same instant converted once a row.
    assert summary.snapshots == 39
    assert len(calls) == 1


def _series(rng: random.Random, points: int) -> list[float]:
    kind = rng.random()
    if kind < 0.2:
        return [float(rng.randint(0, 3)) for _ in range(points)]  # ties everywhere
    if kind < 0.3:
        return [5.0] * points  # flat
    start, step = rng.uniform(0, 100), rng.uniform(-2, 2)
    return [round(start + step * x + rng.gauss(0, 1), 1) for x in range(points)]


@pytest.mark.parametrize("points", [3, 7, 14, 28])
def test_fits_do_not_depend_on_how_many_series_go_through_numpy_at_once(
    points: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(points)
    xs = tuple(range(-points + 1, 1))
    rows = [_series(rng, points) for _ in range(300)]
    one_by_one = [theil_sen_many(xs, [row])[0] for row in rows]
    for block in (1, 7, 64, 1000):
        monkeypatch.setattr(trendfit, "BLOCK_ROWS", block)
        assert theil_sen_many(xs, rows) == one_by_one, block


def test_tie_terms_count_every_pair_of_equal_values() -> None:
    rng = np.random.default_rng(3)
    for trial in range(300):
        y = rng.integers(0, int(rng.integers(1, 6)), (int(rng.integers(1, 40)), 28)).astype(float)
        if trial % 5 == 0:
            y[rng.random(y.shape) < 0.1] = np.inf
        if trial % 7 == 0:
            y[rng.random(y.shape) < 0.1] = np.nan
        ordered = np.sort(y, axis=1)
        expected = []
        for row in ordered.tolist():
            if not any(a == b for a, b in itertools.pairwise(row)):
                expected.append(0.0)
                continue
            # Each value's group size t, counted pairwise (NaN equals nothing, not even itself).
            t = [sum(1 for b in row if a == b) for a in row]
            expected.append(float(sum((k - 1) * (2 * k + 5) for k in t)))
        assert trendfit._row_tie_terms(ordered).tolist() == expected


def test_a_key_whose_rows_come_in_two_runs_is_joined_up() -> None:
    rows = [
        (1, "b", "2026-11-20", 1.0),
        (1, "a", "2026-11-21", 2.0),
        (1, "b", "2026-11-22", 3.0),
        (2, "a", "2026-11-22", 4.0),
    ]
    assert list(_window_columns(iter(rows))) == [
        (1, {"b": (("2026-11-20", "2026-11-22"), (1.0, 3.0)), "a": (("2026-11-21",), (2.0,))}),
        (2, {"a": (("2026-11-22",), (4.0,))}),
    ]
