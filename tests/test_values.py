from datetime import UTC, datetime

import pytest
from nanolab.values import parse_value, split_unit


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
