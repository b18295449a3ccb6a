"""Metric formulas against hand-computed values, including empty and zero-denominator inputs."""

from __future__ import annotations

import pytest

from domain.metrics import (
    arppu,
    ces,
    csat,
    grr,
    logo_churn_rate,
    ltv,
    mrr,
    nps,
    nps_category,
    nrr,
)


def test_mrr() -> None:
    assert mrr(120_000) == 10_000
    assert mrr(0) == 0


def test_logo_churn_rate() -> None:
    assert logo_churn_rate(200, 5) == 0.025
    assert logo_churn_rate(10, 0) == 0
    assert logo_churn_rate(0, 0) is None
    with pytest.raises(ValueError):
        logo_churn_rate(10, -1)


def test_grr() -> None:
    assert grr(1_000_000, 50_000, 100_000) == pytest.approx(0.85)
    assert grr(1_000, 0, 0) == 1.0
    assert grr(1_000, 600, 600) == 0.0  # cannot lose more than everything
    assert grr(0, 0, 0) is None
    with pytest.raises(ValueError):
        grr(1_000, -100, 0)  # a negative loss would push GRR above 1


def test_nrr() -> None:
    assert nrr(1_000_000, 200_000, 50_000, 100_000) == pytest.approx(1.05)
    assert nrr(1_000_000, 0, 50_000, 100_000) == pytest.approx(0.85)
    assert nrr(0, 10, 0, 0) is None
    with pytest.raises(ValueError):
        nrr(1_000, -5, 0, 0)


def test_arppu() -> None:
    assert arppu(5_000, 40) == 125
    assert arppu(5_000, 0) is None


def test_ltv() -> None:
    assert ltv(1_000, 0.8, 0.02) == pytest.approx(40_000)
    assert ltv(1_000, 0.8, 0) is None


def test_nps() -> None:
    # 3 promoters (9, 10, 9), 2 passives (7, 8), 5 detractors (0..6): (3 - 5) / 10 = -20
    assert nps([9, 10, 9, 7, 8, 0, 3, 6, 6, 5]) == pytest.approx(-20)
    assert nps([10, 10]) == 100
    assert nps([0]) == -100
    assert nps([7, 8]) == 0
    assert nps(iter([9, 6, 8])) == pytest.approx(0)
    assert nps([]) is None
    with pytest.raises(ValueError):
        nps([11])


@pytest.mark.parametrize(
    ("score", "category"),
    [
        (0, "detractor"),
        (6, "detractor"),
        (7, "passive"),
        (8, "passive"),
        (9, "promoter"),
        (10, "promoter"),
    ],
)
def test_nps_category(score: int, category: str) -> None:
    assert nps_category(score) == category


def test_nps_category_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        nps_category(-1)


def test_csat() -> None:
    assert csat([5, 4, 3, 2]) == 50
    assert csat([1, 2, 3, 4, 5]) == 40
    assert csat([]) is None
    with pytest.raises(ValueError):
        csat([0, 5])


def test_ces() -> None:
    assert ces([1, 2, 3, 6]) == 3
    assert ces([7]) == 7
    assert ces([]) is None
    with pytest.raises(ValueError):
        ces([8])
