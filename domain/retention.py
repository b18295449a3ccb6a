"""Retention inputs for a period from ARR history: the ARR each account had when the period began,
what it had when the period ended, and the standard figures (GRR, NRR, MRR, logo churn) they give."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from domain import metrics

# An account's ARR history: (day the ARR took effect, ARR from that day on), sorted by day.
ArrTimeline = Sequence[tuple[date, float]]
Movement = Literal["churn", "contraction", "flat", "expansion", "new"]


def arr_before(timeline: ArrTimeline, day: date) -> float:
    """The ARR in effect when ``day`` begins: the newest change dated before it (0 without one)."""
    n = bisect_left(timeline, (day,))
    return timeline[n - 1][1] if n else 0.0


def arr_at_end_of(timeline: ArrTimeline, day: date) -> float:
    """The ARR in effect when ``day`` ends: the newest change dated on or before it (0 without)."""
    n = bisect_right(timeline, (day, float("inf")))
    return timeline[n - 1][1] if n else 0.0


@dataclass(frozen=True)
class AccountMovement:
    """One account's ARR at the start and end of the period, and what the change counts as."""

    account_id: int
    arr_start: float
    arr_end: float
    movement: Movement


@dataclass(frozen=True)
class RetentionInputs:
    """The inputs of the standard retention formulas for a set of accounts over [start, end].

    The base is the accounts with ARR when ``start`` begins, at that ARR (changes dated on
    ``start`` happen inside the period). Each of them ends the period churned (ARR 0), contracted,
    flat or expanded; accounts with no ARR at the start are new business, outside GRR and NRR.
    """

    start: date
    end: date
    customers_at_start: int
    customers_lost: int
    customers_new: int
    starting_arr: float
    expansion: float
    contraction: float
    churned: float
    new_arr: float
    accounts: tuple[AccountMovement, ...]

    @property
    def ending_arr(self) -> float:
        """ARR at the end of the period: the starting base after its changes, plus new business."""
        return self.starting_arr + self.expansion - self.contraction - self.churned + self.new_arr

    @property
    def grr(self) -> float | None:
        """Gross revenue retention (a fraction); None without starting ARR."""
        return metrics.grr(self.starting_arr, self.contraction, self.churned)

    @property
    def nrr(self) -> float | None:
        """Net revenue retention (a fraction); None without starting ARR."""
        return metrics.nrr(self.starting_arr, self.expansion, self.contraction, self.churned)

    @property
    def logo_churn(self) -> float | None:
        """Customers lost over customers at the start (a fraction); None without customers."""
        return metrics.logo_churn_rate(self.customers_at_start, self.customers_lost)

    @property
    def mrr_start(self) -> float:
        return metrics.mrr(self.starting_arr)

    @property
    def mrr_end(self) -> float:
        return metrics.mrr(self.ending_arr)


def movement_of(arr_start: float, arr_end: float) -> Movement:
    """How one account's ARR change over a period counts."""
    if arr_start <= 0:
        return "new"
    if arr_end <= 0:
        return "churn"
    if arr_end < arr_start:
        return "contraction"
    if arr_end > arr_start:
        return "expansion"
    return "flat"


def retention_inputs(
    timelines: Mapping[int, ArrTimeline], start: date, end: date
) -> RetentionInputs:
    """Sum each account's movement between the start and the end of [start, end] (both included).

    A renewal that took 100k to 120k inside the period counts 100k in the base and 20k expansion;
    an account that churned counts its starting ARR as churn and one lost logo.
    """
    if end < start:
        raise ValueError(f"the period ends before it starts: {start} > {end}")
    moves: list[AccountMovement] = []
    starting = expansion = contraction = churned = new_arr = 0.0
    at_start = lost = new = 0
    for account_id in sorted(timelines):
        timeline = timelines[account_id]
        a0, a1 = arr_before(timeline, start), arr_at_end_of(timeline, end)
        if a0 <= 0 and a1 <= 0:
            continue  # no business with this account in the period
        kind = movement_of(a0, a1)
        moves.append(AccountMovement(account_id, a0, a1, kind))
        if kind == "new":
            new += 1
            new_arr += a1
            continue
        at_start += 1
        starting += a0
        if kind == "churn":
            lost += 1
            churned += a0
        elif kind == "contraction":
            contraction += a0 - a1
        elif kind == "expansion":
            expansion += a1 - a0
    return RetentionInputs(
        start=start,
        end=end,
        customers_at_start=at_start,
        customers_lost=lost,
        customers_new=new,
        starting_arr=starting,
        expansion=expansion,
        contraction=contraction,
        churned=churned,
        new_arr=new_arr,
        accounts=tuple(moves),
    )
