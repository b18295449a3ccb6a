"""Commercial signals read off health data: expansion when usage presses against the licence."""

from __future__ import annotations

from domain.forecast import describe

# Active seats at or above this share of the licence mean the customer is about to outgrow it.
EXPANSION_USAGE_PCT = 90.0


def expansion_signal(usage_pct: float | None, licensed_seats: int | None) -> str | None:
    """A sentence for the CSM when usage is near the licence limit, else None."""
    if usage_pct is None or usage_pct < EXPANSION_USAGE_PCT:
        return None
    seats = f" of {licensed_seats} licensed seats" if licensed_seats else " of licensed seats"
    return (
        f"{usage_pct:.0f}%{seats} active: near the licence limit, an expansion conversation is due"
    )


def forecast_summary(
    red_in_days: int | None,
    earliest: int | None = None,
    latest: int | None = None,
    status: str | None = None,
) -> str | None:
    """How a stored forecast reads in a card ("likely to turn red in 12–20 days", "no clear
    trend"); None when a snapshot from before forecasts had a status has nothing to say."""
    if status is None and red_in_days is None:
        return None
    return describe(status, red_in_days, earliest, latest)
