"""IANA time zone names: validate one, and suggest the closest names for a typo."""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

# "Europe/Berlin", "America/Argentina/Buenos_Aires", "UTC", "Etc/GMT+5": letters, digits, _ + - /.
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")


class TimeZoneUnknown(ValueError):
    """Not an IANA time zone name; the message names the closest ones."""


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """Every zone name the system (or the tzdata package) knows, by its lower-case form."""
    return {name.lower(): name for name in available_timezones()}


def check_timezone(raw: str) -> str:
    """The canonical spelling of an IANA zone name ("europe/berlin" -> "Europe/Berlin").

    Raises TimeZoneUnknown (with up to three suggestions) for anything else; offsets such as
    "+02:00" and abbreviations such as "CET" or "PST" are refused because they do not follow
    daylight saving time, and a digest at 08:30 would then move by an hour twice a year.
    """
    text = raw.strip()
    known = _names()
    if text.lower() in known:
        return known[text.lower()]
    if _NAME_RE.match(text):
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return text
    raise TimeZoneUnknown(
        f"not an IANA time zone name: {raw!r}" + _suggestion(text.replace(" ", "_"), known)
    )


def _suggestion(text: str, known: dict[str, str]) -> str:
    from rapidfuzz import fuzz, process

    # Match on the city too: "Berlin" or "new york" should find Europe/Berlin, America/New_York.
    choices = {name: name.rsplit("/", 1)[-1] for name in known}
    found = process.extract(
        text.lower(), choices, scorer=fuzz.WRatio, limit=3, score_cutoff=80, processor=str.lower
    )
    if not found:
        return " (use a name like Europe/Berlin or America/New_York)"
    return " (did you mean " + ", ".join(known[key] for _, _, key in found) + "?)"
