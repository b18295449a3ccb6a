"""One demo account as planned before it is written, and the weighted draw that plans it.

storage.demo plans and writes these; storage.demo_scenarios reshapes their health histories.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

T = TypeVar("T")


def weighted_pick(rng: random.Random, weighted: Sequence[tuple[T, float]]) -> T:
    """One item drawn with the chances its weight gives it (the weights need not add to 1)."""
    roll = rng.random() * sum(w for _, w in weighted)
    for item, weight in weighted:
        roll -= weight
        if roll <= 0:
            return item
    return weighted[-1][0]


@dataclass
class AccountPlan:
    """Everything generated for one account before it is written."""

    index: int
    external_id: str
    name: str
    aliases: list[str]
    segment: str
    owner_index: int  # into CSM_PEOPLE
    arr: float
    seats: int
    start: date
    renewal: date
    archetype: str
    stage: str
    rng: random.Random
    # latent health 0..100 as a function of the day offset (0 = today, negative = past)
    base_now: float
    base_then: float  # level before the change (declining/improving) or = base_now
    change_days: int  # how many days ago the change started
    offsets: dict[str, float] = field(default_factory=dict)
    missing: frozenset[str] = frozenset()  # indicators this account never reports
    churned_on: date | None = None
    id: int = 0
    # A scenario's known path of the latent health (day offset -> level), instead of the linear
    # change above (storage.demo_scenarios).
    trajectory: Callable[[int], float] | None = None

    def latent(self, t: int, key: str) -> float:
        """Latent health of one indicator on day offset ``t`` (<= 0)."""
        if self.trajectory is not None:
            return self.trajectory(t) + self.offsets.get(key, 0.0)
        if t <= -self.change_days or self.change_days == 0:
            level = self.base_then
        else:
            frac = (t + self.change_days) / self.change_days
            level = self.base_then + (self.base_now - self.base_then) * frac
        return level + self.offsets.get(key, 0.0)
