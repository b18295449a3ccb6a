"""Retention from ARR history: the manager digest's GRR and NRR use the ARR each account had when
the quarter began (the issue's two-account example), and the metric-inputs function agrees."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from handlers.context import Actor, ChatContext
from handlers.digests import manager_digest
from storage.bulk import insert_dicts, table
from storage.csv_import import import_records

END_OF_Q1 = date(2026, 3, 31)


def _team(engine: Engine) -> int:
    """A manager (id 1) with one CSM (id 2); returns the manager's id."""
    stamp = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        insert_dicts(
            conn,
            table("csm"),
            [
                {
                    "name": "Morgan Lead",
                    "email": "morgan@example.com",
                    "role": "manager",
                    "created_at": stamp,
                }
            ],
        )
        insert_dicts(
            conn,
            table("csm"),
            [
                {
                    "name": "Casey Csm",
                    "email": "casey@example.com",
                    "role": "csm",
                    "manager_id": 1,
                    "created_at": stamp,
                }
            ],
        )
    return 1


def _two_accounts(engine: Engine) -> None:
    """A: $100k until it renewed at $120k on 15 Feb. B: $100k until it churned on 1 Mar. Both
    arrive through the import, as they would from a CRM export."""
    import_records(
        engine,
        "accounts",
        None,
        [
            {
                "external_id": "A",
                "name": "Alpha Renews",
                "owner_email": "casey@example.com",
                "arr": 120_000,
                "start_date": "2025-02-15",
            },
            {
                "external_id": "B",
                "name": "Beta Leaves",
                "owner_email": "casey@example.com",
                "arr": 100_000,
                "start_date": "2024-03-01",
                "churned_on": "2026-03-01",
            },
        ],
    )
    import_records(
        engine,
        "renewals",
        None,
        [
            {
                "external_id": "RA",
                "account_external_id": "A",
                "renewal_date": "2026-02-15",
                "arr": 100_000,
                "status": "renewed",
                "renewed_arr": 120_000,
                "closed_on": "2026-02-15",
            },
            {
                "external_id": "RB",
                "account_external_id": "B",
                "renewal_date": "2026-03-01",
                "arr": 100_000,
                "status": "churned",
                "renewed_arr": 0,
            },
        ],
    )


def test_quarter_grr_and_nrr_use_the_arr_at_the_start(any_engine: Engine) -> None:
    manager_id = _team(any_engine)
    _two_accounts(any_engine)
    with Session(any_engine) as session:
        actor = Actor(manager_id, "Morgan Lead", "morgan@example.com", role="manager")
        reply = manager_digest(
            session, ctx=ChatContext("scheduler", actor, END_OF_Q1), manager_id=manager_id
        )
    forecast = reply.context["forecast"]
    # Base $200k (both at $100k on 1 Jan); +$20k expansion, -$100k churn: GRR 50 %, NRR 60 %.
    # With today's ARR as the base it was $220k: GRR 54.5 %, NRR 63.6 %.
    assert reply.context["quarter"]["start_arr"] == 200_000
    assert (forecast["grr_pct"], forecast["nrr_pct"]) == (50.0, 60.0)
    assert "GRR 50.0%, NRR 60.0%" in reply.text
    assert reply.context["retention"] == {
        "customers_at_start": 2,
        "customers_lost": 1,
        "expansion": 20_000,
        "contraction": 0,
        "churned": 100_000,
    }


def test_metric_inputs_for_any_past_period(any_engine: Engine) -> None:
    """On both backends (the history is read below SQLAlchemy's type processing), and the same
    for every account, a list of them, or a SELECT of their ids."""
    from sqlmodel import select

    from handlers.retention import arr_metric_inputs, arr_timelines
    from storage.models import Account

    engine = any_engine
    _team(engine)
    _two_accounts(engine)
    with Session(engine) as session:
        q1 = arr_metric_inputs(session, None, date(2026, 1, 1), END_OF_Q1)
        q4 = arr_metric_inputs(session, None, date(2025, 10, 1), date(2025, 12, 31))
        timelines = arr_timelines(session, None, up_to=END_OF_Q1)
        ids = list(session.exec(select(Account.id)).all())
        by_list = arr_metric_inputs(session, ids, date(2026, 1, 1), END_OF_Q1)
        by_select = arr_metric_inputs(session, select(Account.id), date(2026, 1, 1), END_OF_Q1)
    assert by_list == by_select == q1
    assert (q1.grr, q1.nrr, q1.logo_churn) == (pytest.approx(0.5), pytest.approx(0.6), 0.5)
    assert (q4.starting_arr, q4.grr, q4.nrr) == (200_000, 1.0, 1.0)  # nothing moved in Q4
    assert sorted(timelines.values()) == [
        [(date(2024, 3, 1), 100_000.0), (date(2026, 3, 1), 0.0)],
        [(date(2025, 2, 15), 100_000.0), (date(2026, 2, 15), 120_000.0)],
    ]


def test_accounts_without_recorded_history_count_their_arr_from_their_start(engine: Engine) -> None:
    """Rows written around the ARR-history function (old data, a raw insert) still count."""
    from handlers.retention import arr_metric_inputs

    stamp = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        insert_dicts(
            conn,
            table("account"),
            [
                {
                    "external_id": "RAW",
                    "name": "Raw Insert",
                    "aliases": [],
                    "arr": 40_000.0,
                    "start_date": date(2025, 6, 1),
                    "churned_on": date(2026, 2, 1),
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            ],
        )
    with Session(engine) as session:
        q1 = arr_metric_inputs(session, None, date(2026, 1, 1), END_OF_Q1)
    assert (q1.starting_arr, q1.churned, q1.customers_lost) == (40_000, 40_000, 1)


def test_an_empty_base_says_there_is_no_rate(engine: Engine) -> None:
    """A team whose only account started inside the quarter: no ARR when it began, so GRR and
    NRR have no base. No division by zero, and every surface says why instead of a bare "—"."""
    from bot.render import render_json, render_text

    manager_id = _team(engine)
    import_records(
        engine,
        "accounts",
        None,
        [
            {
                "external_id": "N",
                "name": "New This Quarter",
                "owner_email": "casey@example.com",
                "arr": 50_000,
                "start_date": "2026-02-10",
            }
        ],
    )
    with Session(engine) as session:
        actor = Actor(manager_id, "Morgan Lead", "morgan@example.com", role="manager")
        reply = manager_digest(
            session, ctx=ChatContext("scheduler", actor, END_OF_Q1), manager_id=manager_id
        )
    forecast = reply.context["forecast"]
    assert (forecast["grr_pct"], forecast["nrr_pct"]) == (None, None)
    reason = forecast["no_base"]
    assert reason == f"no ARR at the start of {reply.context['quarter']['label']}"
    assert f"GRR and NRR: none ({reason})" in reply.text
    assert reason in render_text(reply)
    assert reason in str(render_json("slack", "manager_digest", reply.context))
    assert reason in str(render_json("teams", "manager_digest", reply.context))
