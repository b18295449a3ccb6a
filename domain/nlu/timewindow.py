"""Time windows in CSM chat ("next 60 days", "this quarter", "between jan 1 and feb 15"), relative to today."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
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
WEEKDAYS: dict[str, int] = {}
for _i, _name in enumerate(calendar.day_name):
    WEEKDAYS[_name.lower()] = _i
    WEEKDAYS[_name[:3].lower()] = _i
WEEKDAYS.update({"tues": 1, "weds": 2, "thur": 3, "thurs": 3})

_NUM = r"(\d{1,3}|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")"
_UNIT = r"(days?|d|weeks?|wks?|w|months?|mos?|m|quarters?|qtrs?|years?|yrs?|y|fortnight)"
_MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")"
_WEEKDAY = r"(" + "|".join(sorted(WEEKDAYS, key=len, reverse=True)) + r")"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(20\d\d)"
# One calendar day as written: "jan 15", "15th of january", "1/15", "2027-01-15" (optional year).
_DATE = (
    rf"(?:{_MONTH}\s+{_DAY}(?:\s+{_YEAR})?|{_DAY}\s+(?:of\s+)?{_MONTH}(?:\s+{_YEAR})?"
    rf"|(\d{{1,2}})/(\d{{1,2}})(?:/(\d{{2,4}}))?|{_YEAR}-(\d{{1,2}})-(\d{{1,2}}))"
)
# A day or a whole month ("jan", "march 2027"), for "between jan and march".
_POINT = rf"(?:{_DATE}|{_MONTH}(?:\s+{_YEAR})?)"

_RELATIVE = re.compile(
    rf"\b(?:(next|within|in|coming|upcoming|following|last|past|previous|prior|trailing)\s+)"
    rf"(?:the\s+)?(?:(next|last|past|coming)\s+)?(?:a\s+)?{_NUM}\s*(?:of\s+)?{_UNIT}\b"
)
_PAST_UNIT = re.compile(r"\b(?:in\s+the\s+)?(?:past|previous)\s+(day|week|month|quarter|year)\b")
# "the coming fortnight", "last fortnight": two weeks, without a number.
_FORTNIGHT = re.compile(r"\b(next|coming|upcoming|following|this|last|past|previous)\s+fortnight\b")
_BARE_RELATIVE = re.compile(rf"\b{_NUM}\s*{_UNIT}\s+(?:out|ahead|from now)\b")
_CALENDAR = re.compile(
    r"\b(this|next|last|previous|current|coming)\s+(week|month|quarter|qtr|q|year|yr)\b"
)
_SINCE_LAST = re.compile(r"\bsince\s+last\s+(week|month|quarter|qtr|year)\b")
_SINCE_START = re.compile(
    r"\bsince\s+(?:the\s+)?(?:start|beginning)\s+of\s+(?:the\s+|this\s+)?(week|month|quarter|qtr|year)\b"
)
_TO_DATE = re.compile(
    r"\b(?:(ytd|qtd|mtd)|(year|quarter|month)\s+to\s+date|so\s+far\s+this\s+(year|quarter|month))\b"
)
_TTM = re.compile(r"\b(?:ttm|trailing\s+twelve\s+months|l12m|ltm)\b")
_END_OF_PERIOD = re.compile(
    r"\b(?:(before|by|until|till|through|thru|prior to|ahead of)\s+)?(?:the\s+)?"
    r"(?:end\s+of|eo)\s*(?:the\s+)?(?:(this|next)\s+)?(month|quarter|qtr|q|year|yr|week)\b"
)
_YEAR_END = re.compile(
    r"\b(?:(before|by|until|till|through|prior to)\s+)?(?:the\s+)?year[\s-]?end\b"
)
_END_OF_QUARTER_NAME = re.compile(
    r"\b(?:(before|by|until|till|through|thru|prior to)\s+)?(?:the\s+)?end\s+of\s+q([1-4])\b"
)
_END_OF_MONTH_NAME = re.compile(
    rf"\b(?:(before|by|until|till|through|thru|prior to)\s+)?(?:the\s+)?end\s+of\s+{_MONTH}\b"
)
_UNTIL_DATE = re.compile(
    rf"\b(before|by|until|till|through|thru|prior to|ahead of|up to)\s+(?:the\s+)?"
    rf"(?:{_MONTH}\s+{_DAY}|{_DAY}\s+(?:of\s+)?{_MONTH}|(\d{{1,2}})/(\d{{1,2}})|{_MONTH}|q([1-4]))\b"
)
_ISO_UNTIL = re.compile(r"\b(before|by|until|till|through|thru|up to)\s+(\d{4})-(\d{2})-(\d{2})\b")
_BETWEEN = re.compile(
    rf"\b(?:between|from)\s+(?:the\s+)?({_POINT})\s+(?:and|to|till|until|through|thru|-)\s+"
    rf"(?:the\s+)?({_POINT})\b"
)
# "between now and 31 January", "from today until end of March": today up to a day or month.
_NOW_UNTIL = re.compile(
    rf"\b(?:between\s+(?:now|today)\s+and|(?:from\s+)?(?:now|today)\s+(?:to|till|until|through|thru))"
    rf"\s+(?:the\s+)?(?:end\s+of\s+)?({_POINT})\b"
)
_RANGE = re.compile(rf"\b({_DATE})\s*(?:-|–|to|through|thru)\s*({_DATE})\b")
_SINCE_POINT = re.compile(
    rf"\bsince\s+(?:the\s+)?(?:(?:last\s+|this\s+past\s+)?({_WEEKDAY})|({_DATE})|{_MONTH})\b"
)
_WEEKDAY_UNTIL = re.compile(rf"\b(before|by|until|till|through)\s+(?:this\s+|next\s+)?{_WEEKDAY}\b")
# "last tuesday", "this past friday": the latest one before today, whichever way the question looks.
_LAST_WEEKDAY = re.compile(rf"\b(?:last|this\s+past|past)\s+{_WEEKDAY}\b")
_ON_WEEKDAY = re.compile(rf"\b(?:on\s+|this\s+|next\s+|coming\s+)?{_WEEKDAY}\b")
_DAY_WORD = re.compile(r"\b(today|tonight|tomorrow|tmrw|yesterday)\b")
_HALF = re.compile(
    rf"\b(?:(h[12])|(first|second|1st|2nd)\s+half)(?:\s+(?:of\s+)?(this|next|last)\s+year|\s+(?:of\s+)?{_YEAR})?\b"
)
_QUARTER_YEAR = re.compile(rf"\bq([1-4])\s*(?:of\s+)?'?{_YEAR}\b|\b{_YEAR}\s*q([1-4])\b")
_PERIOD_OF_YEAR = re.compile(rf"\b(?:q([1-4])|{_MONTH})\s+(?:of\s+)?(this|next|last)\s+year\b")
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\s+{_YEAR}\b")
_YEAR_ALONE = re.compile(rf"\b(?:in|for|during|of)\s+{_YEAR}\b")
_LAST_MONTH_NAME = re.compile(rf"\blast\s+{_MONTH}\b")
# "in March", "during Q1", and a bare "q1" (a bare month name is too often a word: "may").
_IN_PERIOD = re.compile(rf"\b(?:(?:in|during|for|over)\s+(?:q([1-4])|{_MONTH})|q([1-4]))\b")
# Month names that are safe to read without "in" before them ("december renewals").
_BARE_MONTH = re.compile(
    r"\b(january|february|april|june|july|august|september|october|november|december"
    r"|jan|feb|apr|jun|jul|aug|sep|sept|oct|nov|dec)\b"
)
_ON_DATE = re.compile(rf"\b(?:on\s+(?:the\s+)?)?{_DATE}\b")


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _quarter_end(start: date) -> date:
    return start + relativedelta(months=3) - timedelta(days=1)


def _month_end(day: date) -> date:
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _next_occurrence(today: date, month: int, day: int) -> date:
    """The date on or after today with this month and day (rolling into next year)."""
    candidate = _clamped(today.year, month, day)
    return candidate if candidate >= today else _clamped(today.year + 1, month, day)


def _last_occurrence(today: date, month: int, day: int) -> date:
    """The date on or before today with this month and day (rolling back a year)."""
    candidate = _clamped(today.year, month, day)
    return candidate if candidate <= today else _clamped(today.year - 1, month, day)


def _month_start_ahead(today: date, month: int) -> date:
    """First day of the named month, this year if not over yet, else next year."""
    year = today.year if month >= today.month else today.year + 1
    return date(year, month, 1)


def _month_start_behind(today: date, month: int) -> date:
    """First day of the named month, this year if it has begun, else last year."""
    year = today.year if month <= today.month else today.year - 1
    return date(year, month, 1)


def _quarter_ahead(today: date, quarter: int) -> date:
    """Start of the named quarter, this year if not over yet, else next year."""
    start = date(today.year, 3 * (quarter - 1) + 1, 1)
    if _quarter_end(start) < today:
        start = date(today.year + 1, start.month, 1)
    return start


def _quarter_behind(today: date, quarter: int) -> date:
    """Start of the named quarter, this year if it has begun, else last year."""
    start = date(today.year, 3 * (quarter - 1) + 1, 1)
    return start if start <= today else date(today.year - 1, start.month, 1)


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


def _period_start(today: date, unit: str) -> date:
    return _calendar(today, "this", "quarter" if unit == "qtr" else unit).start


def _full_year(text: str | None) -> int | None:
    if not text:
        return None
    year = int(text)
    return year + 2000 if year < 100 else year


def _date_of(groups: tuple[str | None, ...], today: date, *, past: bool) -> date | None:
    """The day one _DATE match names (groups in _DATE order); its next (or last) occurrence."""
    month_a, day_a, year_a, day_b, month_b, year_b, m_num, d_num, y_num, iso_y, iso_m, iso_d = (
        groups
    )
    try:
        if iso_y:
            return date(int(iso_y), int(iso_m or 0), int(iso_d or 0))
        if month_a:
            month, day, year = MONTHS[month_a], int(day_a or 0), _full_year(year_a)
        elif month_b:
            month, day, year = MONTHS[month_b], int(day_b or 0), _full_year(year_b)
        else:
            month, day, year = int(m_num or 0), int(d_num or 0), _full_year(y_num)
        if year is not None:
            return date(year, month, day)
        if not 1 <= day <= 31:
            return None
        return _last_occurrence(today, month, day) if past else _next_occurrence(today, month, day)
    except (ValueError, KeyError):
        return None


_DATE_GROUPS = 12  # capturing groups in _DATE


def _point(text: str, today: date, *, past: bool) -> tuple[date, date] | None:
    """A _POINT as (first day, last day): one day, or a whole month."""
    m = re.fullmatch(_POINT, text)
    if m is None:
        return None
    groups = m.groups()
    if any(groups[:_DATE_GROUPS]):
        day = _date_of(groups[:_DATE_GROUPS], today, past=past)
        return (day, day) if day else None
    month, year = MONTHS[groups[_DATE_GROUPS]], _full_year(groups[_DATE_GROUPS + 1])
    if year is not None:
        start = date(year, month, 1)
    else:
        start = _month_start_behind(today, month) if past else _month_start_ahead(today, month)
    return start, _month_end(start)


def _fmt(day: date) -> str:
    return f"{day.day} {day:%b} {day.year}"


def _range_label(start: date, end: date) -> str:
    if start == end:
        return _fmt(start)
    if start.year == end.year and start.month == end.month:
        return f"{start.day} – {end.day} {end:%b} {end.year}"
    if start.year == end.year:
        return f"{start.day} {start:%b} – {end.day} {end:%b} {end.year}"
    return f"{_fmt(start)} – {_fmt(end)}"


def _between(text: str, today: date, past: bool) -> TimeWindow | None:
    for pattern, inner in ((_BETWEEN, _POINT_INNER), (_RANGE, _DATE_INNER)):
        m = pattern.search(text)
        if m is None:
            continue
        first = _point(m.group(1), today, past=past)
        if first is None:
            continue
        start = first[0]
        # The second end is read as the next occurrence on or after the first ("dec 1 to jan 5").
        second = _point(m.group(2 + inner), start, past=False)
        if second is None:
            continue
        return TimeWindow(start, second[1], _range_label(start, second[1]))
    return None


_POINT_INNER = re.compile(_POINT).groups
_DATE_INNER = re.compile(_DATE).groups


def _since(text: str, today: date) -> TimeWindow | None:
    m = _SINCE_POINT.search(text)
    if m is None:
        return None
    if m.group(2):  # a weekday: the last one before today ("since monday" on a Monday: a week)
        back = (today.weekday() - WEEKDAYS[m.group(2)]) % 7 or 7
        start = today - timedelta(days=back)
    elif m.group(3):
        inner = re.fullmatch(_DATE, m.group(3))
        start = _date_of(inner.groups(), today, past=True) if inner else None
        if start is None:
            return None
    else:
        start = _month_start_behind(today, MONTHS[m.group(m.lastindex or 0)])
    label = f"since {_fmt(start)}"
    return TimeWindow(min(start, today), today, label)


def _day_word(text: str, today: date) -> TimeWindow | None:
    m = _DAY_WORD.search(text)
    if m is None:
        return None
    word = m.group(1)
    offset = {"today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1, "yesterday": -1}[word]
    day = today + timedelta(days=offset)
    return TimeWindow(day, day, {"tonight": "today", "tmrw": "tomorrow"}.get(word, word))


def _to_date(text: str, today: date) -> TimeWindow | None:
    m = _TO_DATE.search(text)
    if m is None:
        return None
    unit = {"ytd": "year", "qtd": "quarter", "mtd": "month"}.get(
        m.group(1) or "", m.group(2) or m.group(3) or "year"
    )
    return TimeWindow(_period_start(today, unit), today, f"{unit} to date")


def _half(text: str, today: date, past: bool) -> TimeWindow | None:
    m = _HALF.search(text)
    if m is None:
        return None
    first = (m.group(1) or m.group(2) or "").lower() in ("h1", "first", "1st")
    which, year = m.group(3), _full_year(m.group(4))
    if year is None:
        year = today.year + {"next": 1, "last": -1}.get(which or "", 0)
        if which is None:
            half_end = date(year, 6, 30) if first else date(year, 12, 31)
            half_start = date(year, 1, 1) if first else date(year, 7, 1)
            if not past and half_end < today:
                year += 1
            elif past and half_start > today:
                year -= 1
    start = date(year, 1 if first else 7, 1)
    end = date(year, 6, 30) if first else date(year, 12, 31)
    return TimeWindow(start, end, f"H{1 if first else 2} {year}")


def _weekday_until(text: str, today: date) -> TimeWindow | None:
    m = _WEEKDAY_UNTIL.search(text)
    if m is None:
        return None
    ahead = (WEEKDAYS[m.group(2)] - today.weekday()) % 7 or 7
    day = today + timedelta(days=ahead)
    end = day - timedelta(days=1) if m.group(1) == "before" else day
    return TimeWindow(today, max(end, today), f"{m.group(1)} {day:%A}")


def _on_weekday(text: str, today: date, past: bool) -> TimeWindow | None:
    if m := _LAST_WEEKDAY.search(text):
        back = (today.weekday() - WEEKDAYS[m.group(1)]) % 7 or 7
        day = today - timedelta(days=back)
        return TimeWindow(day, day, f"{day:%A} {_fmt(day)}")
    m = _ON_WEEKDAY.search(text)
    if m is None:
        return None
    if m.group(1) in ("sat", "sun", "mon", "wed", "thu", "fri", "tue", "thur") and not m.group(
        0
    ).startswith(("on ", "this ", "next ", "coming ")):
        return None  # three-letter weekday abbreviations are too often other words ("sun")
    target = WEEKDAYS[m.group(1)]
    if past:
        back = (today.weekday() - target) % 7
        day = today - timedelta(days=back)
    else:
        day = today + timedelta(days=(target - today.weekday()) % 7)
        if m.group(0).startswith("next ") and day - today < timedelta(days=7):
            day += timedelta(days=7) if day == today else timedelta(0)
    return TimeWindow(day, day, f"{day:%A} {_fmt(day)}")


def parse_window(text: str, today: date, *, past: bool = False) -> TimeWindow | None:
    """The first time window mentioned in folded text (lower case, letters/digits/spaces/-/).

    ``past``: the question looks back (a metric, what changed), so a period named without a year
    ("in October", "Q3", "on Nov 1") is its latest occurrence that has begun, not the next one.
    """
    for finder in _FINDERS:
        window = finder(text, today, past)
        if window is not None:
            return window
    return None


def _relative(text: str, today: date, past: bool) -> TimeWindow | None:
    if m := _RELATIVE.search(text):
        lead, num, unit = m.group(2) or m.group(1), m.group(3), m.group(4)
        n = _count(num)
        end, unit_name = _span(today, n, unit)
        if lead in ("last", "past", "previous", "prior", "trailing"):
            # Counted back in the unit itself: "last 6 months" starts on the same day 6 months
            # ago, not 181 days back (the length of the 6 months ahead).
            start, _ = _span(today, -n, unit)
            return TimeWindow(start, today, f"last {_plural(n, unit_name)}")
        return TimeWindow(today, end, f"next {_plural(n, unit_name)}")
    if m := _BARE_RELATIVE.search(text):
        n = _count(m.group(1))
        end, unit_name = _span(today, n, m.group(2))
        return TimeWindow(today, end, f"next {_plural(n, unit_name)}")
    if m := _PAST_UNIT.search(text):
        start, unit_name = _span(today, -1, m.group(1))
        return TimeWindow(start, today, f"last {unit_name}")
    if m := _FORTNIGHT.search(text):
        if m.group(1) in ("last", "past", "previous"):
            return TimeWindow(today - timedelta(days=14), today, "last 2 weeks")
        return TimeWindow(today, today + timedelta(days=14), "next 2 weeks")
    if _TTM.search(text):
        return TimeWindow(today - relativedelta(years=1), today, "last 12 months")
    return None


def _since_periods(text: str, today: date, past: bool) -> TimeWindow | None:
    if m := _SINCE_LAST.search(text):
        window = _calendar(today, "last", m.group(1))
        return TimeWindow(window.start, today, f"since last {m.group(1)}")
    if m := _SINCE_START.search(text):
        unit = "quarter" if m.group(1) == "qtr" else m.group(1)
        return TimeWindow(_period_start(today, unit), today, f"{unit} to date")
    return _to_date(text, today) or _since(text, today)


def _deadlines(text: str, today: date, past: bool) -> TimeWindow | None:
    if m := _END_OF_QUARTER_NAME.search(text):
        end = _quarter_end(_quarter_ahead(today, int(m.group(2))))
        return TimeWindow(today, end, f"until end of Q{m.group(2)}")
    if m := _END_OF_MONTH_NAME.search(text):
        month = MONTHS[m.group(2)]
        end = _month_end(_month_start_ahead(today, month))
        return TimeWindow(today, end, f"until end of {calendar.month_name[month]}")
    if m := _END_OF_PERIOD.search(text):
        which = m.group(2) or "this"
        window = _calendar(today, which, m.group(3))
        return TimeWindow(today, window.end, f"until end of {window.label.split()[-1]}")
    if _YEAR_END.search(text):
        return TimeWindow(today, date(today.year, 12, 31), "until end of year")
    if m := _ISO_UNTIL.search(text):
        try:
            day = date(int(m.group(2)), int(m.group(3)), int(m.group(4)))
        except ValueError:
            return None
        return _until(today, m.group(1), day)
    if m := _UNTIL_DATE.search(text):
        word = m.group(1)
        g = m.groups()
        # groups: 1 word, 2 month,3 day | 4 day,5 month | 6 m,7 d | 8 month | 9 quarter
        try:
            if g[1]:
                return _until(today, word, _next_occurrence(today, MONTHS[g[1]], int(g[2])))
            if g[3]:
                return _until(today, word, _next_occurrence(today, MONTHS[g[4]], int(g[3])))
            if g[5]:
                return _until(today, word, _next_occurrence(today, int(g[5]), int(g[6])))
        except (ValueError, KeyError):
            return None
        if g[7]:
            start = _month_start_ahead(today, MONTHS[g[7]])
            return _period_until(today, word, start, _month_end(start), start.strftime("%B"))
        if g[8]:
            start = _quarter_ahead(today, int(g[8]))
            return _period_until(today, word, start, _quarter_end(start), f"Q{g[8]}")
    return _weekday_until(text, today)


def _periods(text: str, today: date, past: bool) -> TimeWindow | None:
    if m := _QUARTER_YEAR.search(text):
        quarter, year = int(m.group(1) or m.group(4)), int(m.group(2) or m.group(3))
        start = date(year, 3 * (quarter - 1) + 1, 1)
        return TimeWindow(start, _quarter_end(start), f"Q{quarter} {year}")
    if m := _MONTH_YEAR.search(text):
        start = date(int(m.group(2)), MONTHS[m.group(1)], 1)
        return TimeWindow(start, _month_end(start), start.strftime("%B %Y"))
    half = _half(text, today, past)
    if half is not None:
        return half
    if m := _PERIOD_OF_YEAR.search(text):
        # "q2 next year", "march of this year": that period in that year, not the whole year.
        year = today.year + {"this": 0, "next": 1, "last": -1}[m.group(3)]
        if m.group(1):
            start = date(year, 3 * (int(m.group(1)) - 1) + 1, 1)
            return TimeWindow(start, _quarter_end(start), f"Q{m.group(1)} {year}")
        start = date(year, MONTHS[m.group(2)], 1)
        return TimeWindow(start, _month_end(start), start.strftime("%B %Y"))
    if m := _CALENDAR.search(text):
        return _calendar(today, m.group(1), m.group(2))
    if m := _LAST_MONTH_NAME.search(text):
        start = _month_start_behind(today, MONTHS[m.group(1)])
        if start.month == today.month and start.year == today.year:
            start = date(today.year - 1, start.month, 1)
        return TimeWindow(start, _month_end(start), start.strftime("%B %Y"))
    if m := _IN_PERIOD.search(text):
        quarter = m.group(1) or m.group(3)
        if quarter:
            start = (_quarter_behind if past else _quarter_ahead)(today, int(quarter))
            return TimeWindow(start, _quarter_end(start), f"Q{quarter} {start.year}")
        month = MONTHS[m.group(2)]
        start = _month_start_behind(today, month) if past else _month_start_ahead(today, month)
        return TimeWindow(start, _month_end(start), start.strftime("%B %Y"))
    if m := _YEAR_ALONE.search(text):
        year = int(m.group(1))
        return TimeWindow(date(year, 1, 1), date(year, 12, 31), str(year))
    return None


def _days(text: str, today: date, past: bool) -> TimeWindow | None:
    if m := _ON_DATE.search(text):
        day = _date_of(m.groups(), today, past=past)
        if day is not None:
            return TimeWindow(day, day, _fmt(day))
    window = _day_word(text, today)
    if window is not None:
        return window
    if m := _BARE_MONTH.search(text):
        month = MONTHS[m.group(1)]
        start = _month_start_behind(today, month) if past else _month_start_ahead(today, month)
        return TimeWindow(start, _month_end(start), start.strftime("%B %Y"))
    return _on_weekday(text, today, past)


def _between_finder(text: str, today: date, past: bool) -> TimeWindow | None:
    if m := _NOW_UNTIL.search(text):
        point = _point(m.group(1), today, past=False)
        if point is not None and point[1] >= today:
            return TimeWindow(today, point[1], f"until {_fmt(point[1])}")
    return _between(text, today, past)


# Most specific first: a range beats the dates inside it; "since last week" beats "last week".
_FINDERS: tuple[Callable[[str, date, bool], TimeWindow | None], ...] = (
    _between_finder,
    _since_periods,
    _relative,
    _deadlines,
    _periods,
    _days,
)


def _until(today: date, word: str, day: date) -> TimeWindow:
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


def describe(window: TimeWindow) -> str:
    """The window as an answer's first line says it: "1 Jan – 15 Feb 2027"."""
    return _range_label(window.start, window.end)
