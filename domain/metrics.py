"""Standard SaaS and customer-success metric formulas; None when the input gives no answer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

# Rates (churn, GRR, NRR) are fractions (0.05 = 5%); survey scores (NPS, CSAT) are percentages,
# because that is how each is conventionally reported.


def mrr(arr: float) -> float:
    """Monthly recurring revenue: ARR / 12."""
    return arr / 12


def logo_churn_rate(customers_at_start: int, customers_lost: int) -> float | None:
    """Logo churn for a period: customers lost / customers at the start (a fraction).

    None without customers at the start (the rate is undefined, not zero).
    """
    if customers_at_start <= 0:
        return None
    if customers_lost < 0:
        raise ValueError(f"customers_lost must be >= 0, got {customers_lost}")
    return customers_lost / customers_at_start


def grr(starting_arr: float, contraction: float, churned: float) -> float | None:
    """Gross revenue retention: (start - contraction - churn) / start, as a fraction in 0..1.

    Contraction and churn are positive amounts lost. Expansion never counts, so GRR cannot exceed
    1; it cannot go below 0 either (you cannot lose more than you had). None when start <= 0.
    """
    if starting_arr <= 0:
        return None
    _check_losses(contraction, churned)
    return min(1.0, max(0.0, (starting_arr - contraction - churned) / starting_arr))


def nrr(starting_arr: float, expansion: float, contraction: float, churned: float) -> float | None:
    """Net revenue retention: (start + expansion - contraction - churn) / start, a fraction.

    Above 1 means the base grows without new logos. None when start <= 0.
    """
    if starting_arr <= 0:
        return None
    _check_losses(contraction, churned)
    if expansion < 0:
        raise ValueError(f"expansion must be >= 0, got {expansion}")
    return max(0.0, (starting_arr + expansion - contraction - churned) / starting_arr)


def _check_losses(contraction: float, churned: float) -> None:
    # A negative loss is almost always a sign error upstream; refuse it rather than inflate GRR.
    if contraction < 0 or churned < 0:
        raise ValueError(
            f"contraction and churned are amounts lost and must be >= 0, got {contraction}, "
            f"{churned}"
        )


def arppu(revenue: float, paying_users: int) -> float | None:
    """Average revenue per paying user: revenue / paying users; None without paying users."""
    if paying_users <= 0:
        return None
    return revenue / paying_users


def ltv(arpa: float, gross_margin: float, churn_rate: float) -> float | None:
    """Customer lifetime value: ARPA * gross margin / churn rate.

    ARPA and churn rate must use the same period (monthly ARPA with monthly churn); gross margin
    is a fraction (0.8 = 80%). None when churn is 0: the simple formula gives no finite lifetime.
    """
    if churn_rate <= 0:
        return None
    return arpa * gross_margin / churn_rate


def _collect(scores: Iterable[int], low: int, high: int, name: str) -> list[int]:
    values = list(scores)
    for s in values:
        # Out-of-range answers mean a wrong scale was imported; silently dropping them would skew
        # the result, so fail loudly instead.
        if isinstance(s, bool) or not isinstance(s, int) or not low <= s <= high:
            raise ValueError(f"{name} answers must be whole numbers {low}..{high}, got {s!r}")
    return values


def nps_category(score: int) -> Literal["promoter", "passive", "detractor"]:
    """NPS bucket of one 0..10 answer: 9-10 promoter, 7-8 passive, 0-6 detractor."""
    _collect([score], 0, 10, "NPS")
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def nps(scores: Iterable[int]) -> float | None:
    """Net Promoter Score: % promoters (9-10) - % detractors (0-6), from -100 to 100.

    None without answers.
    """
    values = _collect(scores, 0, 10, "NPS")
    if not values:
        return None
    promoters = sum(1 for s in values if s >= 9)
    detractors = sum(1 for s in values if s <= 6)
    return 100.0 * (promoters - detractors) / len(values)


def csat(scores: Iterable[int]) -> float | None:
    """Customer satisfaction: % of answers that are 4 or 5 on a 1-5 scale (0..100).

    None without answers.
    """
    values = _collect(scores, 1, 5, "CSAT")
    if not values:
        return None
    return 100.0 * sum(1 for s in values if s >= 4) / len(values)


def ces(scores: Iterable[int]) -> float | None:
    """Customer effort score: the mean answer on the 1-7 scale; None without answers."""
    values = _collect(scores, 1, 7, "CES")
    if not values:
        return None
    return sum(values) / len(values)
