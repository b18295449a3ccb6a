"""Retention inputs from ARR history: the base is the ARR when the period began."""

from __future__ import annotations

from datetime import date

import pytest

from domain.retention import arr_at_end_of, arr_before, movement_of, retention_inputs

JAN1, MAR31 = date(2026, 1, 1), date(2026, 3, 31)


def test_the_issue_two_account_example() -> None:
    timelines = {
        1: [(date(2024, 5, 1), 100_000.0), (date(2026, 2, 15), 120_000.0)],  # renewed up
        2: [(date(2023, 9, 1), 100_000.0), (date(2026, 3, 1), 0.0)],  # churned
    }
    q1 = retention_inputs(timelines, JAN1, MAR31)
    assert q1.starting_arr == 200_000
    assert (q1.expansion, q1.contraction, q1.churned) == (20_000, 0, 100_000)
    assert q1.grr == pytest.approx(0.50)
    assert q1.nrr == pytest.approx(0.60)
    assert (q1.customers_at_start, q1.customers_lost, q1.logo_churn) == (2, 1, 0.5)
    assert q1.mrr_start == pytest.approx(200_000 / 12)
    assert q1.mrr_end == pytest.approx(10_000)
    assert [m.movement for m in q1.accounts] == ["expansion", "churn"]


def test_a_change_on_the_first_day_happens_inside_the_period() -> None:
    timeline = [(date(2025, 1, 1), 100.0), (JAN1, 80.0)]
    assert arr_before(timeline, JAN1) == 100.0
    assert arr_at_end_of(timeline, JAN1) == 80.0
    q1 = retention_inputs({1: timeline}, JAN1, MAR31)
    assert (q1.starting_arr, q1.contraction) == (100.0, 20.0)


def test_new_business_is_outside_grr_and_nrr() -> None:
    timelines = {
        1: [(date(2025, 6, 1), 50_000.0)],
        2: [(date(2026, 2, 1), 30_000.0)],  # signed in the quarter
        3: [(date(2026, 5, 1), 10_000.0)],  # after the quarter: not in it at all
    }
    q1 = retention_inputs(timelines, JAN1, MAR31)
    assert (q1.starting_arr, q1.new_arr, q1.customers_new) == (50_000, 30_000, 1)
    assert q1.nrr == 1.0 and q1.grr == 1.0
    assert q1.ending_arr == 80_000
    assert {m.account_id for m in q1.accounts} == {1, 2}


def test_changes_within_the_period_net_out() -> None:
    # Down to 70k in January, back to 110k in March: a 10k expansion over the quarter.
    timeline = [(date(2025, 1, 1), 100.0), (date(2026, 1, 20), 70.0), (date(2026, 3, 10), 110.0)]
    q1 = retention_inputs({1: timeline}, JAN1, MAR31)
    assert (q1.expansion, q1.contraction) == (10.0, 0.0)


def test_movements_and_empty_periods() -> None:
    assert movement_of(0, 10) == "new"
    assert movement_of(10, 0) == "churn"
    assert movement_of(10, 10) == "flat"
    empty = retention_inputs({}, JAN1, MAR31)
    assert (empty.grr, empty.nrr, empty.logo_churn) == (None, None, None)
    with pytest.raises(ValueError, match="ends before it starts"):
        retention_inputs({}, MAR31, JAN1)
