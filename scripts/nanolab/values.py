"""Typed parameter values from header text: units stripped, booleans, integers, timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
NUMBER_WITH_UNIT = re.compile(rf"^\s*(?P<number>{NUMBER})\s*(?P<unit>[^\d\s].*?)?\s*$", re.IGNORECASE)
MISSING = {"", "none", "null", "nan", "n/a"}
TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}

Value = float | int | bool | str | datetime | None


def split_unit(text: str) -> tuple[float, str | None] | None:
    """ "60 s" -> (60.0, "s"); "8" -> (8.0, None); text that is not a number -> None."""
    match = NUMBER_WITH_UNIT.match(text)
    if match is None:
        return None
    return float(match["number"]), match["unit"] or None


# A moment within a day of year 1 or 9999 is a damaged header: no timezone can show it (OverflowError).
CALENDAR = (datetime.min.replace(tzinfo=UTC) + timedelta(days=1), datetime.max.replace(tzinfo=UTC) - timedelta(days=1))


def parse_datetime(text: str) -> datetime | None:
    """Epoch seconds or ISO 8601 (naive ISO counts as UTC) -> aware UTC datetime; None off the calendar."""
    try:
        parsed = datetime.fromtimestamp(float(text), tz=UTC)
    except (ValueError, OverflowError, OSError):
        try:
            parsed = datetime.fromisoformat(text.strip())
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            return None
    return parsed if CALENDAR[0] <= parsed <= CALENDAR[1] else None


def is_missing(text: str) -> bool:
    """The header says there is no value ("None", "", "nan", …), rather than one of the wrong type."""
    return text.strip().lower() in MISSING


def parse_value(text: str, kind: str) -> Value:
    """Type one header value; None when it is missing or does not fit the type."""
    if is_missing(text):
        return None
    if kind == "str":
        return text
    if kind == "datetime":
        return parse_datetime(text)
    if kind == "bool":
        word = text.strip().lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None
    number = split_unit(text)
    if number is None:
        return None
    value, unit = number
    if kind == "float":
        return value
    if kind == "float_no_unit":
        return None if unit else value
    if kind == "int":
        return int(value) if value.is_integer() and unit is None else None
    raise ValueError(f"unknown parameter type {kind!r}")
