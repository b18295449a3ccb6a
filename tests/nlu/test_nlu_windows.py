"""Time-window arithmetic relative to today: rolling windows, calendar periods, deadlines."""

from __future__ import annotations

from datetime import date

import pytest

from domain.nlu.timewindow import default_renewal_window, parse_window, window_days

MON = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("text", "start", "end", "label"),
    [
        ("next 60 days", MON, date(2027, 1, 22), "next 60 days"),
        ("in two weeks", MON, date(2026, 12, 7), "next 2 weeks"),
        ("within a week", MON, date(2026, 11, 30), "next 1 week"),
        ("in a couple of weeks", MON, date(2026, 12, 7), "next 2 weeks"),
        ("next 3 months", MON, date(2027, 2, 23), "next 3 months"),
        ("this week", date(2026, 11, 23), date(2026, 11, 29), "this week"),
        ("next week", date(2026, 11, 30), date(2026, 12, 6), "next week"),
        ("last week", date(2026, 11, 16), date(2026, 11, 22), "last week"),
        ("this month", date(2026, 11, 1), date(2026, 11, 30), "this month"),
        ("next month", date(2026, 12, 1), date(2026, 12, 31), "next month"),
        ("this quarter", date(2026, 10, 1), date(2026, 12, 31), "this quarter"),
        ("next quarter", date(2027, 1, 1), date(2027, 3, 31), "next quarter"),
        ("next qtr", date(2027, 1, 1), date(2027, 3, 31), "next quarter"),
        ("next year", date(2027, 1, 1), date(2027, 12, 31), "next year"),
        ("in the last 30 days", date(2026, 10, 24), MON, "last 30 days"),
        ("since last week", date(2026, 11, 16), MON, "since last week"),
        ("before end of march", MON, date(2027, 3, 31), "until end of March"),
        ("by end of january", MON, date(2027, 1, 31), "until end of January"),
        ("before the end of the year", MON, date(2026, 12, 31), "until end of year"),
        ("before march 31", MON, date(2027, 3, 30), None),  # "before" excludes the day
        ("by march 31", MON, date(2027, 3, 31), None),  # "by" includes it
        ("until 31st march", MON, date(2027, 3, 31), None),
        ("by jan 15", MON, date(2027, 1, 15), None),
        ("by 3/15", MON, date(2027, 3, 15), None),
        ("before 2027-01-10", MON, date(2027, 1, 9), None),
        ("by q2", MON, date(2027, 6, 30), "by end of Q2"),  # Q2 2026 is over: next year's
        ("by q4", MON, date(2026, 12, 31), "by end of Q4"),  # this Q4 is still running
        ("before q2", MON, date(2027, 3, 31), "before Q2"),
        ("by march", MON, date(2027, 3, 31), "by end of March"),
        ("in q1", date(2027, 1, 1), date(2027, 3, 31), "Q1 2027"),
        ("by december 1", MON, date(2026, 12, 1), None),  # this year: still ahead
        ("by november 1", MON, date(2027, 11, 1), None),  # already past: next year
    ],
)
def test_parse_window(text, start, end, label) -> None:
    window = parse_window(text, MON)
    assert window is not None, text
    assert (window.start, window.end) == (start, end)
    if label is not None:
        assert window.label == label


def test_month_arithmetic_clamps_to_month_end() -> None:
    window = parse_window("next 1 month", date(2027, 1, 31))
    assert window.end == date(2027, 2, 28)
    leap = parse_window("by feb 29", date(2028, 1, 10))
    assert leap.end == date(2028, 2, 29)
    assert parse_window("by feb 29", date(2027, 1, 10)).end == date(2027, 2, 28)


def test_quarter_at_year_end() -> None:
    window = parse_window("next quarter", date(2026, 12, 31))
    assert (window.start, window.end) == (date(2027, 1, 1), date(2027, 3, 31))
    window = parse_window("this week", date(2026, 11, 29))  # a Sunday
    assert (window.start, window.end) == (date(2026, 11, 23), date(2026, 11, 29))


def test_no_window() -> None:
    for text in ("", "how is acme doing", "renewals soon", "sev1 outage", "q5", "may i ask"):
        assert parse_window(text, MON) is None, text
    assert parse_window("before 2027-02-30", MON) is None


