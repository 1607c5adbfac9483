"""Typed scalar leaves: the one place that decides what kind of value a JSON scalar is.

The evaluator, the attribute index and the SQL compiler all compare *leaves*, triples of
`(kind, num, txt)`, so the three cannot disagree about types:

    kind "n"  a JSON number (not a boolean)          num = float(value)
    kind "b"  a JSON boolean                          num = 1.0 / 0.0
    kind "s"  a JSON string                           txt = the string as sent
    kind "r"  the object IRI of a Relationship        txt = the IRI
    kind "d"  an instant: a string that is an ISO 8601 date-time or date (a date is its
              midnight UTC)                           txt = "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC)
    kind "c"  a string already in that normalised form, such as the broker's own createdAt,
              modifiedAt and observedAt               txt = the string (an "s" and a "d" in one)
    kind "t"  a string that is a time of day          txt = "HH:MM:SS.ffffff" (UTC, mod 24 h)
    kind "x"  a node that exists but holds no scalar (null, {}, [], an object)

Any other string that is a date-time yields two leaves ("s" with the raw text and "d" with
the normalised instant), so it matches both `a=="2026-01-01T10:00:00+02:00"` and
`a>2025-12-31`. Kind "c" folds that pair into one leaf when both texts are the same (one
index row instead of two for every timestamp the broker writes); plan.py lists it wherever
it lists "s" or "d".
Normalised instants and times are fixed-width text, so text order is time order, in Python
and in SQL (SQLite BINARY collation, PostgreSQL COLLATE "C").
Non-finite floats and integers beyond the double range yield no leaf (SQLite cannot keep
NaN, and PostgreSQL orders NaN above every number).

Regular expressions are compiled once (cached) with re.DOTALL, so `.` matches a newline as
in POSIX and PostgreSQL.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any

NUMBER = "n"
BOOLEAN = "b"
STRING = "s"
OBJECT = "r"
INSTANT = "d"
STRING_INSTANT = "c"
TIME = "t"
PRESENT = "x"

Leaf = tuple[str, float | None, str | None]

_FRACTION = r"(?:\.\d+)?"
_ZONE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)?"
# Token patterns (non-capturing) shared with the q grammar.
DATETIME_PATTERN = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}" + _FRACTION + ")?" + _ZONE
DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
TIME_PATTERN = r"\d{2}:\d{2}(?::\d{2}" + _FRACTION + ")?" + _ZONE

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# The fixed-width UTC text instant_text writes (and format_datetime in payload.py).
_CANONICAL_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z",
                           re.ASCII)  # other digits are not normalised text
_TIME_RE = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}(?::?\d{2})?)?")


def _zone(text: str | None) -> timezone | None:
    """The fixed offset of an ISO 8601 zone designator; None when out of range."""
    if not text or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _micros(fraction: str | None) -> int:
    return int((fraction or "").ljust(6, "0")[:6])


def parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 date-time as an aware UTC datetime (no zone means UTC); None if not one."""
    found = _DATETIME_RE.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    tz = _zone(zone)
    if tz is None:
        return None
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute),
                         int(second or 0), _micros(fraction), tzinfo=tz)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_date(text: str) -> date | None:
    found = _DATE_RE.fullmatch(text)
    if found is None:
        return None
    try:
        return date(*(int(part) for part in found.groups()))
    except ValueError:
        return None


def parse_time(text: str) -> time | None:
    """A time of day as a naive time meaning UTC (an offset is applied modulo 24 hours)."""
    found = _TIME_RE.fullmatch(text)
    if found is None:
        return None
    hour, minute, second, fraction, zone = found.groups()
    tz = _zone(zone)
    if tz is None or int(hour) > 23 or int(minute) > 59 or int(second or 0) > 59:
        return None
    offset = tz.utcoffset(None)
    seconds = int(hour) * 3600 + int(minute) * 60 + int(second or 0) - int(offset.total_seconds())
    seconds %= 86400
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60, _micros(fraction))


def instant_text(moment: datetime | date) -> str:
    """The fixed-width UTC text of an instant (a date means its midnight UTC)."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC)
        return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
                f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z")
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T00:00:00.000000Z"


def time_text(moment: time) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}"


@lru_cache(maxsize=4096)
def _temporal_leaf(text: str) -> Leaf | None:
    """The instant or time a string means, if any (cached: a batch repeats its timestamps)."""
    canonical = _CANONICAL_RE.fullmatch(text)
    if canonical is not None:  # already normalised: only check that the date exists
        y, mo, d, h, mi, s, us = (int(part) for part in canonical.groups())
        try:
            datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)
        except ValueError:
            return None
        return (INSTANT, None, text)
    moment = parse_datetime(text)
    if moment is not None:
        return (INSTANT, None, instant_text(moment))
    day = parse_date(text)
    if day is not None:
        return (INSTANT, None, instant_text(day))
    clock = parse_time(text)
    if clock is not None:
        return (TIME, None, time_text(clock))
    return None


def scalar_leaves(item: Any, relationship: bool, out: list[Leaf]) -> None:
    """Append the leaves of one JSON item (a scalar yields one or two, anything else none)."""
    exact = type(item)  # the common cases first: this runs for every leaf of every write
    if exact is float:
        if math.isfinite(item):
            out.append((NUMBER, item, None))
        return
    if exact is str and (relationship or not item[:2].isdigit()):
        out.append((OBJECT if relationship else STRING, None, item))
        return
    if isinstance(item, dict) and "@value" in item:  # a JSON-LD typed literal
        item = item["@value"]
    if isinstance(item, bool):
        out.append((BOOLEAN, 1.0 if item else 0.0, None))
    elif isinstance(item, int | float):
        try:
            number = float(item)
        except OverflowError:
            return
        if math.isfinite(number):
            out.append((NUMBER, number, None))
    elif isinstance(item, str):
        if relationship:
            out.append((OBJECT, None, item))
            return
        temporal = _temporal_leaf(item) if len(item) <= 40 and item[:2].isdigit() else None
        if temporal is None:
            out.append((STRING, None, item))
        elif temporal[0] == INSTANT and temporal[2] == item:
            out.append((STRING_INSTANT, None, item))
        else:
            out.append((STRING, None, item))
            out.append(temporal)


def value_leaves(value: Any, relationship: bool = False) -> list[Leaf]:
    """The leaves of a target value: the value itself, or each element of an array
    (one level: nested arrays and objects inside an array yield nothing)."""
    out: list[Leaf] = []
    if isinstance(value, list):
        for item in value:
            scalar_leaves(item, relationship, out)
    else:
        scalar_leaves(value, relationship, out)
    return out


@lru_cache(maxsize=512)
def compiled_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a q regular expression once; raises re.error when it is invalid."""
    return re.compile(pattern, re.DOTALL)


def regex_search(pattern: str, text: str) -> bool:
    return compiled_pattern(pattern).search(text) is not None
