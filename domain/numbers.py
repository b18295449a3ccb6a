"""How health numbers are rounded and printed: one decimal, half away from zero, everywhere."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

# Every health number a person sees (overall score, indicator scores, changes) has exactly one
# decimal, and the band is always the band of that printed number. Python's round() rounds
# halves to even (round(-16.5) == -16) and works on the binary value; people round 16.45 to 16.5
# and -16.5 to -17, so this module rounds the decimal a human would read, half away from zero.
SCORE_DIGITS = 1
_QUANTUM = {0: Decimal("1"), 1: Decimal("0.1"), 2: Decimal("0.01")}
MINUS = "−"  # a real minus sign, as in print


def round_half_away(value: float, digits: int = SCORE_DIGITS) -> float:
    """``value`` rounded to ``digits`` decimals, halves away from zero (16.45 -> 16.5, -16.5 -> -17
    with digits=0). Works on the shortest decimal form of the float, which is what people see."""
    if not math.isfinite(value):
        return value
    scaled = abs(value) * 10.0**digits
    whole = math.floor(scaled)
    if abs(scaled - whole - 0.5) > 1e-6:
        # Not near a half: plain float rounding gives the same digit, much faster (this runs for
        # every indicator of every account on every recompute).
        rounded_abs = (whole + (scaled - whole > 0.5)) / 10.0**digits
        return math.copysign(rounded_abs, value) + 0.0 if rounded_abs else 0.0
    quantum = _QUANTUM.get(digits) or Decimal(1).scaleb(-digits)
    # ROUND_HALF_UP in decimal means half away from zero; repr() gives the shortest decimal form.
    rounded = float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))
    return rounded + 0.0  # no -0.0


def shown_score(score: float | None) -> float | None:
    """The score as every surface prints it (one decimal); None stays None."""
    return None if score is None else round_half_away(score)


def format_score(score: float | None) -> str:
    """ "75.9", "50.0"; "—" for no score."""
    return "—" if score is None else f"{round_half_away(score):.{SCORE_DIGITS}f}"


def format_signed(value: float | None, digits: int = SCORE_DIGITS) -> str:
    """A change with its sign, one decimal: "+3.0", "−16.5", "±0" for no change; "—" when unknown."""
    if value is None:
        return "—"
    rounded = round_half_away(value, digits)
    if rounded == 0:
        return "±0"
    return f"{rounded:+.{digits}f}".replace("-", MINUS)
