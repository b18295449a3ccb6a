"""The demo portfolio: deterministic, the right size, and telling the stories a CSM recognises."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, func, select
from sqlalchemy.engine import Engine

from domain.health_model import HealthModels, load_health_models
from handlers.demo import seed_demo
from handlers.recompute import recompute_health
from storage.bulk import table
from storage.db import make_engine, upgrade
from storage.demo import DemoSummary
from storage.demo_names import CSM_PEOPLE, EMAIL_DOMAIN, MANAGER

TODAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
def models() -> HealthModels:
    return load_health_models(None)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, DemoSummary]]:
    """The default demo (60 accounts, a year of readings), seeded once for the story tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    summary = seed_demo(engine, today=TODAY)
    yield engine, summary
    engine.dispose()


def fresh_engine(path: Path) -> Engine:
    url = f"sqlite:///{path}"
    upgrade(url)
    return make_engine(url)


def account_id(engine: Engine, name: str) -> int:
    acc = table("account")
    with engine.connect() as conn:
        return conn.execute(select(acc.c.id).where(acc.c.name == name)).scalar_one()


def snapshot(engine: Engine, name: str, day: date) -> dict:
    snap = table("health_snapshot")
    with engine.connect() as conn:
        row = conn.execute(
            select(snap).where(snap.c.account_id == account_id(engine, name), snap.c.day == day)
        ).one()
    return dict(row._mapping)


def dump(engine: Engine, skip: tuple[str, ...] = ("computed_at",)) -> dict[str, list[tuple]]:
    """Every row of every table (minus wall-clock columns), for determinism checks."""
    meta = MetaData()
    meta.reflect(bind=engine)
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for tbl in meta.sorted_tables:
            if tbl.name == "alembic_version":
                continue
            cols = [c for c in tbl.c if c.name not in skip]
            out[tbl.name] = [
                tuple(r) for r in conn.execute(select(*cols).order_by(*tbl.primary_key.columns))
            ]
    return out


# ---------------------------------------------------------------------------------------------
# stories


