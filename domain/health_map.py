"""The client health map: where an account sits by health and ARR (protect, grow, fix, watch)."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Literal

Quadrant = Literal["protect", "grow", "fix", "watch"]

# What each quadrant asks of the CSM, in the order a manager reads the map: worst first.
QUADRANTS: dict[Quadrant, str] = {
    "fix": "at risk and worth a lot: act now",
    "watch": "at risk, smaller: scaled touch, watch for slides",
    "protect": "healthy and worth a lot: keep them there, build advocacy",
    "grow": "healthy, smaller: room to expand",
}


def quadrant(health: float, arr: float, *, health_split: float, arr_split: float) -> Quadrant:
    """Healthy means at or above the split (the green band's floor); large means ARR at or above
    the split (the portfolio's median)."""
    healthy = health >= health_split
    large = arr >= arr_split
    if healthy:
        return "protect" if large else "grow"
    return "fix" if large else "watch"


def arr_split(arrs: Sequence[float]) -> float:
    """The portfolio's median ARR (0 for an empty portfolio): half the accounts on each side."""
    return float(median(arrs)) if arrs else 0.0
