"""Time windows in CSM chat ("next 60 days", "this quarter", "before end of March"), relative to today."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta


@dataclass(frozen=True)
class TimeWindow:
    """An inclusive date range with a human label ("next 60 days", "this quarter")."""

    start: date
    end: date
    label: str

    @property
    def days(self) -> int:
        """Number of days in the window, both ends included."""
        return (self.end - self.start).days + 1


# Renewal questions without a window ("upcoming renewals") look this far ahead.
DEFAULT_RENEWAL_DAYS = 90

NUMBER_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "ninety": 90,
    "couple": 2,
    "few": 3,
}
MONTHS: dict[str, int] = {}
for _i, _name in enumerate(calendar.month_name):
    if _name:
        MONTHS[_name.lower()] = _i
        MONTHS[_name[:3].lower()] = _i
MONTHS["sept"] = 9

_NUM = r"(\d{1,3}|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")"
_UNIT = r"(days?|d|weeks?|wks?|w|months?|mos?|m|quarters?|qtrs?|years?|yrs?|y|fortnight)"
_MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"

_RELATIVE = re.compile(
    rf"\b(?:(next|within|in|coming|upcoming|following|last|past|previous|prior)\s+)"
    rf"(?:the\s+)?(?:(next|last|past|coming)\s+)?(?:a\s+)?{_NUM}\s*(?:of\s+)?{_UNIT}\b"
)
_PAST_UNIT = re.compile(r"\b(?:in\s+the\s+)?(?:past|previous)\s+(day|week|month|quarter|year)\b")
_BARE_RELATIVE = re.compile(rf"\b{_NUM}\s*{_UNIT}\s+(?:out|ahead|from now)\b")
_CALENDAR = re.compile(
    r"\b(this|next|last|previous|current|coming)\s+(week|month|quarter|qtr|q|year|yr)\b"
)
_SINCE_LAST = re.compile(r"\bsince\s+last\s+(week|month|quarter|qtr|year)\b")
_END_OF_PERIOD = re.compile(
    r"\b(?:(before|by|until|till|through|thru|prior to|ahead of)\s+)?(?:the\s+)?"
    r"(?:end\s+of|eo)\s*(?:the\s+)?(?:(this|next)\s+)?(month|quarter|qtr|q|year|yr|week)\b"
)
_END_OF_MONTH_NAME = re.compile(
    rf"\b(?:(before|by|until|till|through|thru|prior to)\s+)?(?:the\s+)?end\s+of\s+{_MONTH}\b"
)
_UNTIL_DATE = re.compile(
    rf"\b(before|by|until|till|through|thru|prior to|ahead of|up to)\s+(?:the\s+)?"
    rf"(?:{_MONTH}\s+{_DAY}|{_DAY}\s+(?:of\s+)?{_MONTH}|(\d{{1,2}})/(\d{{1,2}})|{_MONTH}|q([1-4]))\b"
)
_ISO_UNTIL = re.compile(r"\b(before|by|until|till|through|thru|up to)\s+(\d{4})-(\d{2})-(\d{2})\b")
# "in March", "during Q1", and a bare "q1" (a bare month name is too often a word: "may").
_IN_PERIOD = re.compile(rf"\b(?:(?:in|during|for)\s+(?:q([1-4])|{_MONTH})|q([1-4]))\b")


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _quarter_end(start: date) -> date:
    return start + relativedelta(months=3) - timedelta(days=1)


def _month_end(day: date) -> date:
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def _next_occurrence(today: date, month: int, day: int) -> date:
    """The date on or after today with this month and day (rolling into next year)."""
    for year in (today.year, today.year + 1):
        last = calendar.monthrange(year, month)[1]
        candidate = date(year, month, min(day, last))
        if candidate >= today:
            return candidate
    return date(today.year + 1, month, min(day, calendar.monthrange(today.year + 1, month)[1]))


def _month_start_ahead(today: date, month: int) -> date:
    """First day of the named month, this year if not over yet, else next year."""
    year = today.year if month >= today.month else today.year + 1
    return date(year, month, 1)


def _quarter_ahead(today: date, quarter: int) -> date:
    """Start of the named quarter, this year if not over yet, else next year."""
    start = date(today.year, 3 * (quarter - 1) + 1, 1)
    if _quarter_end(start) < today:
        start = date(today.year + 1, start.month, 1)
    return start


def _count(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


def _span(today: date, n: int, unit: str) -> tuple[date, str]:
    """today + n units, and the unit's name for labels."""
    u = unit.rstrip("s") if unit not in ("s",) else unit
    if u in ("day", "d"):
        return today + timedelta(days=n), "day"
    if u in ("week", "wk", "w"):
        return today + timedelta(weeks=n), "week"
    if u == "fortnight":
        return today + timedelta(weeks=2 * n), "fortnight"
    if u in ("month", "mo", "m"):
        return today + relativedelta(months=n), "month"
    if u in ("quarter", "qtr"):
        return today + relativedelta(months=3 * n), "quarter"
    return today + relativedelta(years=n), "year"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _calendar(today: date, which: str, unit: str) -> TimeWindow:
    """this/next/last week|month|quarter|year as a calendar period."""
    step = {"this": 0, "current": 0, "next": 1, "coming": 1, "last": -1, "previous": -1}[which]
    label_which = "this" if step == 0 else ("next" if step == 1 else "last")
    if unit == "week":
        start = today - timedelta(days=today.weekday()) + timedelta(weeks=step)
        return TimeWindow(start, start + timedelta(days=6), f"{label_which} week")
    if unit == "month":
        start = date(today.year, today.month, 1) + relativedelta(months=step)
        return TimeWindow(start, _month_end(start), f"{label_which} month")
    if unit in ("quarter", "qtr", "q"):
        start = _quarter_start(today) + relativedelta(months=3 * step)
        return TimeWindow(start, _quarter_end(start), f"{label_which} quarter")
    start = date(today.year + step, 1, 1)
    return TimeWindow(start, date(start.year, 12, 31), f"{label_which} year")


