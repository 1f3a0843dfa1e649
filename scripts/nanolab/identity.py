"""Where a run belongs: its measurement day and a run_id that is stable across machines and moves."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from .values import parse_datetime

PATH_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


def date_from_path(relative_path: str) -> date | None:
    """The last valid YYYY-MM-DD in the path (dated folder or PyMeasure file name), if any."""
    for year, month, day in reversed(PATH_DATE.findall(relative_path)):
        try:
            return date(int(year), int(month), int(day))
        except ValueError:
            continue
    return None


def resolve_date(start: datetime | None, relative_path: str, mtime: float, tz: str) -> tuple[date, str]:
    """Measurement day and where it came from: start time in the lab's timezone, else the path, else mtime."""
    zone = ZoneInfo(tz)
    if start is not None:  # parse_datetime keeps a day off the calendar's ends: every timezone can show it
        return start.astimezone(zone).date(), "meta"
    from_path = date_from_path(relative_path)
    if from_path is not None:
        return from_path, "path"
    return datetime.fromtimestamp(mtime, tz=UTC).astimezone(zone).date(), "mtime"


def parse_start_time(text: str | None) -> datetime | None:
    return None if text is None else parse_datetime(text)


def make_run_id(relative_path: str, start: datetime | None) -> str:
    """16 hex chars from the path relative to raw_root and the start time: safe in any path, never from header text."""
    stamp = "" if start is None else f"{start.timestamp():.6f}"
    return hashlib.blake2b(f"{relative_path}\x00{stamp}".encode(), digest_size=8).hexdigest()
