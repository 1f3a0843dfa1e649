from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from nanolab.values import parse_datetime, parse_value, split_unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [("60 s", (60.0, "s")), ("0.001 A", (0.001, "A")), ("-8 V", (-8.0, "V")), ("1e-3 V", (0.001, "V")),
     ("455", (455.0, None)), (" .5 nm ", (0.5, "nm")), ("abc", None), ("", None)],
)  # fmt: skip
def test_split_unit(text, expected):
    assert split_unit(text) == expected


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("60 s", "float", 60.0),
        ("455 nm", "float", 455.0),
        ("455", "float_no_unit", 455.0),
        ("455 nm", "float_no_unit", None),
        ("2", "int", 2),
        ("2.0", "int", 2),
        ("2.5", "int", None),
        ("True", "bool", True),
        ("False", "bool", False),
        ("maybe", "bool", None),
        ("Alisson", "str", "Alisson"),
        ("None", "str", None),
        ("None", "float", None),
        ("not a number", "float", None),
        ("1757584800.0", "datetime", datetime(2025, 9, 11, 10, 0, tzinfo=UTC)),
        ("2025-09-11T07:00:00-03:00", "datetime", datetime(2025, 9, 11, 10, 0, tzinfo=UTC)),
    ],
)
def test_parse_value(text, kind, expected):
    assert parse_value(text, kind) == expected
    assert type(parse_value(text, kind)) is type(expected)


@pytest.mark.parametrize(
    "text", ["-62135596800", "-62135510401", "253402300799", "253402214400", "0001-01-01T00:00:00", "0001-01-01T00:00:00+05:00",
             "9999-12-31T23:00:00-10:00", "1e99", "inf", "nan"]
)  # fmt: skip
def test_a_moment_no_timezone_can_show_is_no_datetime(text):
    """Within a day of year 1 or 9999 only a damaged header: converting it to the lab's timezone overflowed
    later (a month's figures failed on one such file)."""
    assert parse_datetime(text) is None


@pytest.mark.parametrize(
    ("text", "expected"), [("-62135510400", datetime(1, 1, 2, tzinfo=UTC)), ("253402214399", datetime(9999, 12, 30, 23, 59, 59, tzinfo=UTC))]
)
def test_a_day_inside_the_calendar_ends_is_a_datetime_every_timezone_can_show(text, expected):
    parsed = parse_datetime(text)
    assert parsed == expected
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "America/Santiago"):
        assert parsed.astimezone(ZoneInfo(zone)).year in (1, 9999)
