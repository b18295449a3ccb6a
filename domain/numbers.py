"""How health numbers are rounded and printed: one decimal, half away from zero, everywhere."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# Every health number a person sees (overall score, indicator scores, changes) has exactly one
# decimal, and the band is always the band of that printed number. Python's round() rounds
# halves to even (round(-16.5) == -16) and works on the binary value; people round 16.45 to 16.5
# and -16.5 to -17, so this module rounds the decimal a human would read, half away from zero.
SCORE_DIGITS = 1
_QUANTUM = {0: Decimal("1"), 1: Decimal("0.1"), 2: Decimal("0.01")}
MINUS = "−"  # a real minus sign, as in print


_SCALE = {0: 1.0, 1: 10.0, 2: 100.0}


def round_half_away(value: float, digits: int = SCORE_DIGITS) -> float:
    """``value`` rounded to ``digits`` decimals, halves away from zero (16.45 -> 16.5, -16.5 -> -17
    with digits=0). Works on the shortest decimal form of the float, which is what people see."""
    frac = abs(value * _SCALE.get(digits, 10.0**digits)) % 1.0
    if frac != frac:  # inf or NaN: nothing to round
        return value
    if abs(frac - 0.5) > 1e-6:
        # Not near a half: round() gives the same digit, fast (this runs for every indicator
        # of every account on every recompute). + 0.0 turns -0.0 into 0.0.
        return round(value, digits) + 0.0
    quantum = _QUANTUM.get(digits) or Decimal(1).scaleb(-digits)
    # ROUND_HALF_UP in decimal means half away from zero; repr() gives the shortest decimal form.
    return float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP)) + 0.0


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


def days_away(days: int | None) -> str:
    """A date's distance from the business date in words: "in 12 days", "today", "8 days ago"
    (an open renewal past its date must not read "in -8 days")."""
    if days is None:
        return ""
    n = int(days)
    if n == 0:
        return "today"
    if n == 1:
        return "tomorrow"
    if n == -1:
        return "yesterday"
    return f"in {n} days" if n > 0 else f"{-n} days ago"
