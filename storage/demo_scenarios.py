"""Demo scenarios: accounts whose health falls, recovers, plateaus, dips or steps in known ways.

`csm-bot demo --scenario trajectories` (and `csm-bot backtest --scenario trajectories`) seed the
usual demo portfolio, then give every account other than the story accounts one of these paths
for its latent health, so the forecast can be backtested on falls it should call, recoveries and
plateaus it should not, and noise and steps it must not read as trends.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from storage.demo_plan import AccountPlan, weighted_pick

STORY_ACCOUNTS = ("Acme Corp", "Globex", "Initech")


@dataclass(frozen=True)
class Trajectory:
    """Piecewise-linear latent health through (day offset, level) knots, flat outside them."""

    kind: str
    knots: tuple[tuple[int, float], ...]

    def __call__(self, t: int) -> float:
        days = [d for d, _ in self.knots]
        n = bisect_right(days, t)
        if n == 0:
            return self.knots[0][1]
        if n == len(self.knots):
            return self.knots[-1][1]
        (d0, v0), (d1, v1) = self.knots[n - 1], self.knots[n]
        return v0 + (v1 - v0) * (t - d0) / (d1 - d0)


def _steady(rng: random.Random, first: int) -> Trajectory:
    # Includes accounts parked just above red: noise alone must not make the forecast cry wolf.
    level = rng.uniform(52, 92)
    return Trajectory("steady", ((first, level), (0, level)))


def _fall(rng: random.Random, first: int) -> Trajectory:
    start = rng.randint(first + 30, -45)
    high, floor = rng.uniform(70, 88), rng.uniform(20, 38)
    days = round((high - floor) / rng.uniform(0.3, 1.2))
    return Trajectory("fall", ((start, high), (start + days, floor)))


def _recover(rng: random.Random, first: int) -> Trajectory:
    start = rng.randint(first + 30, -75)
    high, trough = rng.uniform(72, 88), rng.uniform(54, 62)
    down = round((high - trough) / rng.uniform(0.3, 1.0))
    up = round(rng.uniform(8, 20) / rng.uniform(0.5, 1.5))
    return Trajectory(
        "recover", ((start, high), (start + down, trough), (start + down + up, trough + 15))
    )


def _plateau(rng: random.Random, first: int) -> Trajectory:
    start = rng.randint(first + 30, -60)
    high, level = rng.uniform(70, 86), rng.uniform(55, 62)
    days = round((high - level) / rng.uniform(0.3, 1.0))
    return Trajectory("plateau", ((start, high), (start + days, level)))


def _dip(rng: random.Random, first: int) -> Trajectory:
    start = rng.randint(first + 30, -90)
    high, trough = rng.uniform(68, 82), rng.uniform(36, 46)
    down = round((high - trough) / rng.uniform(0.5, 1.2))
    hold = rng.randint(5, 20)
    up = rng.randint(15, 40)
    end = high - rng.uniform(0, 8)
    knots = ((start, high), (start + down, trough), (start + down + hold, trough))
    return Trajectory("dip", (*knots, (start + down + hold + up, end)))


def _step(rng: random.Random, first: int) -> Trajectory:
    # A sudden, lasting drop (a champion leaves, a re-rating): a step, not a slide.
    at = rng.randint(first + 30, -30)
    level = rng.uniform(66, 86)
    return Trajectory("step", ((at - 1, level), (at, level - rng.uniform(8, 14))))


SHAPES: tuple[tuple[Callable[[random.Random, int], Trajectory], float], ...] = (
    (_steady, 0.30),
    (_fall, 0.20),
    (_recover, 0.15),
    (_plateau, 0.15),
    (_dip, 0.10),
    (_step, 0.10),
)


def trajectories(plans: Sequence[AccountPlan], *, today: date, days: int, seed: int) -> None:
    """Give every account but the story ones a known path over the ``days`` of history."""
    first = -(days - 1)
    if days < 150:
        raise ValueError("the trajectories scenario needs at least 150 days of history")
    for acct in plans:
        if acct.name in STORY_ACCOUNTS or acct.churned_on is not None:
            continue
        rng = random.Random(f"trajectory:{seed}:{acct.external_id}")
        path = weighted_pick(rng, SHAPES)(rng, first)
        acct.trajectory = path
        acct.archetype = path.kind
        acct.base_then, acct.base_now = path(first), path(0)
        # Indicator offsets are what make accounts differ; keep them small so the path shows.
        acct.offsets = {key: value * 0.5 for key, value in acct.offsets.items()}


SCENARIOS: dict[str, Callable[..., None]] = {"trajectories": trajectories}


def apply_scenario(
    name: str, plans: Sequence[AccountPlan], *, today: date, days: int, seed: int
) -> None:
    """Shape the planned accounts with the named scenario; ValueError for an unknown name."""
    try:
        shape = SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"unknown demo scenario {name!r} (known: {', '.join(sorted(SCENARIOS))})"
        ) from None
    shape(plans, today=today, days=days, seed=seed)
