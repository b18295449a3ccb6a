"""Which alerts interrupt, and when a person may be interrupted (their working hours, their zone)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from domain import alert_rules as rules
from domain import notify_policy as policy


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_the_urgent_classes_are_red_sev1_and_a_detractor_on_a_renewing_account() -> None:
    assert {"red", "sev1", "renewal_detractor"} == policy.DEFAULT_INTERRUPTS
    assert policy.classify(rules.BAND_CHANGE, {"to_band": "red"}) == "red"
    assert policy.classify(rules.BAND_CHANGE, {"to_band": "amber"}) == "amber"
    assert policy.classify(rules.ESCALATION_SLA, {"severity": "sev1"}) == "sev1"
    assert policy.classify(rules.ESCALATION_OPENED, {"severity": "sev1"}) == "sev1"
    assert policy.classify(rules.ESCALATION_SLA, {"severity": "sev2"}) == "escalation_sla"
    assert policy.classify(rules.NPS_DETRACTOR, {}, renews_soon=True) == "renewal_detractor"
    assert policy.classify(rules.NPS_DETRACTOR, {}, renews_soon=False) == "detractor"
    assert policy.classify(rules.MILESTONE_OVERDUE, {}) == "milestone_overdue"
    # Every kind the rules raise has a class of its own in the one list.
    for kind in rules.KINDS:
        assert policy.classify(kind, {"to_band": "red", "severity": "sev1"}) in policy.CLASS_KEYS


def test_a_persons_choice_replaces_the_defaults_and_unknown_classes_never_interrupt() -> None:
    assert policy.is_urgent_for("red", None)
    assert not policy.is_urgent_for("red", ["amber"])
    assert policy.is_urgent_for("amber", ["amber"])
    assert not policy.is_urgent_for("something_new", ["something_new"])
    assert policy.interrupts_of([]) == frozenset()


def test_working_hours_are_local_and_follow_daylight_saving() -> None:
    rome = policy.working_hours("09:00", "18:00", "Europe/Rome")
    # Summer (UTC+2) and winter (UTC+1): 09:00 in Rome is 07:00 and 08:00 UTC.
    assert rome.contains(utc(2026, 7, 1, 7, 0)) and not rome.contains(utc(2026, 7, 1, 6, 59))
    assert rome.contains(utc(2026, 11, 23, 8, 0)) and not rome.contains(utc(2026, 11, 23, 7, 59))
    assert not rome.contains(utc(2026, 11, 23, 17, 0))  # 18:00 in Rome: the end is exclusive
    # Saturdays are quiet unless the person works weekends.
    assert not rome.contains(utc(2026, 11, 28, 10, 0))
    assert policy.working_hours("09:00", "18:00", "Europe/Rome", True).contains(
        utc(2026, 11, 28, 10, 0)
    )


def test_a_shift_across_midnight_belongs_to_the_day_it_starts() -> None:
    nights = policy.working_hours("22:00", "06:00", "UTC")
    assert nights.contains(utc(2026, 11, 23, 23, 0))  # Monday night
    assert nights.contains(utc(2026, 11, 24, 5, 59))  # still Monday's shift
    assert not nights.contains(utc(2026, 11, 24, 6, 0))
    assert not nights.contains(utc(2026, 11, 28, 23, 0))  # Saturday's shift: a weekend
    assert nights.contains(utc(2026, 11, 28, 5, 0))  # Friday's shift runs into Saturday


@pytest.mark.parametrize("start,end", [("nine", "18:00"), (None, None), ("10:00", "10:00")])
def test_unreadable_hours_fall_back_to_the_defaults(start: str | None, end: str | None) -> None:
    hours = policy.working_hours(start, end, "Nowhere/Atlantis")
    assert (hours.start, hours.end) == (time(9, 0), time(18, 0))
    assert hours.contains(utc(2026, 11, 23, 12, 0))
