"""Recompute does each piece of work once; the fast paths give bit-for-bit the slow paths' results.

No timings here (those are in bench/): these guard the structure that makes the benchmark pass.
"""

from __future__ import annotations

import gc
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

import domain.forecast as forecast_module
import handlers.recompute as recompute_module
from domain.forecast import forecast_red
from domain.health import score_health
from domain.health_model import HealthModels, load_health_models
from storage.bulk import insert_dicts, table

TODAY = date(2026, 11, 23)
AT = datetime(2026, 11, 23, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def models() -> HealthModels:
    return load_health_models(None)


def _portfolio(engine: Engine, accounts: int) -> None:
    rng = random.Random(11)
    keys = [ind.key for ind in load_health_models(None).default.indicators]
    with engine.begin() as conn:
        insert_dicts(
            conn,
            table("account"),
            [
                {
                    "external_id": f"ACC-{n}",
                    "name": f"Account {n}",
                    "aliases": [],
                    "segment": "mid-market",
                    "created_at": AT,
                    "updated_at": AT,
                }
                for n in range(1, accounts + 1)
            ],
        )
        insert_dicts(
            conn,
            table("indicator_reading"),
            [
                {
                    "account_id": n,
                    "indicator_key": key,
                    "day": TODAY - timedelta(days=d),
                    "value": rng.uniform(0, 100) if key != "csm_sentiment" else 2.0,
                    "source": "test",
                }
                for n in range(1, accounts + 1)
                for key in keys
                for d in range(40)
            ],
        )


def test_recompute_scores_each_account_once(
    engine: Engine, models: HealthModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    _portfolio(engine, 5)
    calls = {"recompute": 0, "forecast": 0}

    def counting(name):  # type: ignore[no-untyped-def]
        def score(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls[name] += 1
            return score_health(*args, **kwargs)

        return score

    monkeypatch.setattr(recompute_module, "score_health", counting("recompute"))
    monkeypatch.setattr(forecast_module, "score_health", counting("forecast"))

    summary = recompute_module.recompute_health(engine, as_of=TODAY, models=models)

    assert summary.accounts == 5
    # The forecast reuses the score recompute just computed instead of scoring again.
    assert calls == {"recompute": 5, "forecast": 0}


def test_recompute_restores_garbage_collection(engine: Engine, models: HealthModels) -> None:
    _portfolio(engine, 2)
    assert gc.isenabled()
    recompute_module.recompute_health(engine, as_of=TODAY, models=models)
    assert gc.isenabled()
    gc.disable()
    try:
        recompute_module.recompute_health(engine, as_of=TODAY, models=models)
        assert not gc.isenabled()  # a caller's own choice is left alone
    finally:
        gc.enable()


def _sliding(days: int = 28) -> dict[str, list[tuple[date, float]]]:
    slide = {
        "product_usage": (66.0, -0.6),
        "feature_adoption": (55.0, -0.5),
        "support_tickets": (3.0, 0.1),
        "exec_engagement": (20.0, 0.8),
        "csm_sentiment": (2.5, -0.01),
    }
    series = {
        key: [(TODAY - timedelta(days=d), start + step * (days - 1 - d)) for d in range(days)][::-1]
        for key, (start, step) in slide.items()
    }
    series["nps"] = [(TODAY - timedelta(days=3), 30.0)]
    series["payment_days_overdue"] = [(TODAY - timedelta(days=1), 5.0)]
    return series


def test_forecast_with_current_matches_forecast_without(models: HealthModels) -> None:
    model = models.default
    series = _sliding()
    latest = {key: readings[-1] for key, readings in series.items()}
    current = score_health(model, latest, TODAY)

    assert forecast_red(model, series, TODAY, current=current) == forecast_red(model, series, TODAY)


def test_snapshot_json_text_is_what_json_dumps_gives(models: HealthModels) -> None:
    import json

    from handlers.recompute import _JsonText

    model = models.default
    rng = random.Random(3)
    as_text = _JsonText()
    for n in range(300):
        latest: dict[str, tuple[date, float]] = {}
        for ind in model.indicators:
            pick = rng.random()
            if pick < 0.1:
                continue  # missing
            value = rng.choice([0.0, -0.0, ind.red, ind.green, ind.floor, rng.uniform(-20, 120)])
            age = rng.choice([0, 1, 3, ind.max_age_days + 1])
            latest[ind.key] = (TODAY - timedelta(days=age), value)
        # Survey-fed indicators carry their number of answers into the JSON.
        responses = {"nps": rng.randint(1, 9)} if rng.random() < 0.5 else None
        result = score_health(model, latest, TODAY, responses=responses)
        for _ in range(2):  # the second time from the cache
            assert as_text.scores(result) == json.dumps(result.indicator_scores_json()), n
            assert as_text.drivers(result) == json.dumps(result.drivers_json()), n
