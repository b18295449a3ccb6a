"""Health recomputation from readings to snapshots, checked against hand-computed scores."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from domain.forecast import forecast_red
from domain.health_model import HealthModels, load_health_models
from handlers.recompute import backfill_snapshots, lookback_days, recompute_health
from storage.bulk import insert_dicts, table

TODAY = date(2026, 11, 23)
AT = datetime(2026, 11, 23, 6, tzinfo=UTC)

# Every indicator exactly on its green threshold scores 76 (default model, weights sum to 100).
ON_GREEN = {
    "product_usage": 70.0,
    "feature_adoption": 60.0,
    "support_tickets": 3.0,
    "exec_engagement": 30.0,
    "nps": 30.0,
    "payment_days_overdue": 5.0,
    "csm_sentiment": 2.5,
}


@pytest.fixture(scope="module")
def models() -> HealthModels:
    return load_health_models(None)


def add_account(engine: Engine, n: int, *, segment: str = "mid-market", **extra: object) -> int:
    with engine.begin() as conn:
        insert_dicts(
            conn,
            table("account"),
            [
                {
                    "external_id": f"ACC-{n}",
                    "name": f"Account {n}",
                    "aliases": [],
                    "segment": segment,
                    "created_at": AT,
                    "updated_at": AT,
                    **extra,
                }
            ],
        )
        return conn.execute(
            text("SELECT id FROM account WHERE external_id = :e"), {"e": f"ACC-{n}"}
        ).scalar_one()


def add_readings(engine: Engine, account_id: int, readings: dict[str, list[tuple[date, float]]]):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        insert_dicts(
            conn,
            table("indicator_reading"),
            [
                {
                    "account_id": account_id,
                    "indicator_key": key,
                    "day": day,
                    "value": value,
                    "source": "test",
                }
                for key, series in readings.items()
                for day, value in series
            ],
        )


def snapshots(engine: Engine) -> list[tuple]:
    snap = table("health_snapshot")
    stmt = select(
        snap.c.account_id,
        snap.c.day,
        snap.c.score,
        snap.c.band,
        snap.c.coverage,
        snap.c.forecast_red_in_days,
    ).order_by(snap.c.account_id, snap.c.day)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


def today_only(values: dict[str, float], day: date = TODAY) -> dict[str, list[tuple[date, float]]]:
    return {key: [(day, value)] for key, value in values.items()}


def test_hand_computed_score_band_and_breakdown(any_engine: Engine, models: HealthModels) -> None:
    account = add_account(any_engine, 1)
    # Usage 52% sits in its amber zone: 50 + (52 - 40) / (70 - 40) * 26 = 60.4.
    add_readings(any_engine, account, today_only(ON_GREEN | {"product_usage": 52.0}))

    summary = recompute_health(any_engine, as_of=TODAY, models=models)

    assert (summary.accounts, summary.snapshots, summary.insufficient) == (1, 1, 0)
    # (25 * 60.4 + 75 * 76) / 100 = 72.1
    assert snapshots(any_engine) == [(account, TODAY, 72.1, "amber", 1.0, None)]
    snap = table("health_snapshot")
    with any_engine.connect() as conn:
        scores, drivers, model_name = conn.execute(
            select(snap.c.indicator_scores, snap.c.drivers, snap.c.model_name)
        ).one()
    assert scores["product_usage"]["score"] == 60.4
    assert scores["nps"]["status"] == "fresh"
    assert drivers[0]["key"] == "product_usage"  # 25 * (100 - 60.4) is the biggest shortfall
    assert model_name == "default"


def test_upsert_overwrites_the_same_day(any_engine: Engine, models: HealthModels) -> None:
    account = add_account(any_engine, 1)
    add_readings(any_engine, account, today_only(ON_GREEN))
    recompute_health(any_engine, as_of=TODAY, models=models)
    assert snapshots(any_engine) == [(account, TODAY, 76.0, "green", 1.0, None)]

    with any_engine.begin() as conn:
        conn.execute(
            text("UPDATE indicator_reading SET value = 52 WHERE indicator_key = 'product_usage'")
        )
    recompute_health(any_engine, as_of=TODAY, models=models)

    assert snapshots(any_engine) == [(account, TODAY, 72.1, "amber", 1.0, None)]


def test_stale_readings_do_not_count(engine: Engine, models: HealthModels) -> None:
    account = add_account(engine, 1)
    readings = today_only(ON_GREEN)
    # 20 days old: past product_usage's 14-day max age, so its weight is redistributed.
    readings["product_usage"] = [(TODAY - timedelta(days=20), 10.0)]
    add_readings(engine, account, readings)

    recompute_health(engine, as_of=TODAY, models=models)

    assert snapshots(engine) == [(account, TODAY, 76.0, "green", 0.75, None)]


def test_too_little_fresh_weight_is_insufficient(engine: Engine, models: HealthModels) -> None:
    account = add_account(engine, 1)
    add_readings(
        engine,
        account,
        today_only({"product_usage": 90.0, "nps": 60.0})
        | {"feature_adoption": [(TODAY - timedelta(days=300), 80.0)]},
    )
    summary = recompute_health(engine, as_of=TODAY, models=models)
    assert summary.insufficient == 1
    assert snapshots(engine) == [(account, TODAY, None, "insufficient", 0.4, None)]


def test_account_ids_limit_what_is_touched(any_engine: Engine, models: HealthModels) -> None:
    first, second, third = (add_account(any_engine, n) for n in (1, 2, 3))
    for account in (first, second, third):
        add_readings(any_engine, account, today_only(ON_GREEN))

    summary = recompute_health(any_engine, as_of=TODAY, models=models, account_ids=[second])
    assert summary.accounts == 1
    assert [row[0] for row in snapshots(any_engine)] == [second]

    # The backfill path (a range of days) honours the selection too.
    written = backfill_snapshots(
        any_engine, start=TODAY - timedelta(days=1), end=TODAY, models=models, account_ids=[third]
    )
    assert written == 2
    assert [(row[0], row[2]) for row in snapshots(any_engine)] == [
        (second, 76.0),
        (third, None),  # yesterday: no readings yet
        (third, 76.0),
    ]


def test_churned_accounts_and_accounts_without_readings(
    engine: Engine, models: HealthModels
) -> None:
    live = add_account(engine, 1)
    add_account(engine, 2, churned_on=TODAY - timedelta(days=3))
    empty = add_account(engine, 3)
    add_readings(engine, live, today_only(ON_GREEN))

    recompute_health(engine, as_of=TODAY, models=models)

    # A churned customer has no health; one with no data gets "insufficient", never a gap.
    assert snapshots(engine) == [
        (live, TODAY, 76.0, "green", 1.0, None),
        (empty, TODAY, None, "insufficient", 0.0, None),
    ]


def test_forecast_is_stored_for_a_sliding_account(engine: Engine, models: HealthModels) -> None:
    account = add_account(engine, 1)
    # Every leading indicator slides for four weeks; the lagging ones hold at green.
    days = [TODAY - timedelta(days=d) for d in range(27, -1, -1)]
    slide = {
        "product_usage": (66.0, -0.6),
        "feature_adoption": (55.0, -0.5),
        "support_tickets": (4.0, 0.15),
        "exec_engagement": (40.0, 1.0),
        "csm_sentiment": (2.2, -0.02),
    }
    series = {
        key: [(day, round(start + step * i, 2)) for i, day in enumerate(days)]
        for key, (start, step) in slide.items()
    }
    series |= today_only({"nps": 30.0, "payment_days_overdue": 5.0})
    add_readings(engine, account, series)

    recompute_health(engine, as_of=TODAY, models=models)

    expected = forecast_red(models.default, series, TODAY).red_in_days
    assert expected is not None and 0 < expected <= 60
    ((_, _, score, band, _, red_in_days),) = snapshots(engine)
    assert band == "amber" and score is not None
    assert red_in_days == expected


def test_backfill_scores_each_day_without_peeking_ahead(
    engine: Engine, models: HealthModels
) -> None:
    account = add_account(engine, 1)
    start = TODAY - timedelta(days=2)
    readings = today_only(ON_GREEN, start)
    # The drop is recorded on the last day only; earlier days must not see it.
    readings["product_usage"].append((TODAY, 52.0))
    add_readings(engine, account, readings)

    written = backfill_snapshots(engine, start=start, end=TODAY, models=models)

    assert written == 3
    assert [(day, score) for _, day, score, *_ in snapshots(engine)] == [
        (start, 76.0),
        (start + timedelta(days=1), 76.0),
        (TODAY, 72.1),
    ]
    with pytest.raises(ValueError):
        backfill_snapshots(engine, start=TODAY, end=start, models=models)


def test_only_the_needed_window_is_read(models: HealthModels) -> None:
    need = lookback_days(models)
    # Leading indicators need the forecast window even when their max age is shorter.
    assert need["product_usage"] == 28
    assert need["nps"] == 120
    assert need["csm_sentiment"] == 45


def test_segment_models_and_a_model_without_leading_indicators(engine: Engine) -> None:
    from domain.health_model import HealthModel, Indicator

    nps = Indicator(
        key="nps",
        label="NPS",
        weight=1,
        direction="higher",
        red=0,
        green=30,
        floor=-100,
        ceiling=100,
        kind="lagging",
        objectivity="objective",
        measure="quantitative",
        max_age_days=120,
    )
    lagging_only = HealthModel(name="smb-lite", indicators=(nps,))
    models = load_health_models(None)
    custom = HealthModels(default=models.default, by_segment={"smb": lagging_only}, source="t")
    small = add_account(engine, 1, segment="SMB")
    add_readings(engine, small, {"nps": [(TODAY - timedelta(days=100), 30.0)]})

    recompute_health(engine, as_of=TODAY, models=custom)

    snap = table("health_snapshot")
    with engine.connect() as conn:
        row = conn.execute(select(snap.c.score, snap.c.band, snap.c.model_name)).one()
    assert tuple(row) == (76.0, "green", "smb-lite")


def _indicator(engine: Engine, account: int, day: date, key: str) -> dict:
    snap = table("health_snapshot")
    with engine.connect() as conn:
        scores = conn.execute(
            select(snap.c.indicator_scores).where(snap.c.account_id == account, snap.c.day == day)
        ).scalar_one()
    return scores[key]


def test_old_readings_are_stale_with_their_age_not_missing(
    any_engine: Engine, models: HealthModels
) -> None:
    account = add_account(any_engine, 1)
    readings = today_only({k: v for k, v in ON_GREEN.items() if k != "exec_engagement"})
    # The last executive touchpoint reading is 31 days old (max age 30). The daily recompute
    # used to read nothing older than the max age, and called it "missing".
    readings["exec_engagement"] = [(TODAY - timedelta(days=31), 12.0)]
    add_readings(any_engine, account, readings)

    recompute_health(any_engine, as_of=TODAY, models=models)
    entry = _indicator(any_engine, account, TODAY, "exec_engagement")
    assert (entry["status"], entry["age_days"], entry["value"]) == ("stale", 31, 12.0)
    assert entry["effective_weight"] == 0.0  # stale: its weight goes to the fresh ones
    assert snapshots(any_engine) == [(account, TODAY, 76.0, "green", 0.9, None)]

    # The backfill (a range of days) sees it the same way on every day of the range: fresh up
    # to 30 days old, then stale with its age.
    backfill_snapshots(
        any_engine, start=TODAY - timedelta(days=5), end=TODAY, models=models, account_ids=[account]
    )
    seen = []
    for back in range(6):
        entry = _indicator(any_engine, account, TODAY - timedelta(days=back), "exec_engagement")
        seen.append((entry["status"], entry["age_days"]))
    assert seen == [("stale", 31)] + [("fresh", 31 - back) for back in range(1, 6)]
    # Earlier than any stored day, the backfill reads it from before its window too.
    backfill_snapshots(
        any_engine,
        start=TODAY + timedelta(days=20),
        end=TODAY + timedelta(days=21),
        models=models,
        account_ids=[account],
    )
    entry = _indicator(any_engine, account, TODAY + timedelta(days=21), "exec_engagement")
    assert (entry["status"], entry["age_days"]) == ("stale", 52)


def test_survey_answers_feed_csat_and_ces_indicators(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    base = {
        "weight": 50,
        "direction": "higher",
        "kind": "lagging",
        "objectivity": "objective",
        "measure": "quantitative",
        "max_age_days": 90,
    }
    model_file = tmp_path / "model.yaml"
    model_file.write_text(
        yaml.safe_dump(
            {
                "indicators": [
                    {
                        **base,
                        "key": "csat",
                        "label": "CSAT %",
                        "floor": 0,
                        "red": 60,
                        "green": 80,
                        "ceiling": 100,
                        "survey": "csat",
                        "survey_window_days": 60,
                    },
                    {
                        **base,
                        "key": "ces",
                        "label": "Effort",
                        "floor": 1,
                        "red": 3,
                        "green": 5,
                        "ceiling": 7,
                        "survey": "ces",
                    },
                ]
            }
        ),
        encoding="utf-8",
    )
    survey_models = load_health_models(model_file)
    account = add_account(engine, 1)
    answers = [
        ("csat", 5, 3),
        ("csat", 4, 20),
        ("csat", 2, 50),
        ("csat", 1, 70),
        ("ces", 6, 10),
        ("ces", 4, 80),
    ]
    with engine.begin() as conn:
        insert_dicts(
            conn,
            table("survey_response"),
            [
                {
                    "account_id": account,
                    "kind": k,
                    "score": s,
                    "responded_on": TODAY - timedelta(days=d),
                }
                for k, s, d in answers
            ],
        )
    recompute_health(engine, as_of=TODAY, models=survey_models)
    csat = _indicator(engine, account, TODAY, "csat")
    ces = _indicator(engine, account, TODAY, "ces")
    # CSAT over 60 days: 5, 4, 2 -> two of three are 4-5: 66.7 %. CES over 90 days: (6 + 4) / 2.
    assert csat["value"] == pytest.approx(200 / 3) and csat["responses"] == 3
    assert csat["day"] == (TODAY - timedelta(days=3)).isoformat()  # the newest answer
    assert (ces["value"], ces["responses"]) == (5.0, 2)
