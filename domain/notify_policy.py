"""Who is interrupted by what, and when: the alert classes, which are urgent, and a person's working hours.

Every alert falls into exactly one class (``classify``). A CSM's *interrupt* set names the classes
that reach them at once (one message per hour at most, only within their working hours); every
other class waits for their daily digest. ``ALERT_CLASSES`` is the one list of classes: the settings
form, the digest, the risk-channel summary and docs/notifications.md all follow it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain import alert_rules as rules


@dataclass(frozen=True)
class AlertClass:
    """One class of alert as people name it.

    Attributes:
        key: stored on the alert and in a person's settings.
        label: what the settings form and the digest call it.
        urgent: interrupts by default (a person may switch any class on or off).
    """

    key: str
    label: str
    urgent: bool


# Worst first: digests and summaries list alerts in this order.
ALERT_CLASSES: tuple[AlertClass, ...] = (
    AlertClass("red", "Health turned red", True),
    AlertClass("sev1", "Sev1 escalation opened or past its SLA", True),
    AlertClass("renewal_detractor", "NPS detractor on an account that renews soon", True),
    AlertClass("escalation_sla", "Other escalation past its SLA", False),
    AlertClass("amber", "Health turned amber", False),
    AlertClass("score_drop", "Health fell sharply", False),
    AlertClass("forecast_red", "Forecast to turn red", False),
    AlertClass("detractor", "Other NPS detractor", False),
    AlertClass("milestone_overdue", "Milestone became overdue", False),
)
CLASS_KEYS: tuple[str, ...] = tuple(c.key for c in ALERT_CLASSES)
CLASS_LABELS: dict[str, str] = {c.key: c.label for c in ALERT_CLASSES}
CLASS_RANK: dict[str, int] = {c.key: n for n, c in enumerate(ALERT_CLASSES)}
DEFAULT_INTERRUPTS: frozenset[str] = frozenset(c.key for c in ALERT_CLASSES if c.urgent)

# An account "renews soon" when an open renewal falls within this many days (or its lifecycle
# stage is "renewal"): a detractor there puts revenue at risk now, not next year.
RENEWAL_WINDOW_DAYS = 90

# At most one interrupting message per person per this many minutes; later urgent alerts wait
# for the next slot and go together.
URGENT_BATCH_MINUTES = 60

DEFAULT_WORK_START = "09:00"
DEFAULT_WORK_END = "18:00"


def classify(kind: str, details: Mapping[str, Any], *, renews_soon: bool = False) -> str:
    """The class of an alert of ``kind`` (see ``ALERT_CLASSES``)."""
    if kind == rules.BAND_CHANGE:
        return "red" if details.get("to_band") == "red" else "amber"
    if kind in (rules.ESCALATION_SLA, rules.ESCALATION_OPENED):
        return "sev1" if details.get("severity") == "sev1" else "escalation_sla"
    if kind == rules.NPS_DETRACTOR:
        return "renewal_detractor" if renews_soon else "detractor"
    # score_drop, forecast_red, milestone_overdue; a kind added later without a class of its own
    # stays out of every interrupt set (interrupts_of keeps known classes only): digest only.
    return kind


def interrupts_of(stored: Iterable[str] | None) -> frozenset[str]:
    """A person's interrupting classes: what they chose, or the defaults when they never chose."""
    if stored is None:
        return DEFAULT_INTERRUPTS
    return frozenset(k for k in stored if k in CLASS_RANK)


def is_urgent_for(category: str, interrupts: Iterable[str] | None) -> bool:
    return category in interrupts_of(interrupts)


# -- working hours ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkingHours:
    """When a person may be interrupted, in their own timezone; the rest of the day is quiet.

    ``end`` before ``start`` means a shift across midnight (22:00-06:00 belongs to the day it
    starts). Saturdays and Sundays are quiet unless ``weekends``.
    """

    start: time
    end: time
    timezone: str = "UTC"
    weekends: bool = False

    def _zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone or "UTC")
        except (KeyError, ValueError):
            return ZoneInfo("UTC")

    def _works_on(self, day: date) -> bool:
        return self.weekends or day.weekday() < 5

    def _window(self, day: date) -> tuple[datetime, datetime]:
        zone = self._zone()
        opens = datetime.combine(day, self.start, tzinfo=zone)
        end_day = day if self.end > self.start else day + timedelta(days=1)
        closes = datetime.combine(end_day, self.end, tzinfo=zone)
        return opens.astimezone(UTC), closes.astimezone(UTC)

    def contains(self, at: datetime) -> bool:
        """Whether ``at`` (an aware instant) falls inside working hours."""
        local = at.astimezone(self._zone()).date()
        for day in (local, local - timedelta(days=1)):
            if not self._works_on(day):
                continue
            opens, closes = self._window(day)
            if opens <= at < closes:
                return True
        return False


def parse_hhmm(value: str) -> time:
    """ "9:05" or "09:05" -> time(9, 5); ValueError for anything else."""
    hours, sep, minutes = value.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"not a time: {value!r}")
    return time(int(hours), int(minutes))


def working_hours(
    start: str | None, end: str | None, timezone: str | None, weekends: bool = False
) -> WorkingHours:
    """A person's working hours from their stored settings (defaults where unset or unreadable)."""
    try:
        opens = parse_hhmm(start or DEFAULT_WORK_START)
        closes = parse_hhmm(end or DEFAULT_WORK_END)
    except ValueError:
        opens, closes = parse_hhmm(DEFAULT_WORK_START), parse_hhmm(DEFAULT_WORK_END)
    if opens == closes:
        opens, closes = parse_hhmm(DEFAULT_WORK_START), parse_hhmm(DEFAULT_WORK_END)
    return WorkingHours(opens, closes, timezone or "UTC", weekends)