def parse_window(text: str, today: date) -> TimeWindow | None:
    """The first time window mentioned in folded text (lower case, letters/digits/spaces)."""
    if m := _RELATIVE.search(text):
        lead, num, unit = m.group(2) or m.group(1), m.group(3), m.group(4)
        n = _count(num)
        end, unit_name = _span(today, n, unit)
        if lead in ("last", "past", "previous", "prior"):
            start = today - (end - today)
            return TimeWindow(start, today, f"last {_plural(n, unit_name)}")
        return TimeWindow(today, end, f"next {_plural(n, unit_name)}")
    if m := _BARE_RELATIVE.search(text):
        n = _count(m.group(1))
        end, unit_name = _span(today, n, m.group(2))
        return TimeWindow(today, end, f"next {_plural(n, unit_name)}")
    if m := _PAST_UNIT.search(text):
        end, unit_name = _span(today, 1, m.group(1))
        return TimeWindow(today - (end - today), today, f"last {unit_name}")
    if m := _SINCE_LAST.search(text):
        window = _calendar(today, "last", m.group(1))
        return TimeWindow(window.start, today, f"since last {m.group(1)}")
    if m := _END_OF_MONTH_NAME.search(text):
        month = MONTHS[m.group(2)]
        end = _month_end(_month_start_ahead(today, month))
        return TimeWindow(today, end, f"until end of {calendar.month_name[month]}")
    if m := _END_OF_PERIOD.search(text):
        which = m.group(2) or "this"
        window = _calendar(today, which, m.group(3))
        return TimeWindow(today, window.end, f"until end of {window.label.split()[-1]}")
    if m := _ISO_UNTIL.search(text):
        try:
            day = date(int(m.group(2)), int(m.group(3)), int(m.group(4)))
        except ValueError:
            return None
        return _until(today, m.group(1), day, exact_day=True)
    if m := _UNTIL_DATE.search(text):
        word = m.group(1)
        g = m.groups()
        # groups: 1 word, 2 month,3 day | 4 day,5 month | 6 m,7 d | 8 month | 9 quarter
        try:
            if g[1]:
                return _until(today, word, _next_occurrence(today, MONTHS[g[1]], int(g[2])), True)
            if g[3]:
                return _until(today, word, _next_occurrence(today, MONTHS[g[4]], int(g[3])), True)
            if g[5]:
                return _until(today, word, _next_occurrence(today, int(g[5]), int(g[6])), True)
        except (ValueError, KeyError):
            return None
        if g[7]:
            start = _month_start_ahead(today, MONTHS[g[7]])
            return _period_until(today, word, start, _month_end(start), start.strftime("%B"))
        if g[8]:
            start = _quarter_ahead(today, int(g[8]))
            return _period_until(today, word, start, _quarter_end(start), f"Q{g[8]}")
    if m := _CALENDAR.search(text):
        return _calendar(today, m.group(1), m.group(2))
    if m := _IN_PERIOD.search(text):
        quarter = m.group(1) or m.group(3)
        if quarter:
            start = _quarter_ahead(today, int(quarter))
            return TimeWindow(start, _quarter_end(start), f"Q{quarter} {start.year}")
        start = _month_start_ahead(today, MONTHS[m.group(2)])
        return TimeWindow(start, _month_end(start), start.strftime("%B %Y"))
    return None


def _until(today: date, word: str, day: date, exact_day: bool) -> TimeWindow:
    # "before March 31" excludes the 31st; "by"/"until"/"through" include it.
    end = day - timedelta(days=1) if word in ("before", "prior to", "ahead of") else day
    return TimeWindow(today, max(end, today), f"{word} {day:%b} {day.day}, {day.year}")


def _period_until(today: date, word: str, start: date, end: date, name: str) -> TimeWindow:
    # "before March" stops when March starts; "by March" / "by Q2" runs to its end.
    if word in ("before", "prior to", "ahead of"):
        return TimeWindow(today, max(start - timedelta(days=1), today), f"before {name}")
    return TimeWindow(today, end, f"by end of {name}")


def window_days(window: TimeWindow, today: date) -> int:
    """Days from today to the window's end, or to its start (negative) for a window in the past."""
    if window.end <= today:
        return (window.start - today).days
    return (window.end - today).days


def default_renewal_window(today: date) -> TimeWindow:
    """The window renewal questions get when they name none: the next 90 days."""
    return TimeWindow(
        today, today + timedelta(days=DEFAULT_RENEWAL_DAYS), f"next {DEFAULT_RENEWAL_DAYS} days"
    )