def test_window_days_and_default() -> None:
    assert window_days(parse_window("next 60 days", MON), MON) == 60
    assert window_days(parse_window("last week", MON), MON) == -7
    default = default_renewal_window(MON)
    assert (default.start, default.end, default.label) == (MON, date(2027, 2, 21), "next 90 days")
    assert default.days == 91


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("between jan 1 and feb 15", date(2027, 1, 1), date(2027, 2, 15)),
        ("from dec 1 to dec 15", date(2026, 12, 1), date(2026, 12, 15)),
        ("dec 20 - jan 5", date(2026, 12, 20), date(2027, 1, 5)),
        ("between january and march", date(2027, 1, 1), date(2027, 3, 31)),
        ("2027-01-01 to 2027-03-31", date(2027, 1, 1), date(2027, 3, 31)),
        ("12/1 - 12/31", date(2026, 12, 1), date(2026, 12, 31)),
        ("since monday", date(2026, 11, 16), MON),  # today is a Monday: the one before
        ("since friday", date(2026, 11, 20), MON),
        ("since nov 1", date(2026, 11, 1), MON),
        ("since october", date(2026, 10, 1), MON),
        ("since the start of the quarter", date(2026, 10, 1), MON),
        ("ytd", date(2026, 1, 1), MON),
        ("year to date", date(2026, 1, 1), MON),
        ("so far this month", date(2026, 11, 1), MON),
        ("last month", date(2026, 10, 1), date(2026, 10, 31)),
        ("nxt qtr", date(2027, 1, 1), date(2027, 3, 31)),
        ("today", MON, MON),
        ("tomorrow", date(2026, 11, 24), date(2026, 11, 24)),
        ("yesterday", date(2026, 11, 22), date(2026, 11, 22)),
        ("december", date(2026, 12, 1), date(2026, 12, 31)),
        ("in january", date(2027, 1, 1), date(2027, 1, 31)),
        ("jan 15", date(2027, 1, 15), date(2027, 1, 15)),
        ("q1 2027", date(2027, 1, 1), date(2027, 3, 31)),
        ("march 2027", date(2027, 3, 1), date(2027, 3, 31)),
        ("h1 next year", date(2027, 1, 1), date(2027, 6, 30)),
        ("in 2027", date(2027, 1, 1), date(2027, 12, 31)),
        ("last 12 months", date(2025, 11, 23), MON),
        ("by friday", MON, date(2026, 11, 27)),
        ("by year end", MON, date(2026, 12, 31)),
    ],
)
def test_more_window_phrases(text, start, end) -> None:
    window = parse_window(text.replace("nxt", "next").replace("qtr", "quarter"), MON)
    assert window is not None, text
    assert (window.start, window.end) == (start, end), text


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("in october", date(2026, 10, 1), date(2026, 10, 31)),
        ("q3", date(2026, 7, 1), date(2026, 9, 30)),
        ("on nov 1", date(2026, 11, 1), date(2026, 11, 1)),
        ("december", date(2025, 12, 1), date(2025, 12, 31)),
    ],
)
def test_a_question_that_looks_back_reads_periods_in_the_past(text, start, end) -> None:
    window = parse_window(text, MON, past=True)
    assert (window.start, window.end) == (start, end), text
    future = parse_window(text, MON)
    assert future.start >= MON or future.end >= MON


@pytest.mark.parametrize(
    ("text", "past", "start", "end"),
    [
        # From today up to a day or month.
        ("between now and 31 january", False, MON, date(2027, 1, 31)),
        ("from now until end of march", False, MON, date(2027, 3, 31)),
        ("from today to feb 15", False, MON, date(2027, 2, 15)),
        # A named quarter's end.
        ("before the end of q1", False, MON, date(2027, 3, 31)),
        ("by end of q4", False, MON, date(2026, 12, 31)),
        # "last tuesday" is behind us, even in a forward-looking question.
        ("last tuesday", False, date(2026, 11, 17), date(2026, 11, 17)),
        ("this past friday", True, date(2026, 11, 20), date(2026, 11, 20)),
        ("last monday", False, date(2026, 11, 16), date(2026, 11, 16)),
        ("since last tuesday", True, date(2026, 11, 17), MON),
    ],
)
def test_now_until_quarter_ends_and_last_weekdays(text, past, start, end) -> None:
    window = parse_window(text, MON, past=past)
    assert window is not None and (window.start, window.end) == (start, end)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        # Counted back in the unit: the same day six months ago, not 181 days back.
        ("over the last 6 months", date(2026, 5, 23), MON),
        ("in the past year", date(2025, 11, 23), MON),
        ("last 3 months", date(2026, 8, 23), MON),
        # A quarter or month of a named year, not the whole year.
        ("in q2 next year", date(2027, 4, 1), date(2027, 6, 30)),
        ("march of next year", date(2027, 3, 1), date(2027, 3, 31)),
        ("q1 this year", date(2026, 1, 1), date(2026, 3, 31)),
    ],
)
def test_months_back_and_periods_of_a_year(text, start, end) -> None:
    window = parse_window(text, MON)
    assert window is not None and (window.start, window.end) == (start, end)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("in the coming fortnight", MON, date(2026, 12, 7)),
        ("next fortnight", MON, date(2026, 12, 7)),
        ("over the past fortnight", date(2026, 11, 9), MON),
    ],
)
def test_a_fortnight_without_a_number(text, start, end) -> None:
    window = parse_window(text, MON)
    assert window is not None and (window.start, window.end) == (start, end)