def test_acme_is_amber_sliding_and_forecast_to_turn_red(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    now = snapshot(engine, "Acme Corp", TODAY)
    month_ago = snapshot(engine, "Acme Corp", TODAY - timedelta(days=30))
    assert now["band"] == "amber"
    # The slide is a clear trend: red is forecast within the 60-day horizon, with its range.
    assert now["forecast_status"] == "red"
    assert 1 <= now["forecast_red_in_days"] <= 60
    assert now["forecast_red_earliest"] <= now["forecast_red_in_days"]
    latest = now["forecast_red_latest"]
    assert latest is None or latest >= now["forecast_red_in_days"]
    assert now["score"] <= month_ago["score"] - 8, "the 30-day trend should be clearly down"
    # The slide is in the leading indicators: they drive the score down.
    assert now["drivers"][0]["kind"] == "leading"


def test_globex_is_green_and_near_its_licence_limit(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    now = snapshot(engine, "Globex", TODAY)
    assert now["band"] == "green"
    assert now["indicator_scores"]["product_usage"]["value"] >= 90
    acc = table("account")
    with engine.connect() as conn:
        renewal = conn.execute(select(acc.c.renewal_date).where(acc.c.name == "Globex")).scalar()
    assert renewal > TODAY + timedelta(days=120)


def test_initech_has_overdue_milestones_and_renews_soon(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    ms, ren, acc = table("milestone"), table("renewal"), table("account")
    initech = account_id(engine, "Initech")
    with engine.connect() as conn:
        overdue = conn.execute(
            select(func.count()).where(
                ms.c.account_id == initech, ms.c.due_date < TODAY, ms.c.status != "done"
            )
        ).scalar()
        renewal = conn.execute(select(acc.c.renewal_date).where(acc.c.id == initech)).scalar()
        open_renewal = conn.execute(
            select(ren.c.renewal_date).where(ren.c.account_id == initech, ren.c.status == "open")
        ).scalar()
    assert overdue >= 2
    assert TODAY < renewal < TODAY + timedelta(days=60)
    assert open_renewal == renewal


def test_portfolio_shape(demo: tuple[Engine, DemoSummary], models: HealthModels) -> None:
    engine, summary = demo
    assert summary.accounts == 60 and summary.csms == 8
    # 7 daily indicators for a year, less the few series that are missing or end at a churn.
    assert 0.95 * 60 * 365 * 7 <= summary.readings <= 60 * 365 * 7
    assert 45 * 55 <= summary.snapshots <= 45 * 60
    assert 60 * 2 * 2 <= summary.milestones <= 60 * 3 * 4
    assert summary.renewals >= 60 and summary.qbrs >= 20 and summary.surveys >= 300
    assert summary.escalations >= 1

    snap, acc, esc, qbr = (table(n) for n in ("health_snapshot", "account", "escalation", "qbr"))
    with engine.connect() as conn:
        bands = dict(
            conn.execute(
                select(snap.c.band, func.count()).where(snap.c.day == TODAY).group_by(snap.c.band)
            ).all()
        )
        partial = conn.execute(
            select(func.count()).where(snap.c.day == TODAY, snap.c.coverage < 1)
        ).scalar()
        renew_soon = conn.execute(
            select(func.count()).where(
                acc.c.renewal_date > TODAY, acc.c.renewal_date <= TODAY + timedelta(days=120)
            )
        ).scalar()
        open_escalations = conn.execute(select(func.count()).where(esc.c.status == "open")).scalar()
        qbr_days = {
            (when.date() - TODAY).days
            for when in conn.execute(select(qbr.c.scheduled_for).where(qbr.c.status == "scheduled"))
            .scalars()
            .all()
        }
        segments = set(conn.execute(select(acc.c.segment).distinct()).scalars())
        stages = set(conn.execute(select(acc.c.lifecycle_stage).distinct()).scalars())
    assert 2 <= bands.get("red", 0) <= 10, bands
    assert bands.get("green", 0) >= 25, bands
    assert bands.get("insufficient", 0) == 0, bands
    assert 1 <= partial <= 3  # small accounts without the slow indicators: weight redistributed
    assert renew_soon >= 15
    assert open_escalations >= 1
    assert {3, 14} <= qbr_days  # so the QBR-prep reminders fire
    assert segments == {"enterprise", "mid-market", "smb"}
    assert stages == {"onboarding", "adoption", "expansion", "renewal"}


def test_people_and_roles(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    csm = table("csm")
    with engine.connect() as conn:
        people = conn.execute(
            select(csm.c.id, csm.c.email, csm.c.role, csm.c.manager_id, csm.c.timezone).order_by(
                csm.c.id
            )
        ).all()
    assert people[0][:3] == (1, f"dana@{EMAIL_DOMAIN}", "csm")  # the local chat answers as Dana
    manager = next(p for p in people if p[2] == "manager")
    assert manager[1] == f"{MANAGER[1]}@{EMAIL_DOMAIN}"
    csms = [p for p in people if p[2] == "csm"]
    assert len(csms) == len(CSM_PEOPLE)
    assert all(p[3] == manager[0] for p in csms)
    assert len({p[4] for p in csms}) >= 4
    assert [p[2] for p in people].count("admin") == 1
    acc = table("account")
    with engine.connect() as conn:
        owners = dict(conn.execute(select(acc.c.name, acc.c.owner_id)).all())
    assert owners["Acme Corp"] == 1


# ---------------------------------------------------------------------------------------------
# determinism, re-runs, scale


def test_same_seed_gives_the_same_rows(tmp_path: Path, models: HealthModels) -> None:
    one, two, other = (fresh_engine(tmp_path / f"{n}.db") for n in ("one", "two", "other"))
    for engine in (one, two):
        seed_demo(engine, today=TODAY, accounts=14, days=40, snapshot_days=2, models=models)
    seed_demo(other, today=TODAY, accounts=14, days=40, seed=8, snapshot_days=2, models=models)
    first = dump(one)
    assert first == dump(two)
    assert first["indicator_reading"] != dump(other)["indicator_reading"]


def test_rerun_wipes_and_reseeds(any_engine: Engine, models: HealthModels) -> None:
    seed_demo(any_engine, today=TODAY, accounts=15, days=60, snapshot_days=2, models=models)
    before = dump(any_engine)
    acc = table("account")
    with any_engine.begin() as conn:
        conn.execute(acc.update().where(acc.c.name == "Acme Corp").values(arr=1.0))
        conn.execute(
            acc.insert().values(
                external_id="JUNK-1",
                name="Left Over Ltd",
                aliases=[],
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
                updated_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
        conn.execute(
            table("audit_log")
            .insert()
            .values(at=datetime(2026, 1, 1, tzinfo=UTC), action="x", entity="y", entity_id="z")
        )

    seed_demo(any_engine, today=TODAY, accounts=15, days=60, snapshot_days=2, models=models)

    assert dump(any_engine) == before  # same rows, same ids: Dana is still CSM 1


def test_three_hundred_accounts_stay_fast(tmp_path: Path, models: HealthModels) -> None:
    engine = fresh_engine(tmp_path / "big.db")
    started = time.perf_counter()
    summary = seed_demo(engine, today=TODAY, accounts=300, days=90, snapshot_days=7, models=models)
    elapsed = time.perf_counter() - started
    assert summary.accounts == 300
    assert summary.readings >= 0.99 * 300 * 90 * 7
    assert summary.snapshots >= 295 * 7
    # Generous for a busy CI machine; it takes a few seconds (the 10k build: bench/).
    assert elapsed < 20, f"300 accounts took {elapsed:.1f}s"


def test_daily_recompute_agrees_with_the_backfill(
    demo: tuple[Engine, DemoSummary], models: HealthModels
) -> None:
    # The daily run reads less (window + latest) than the backfill (every reading in range);
    # both must give the same health.
    engine, summary = demo
    snap = table("health_snapshot")
    cols = (
        snap.c.account_id,
        snap.c.score,
        snap.c.band,
        snap.c.coverage,
        snap.c.forecast_red_in_days,
        snap.c.indicator_scores,
        snap.c.drivers,
    )
    query = select(*cols).where(snap.c.day == TODAY).order_by(snap.c.account_id)
    with engine.connect() as conn:
        backfilled = [tuple(r) for r in conn.execute(query)]
    result = recompute_health(engine, as_of=TODAY, models=models)
    with engine.connect() as conn:
        recomputed = [tuple(r) for r in conn.execute(query)]
    assert result.accounts == len(backfilled) == summary.accounts - 2  # two churned
    assert recomputed == backfilled
