import pytest
from nanolab.header import RawFormatError, parse_header, split_raw, unescape

HEADER = (
    "#Procedure: <laser_setup.procedures.IV.IV>\n"
    "#Parameters:\n"
    "#\tBurn-in time: 60 s\n"
    "#\tChip group name: Alisson\n"
    "#\tInformation: caf\\xe9 \\u00b0C\n"
    "#Metadata:\n"
    "#\tStart time: 1757584800.0\n"
    "#Data:\n"
)
TABLE = "Vsd (V),I (A)\n0.0,1e-9\n"


def test_sections_are_split_and_values_kept_as_text():
    header, encoding, offset = split_raw((HEADER + TABLE).encode())
    assert header.procedure == "IV"
    assert header.parameters == {"Burn-in time": "60 s", "Chip group name": "Alisson", "Information": "café °C"}
    assert header.metadata == {"Start time": "1757584800.0"}
    assert header.start_time_text == "1757584800.0"
    assert (encoding, (HEADER + TABLE).encode()[offset:]) == ("utf-8", TABLE.encode())


def test_crlf_spaces_instead_of_tabs_and_bom():
    text = HEADER.replace("\t", "  ").replace("\n", "\r\n")
    raw = b"\xef\xbb\xbf" + (text + TABLE).encode()
    header, _, offset = split_raw(raw)
    assert header.procedure == "IV"
    assert header.parameters["Burn-in time"] == "60 s"
    assert header.metadata["Start time"] == "1757584800.0"
    assert raw[offset:] == TABLE.encode()


def test_start_time_among_parameters_in_older_files():
    text = HEADER.replace("#Metadata:\n", "")
    text = text.replace("#\tStart time: 1757584800.0\n", "").replace("#Parameters:\n", "#Parameters:\n#\tStart time: 1.5\n")
    assert parse_header(text + TABLE).start_time_text == "1.5"


def test_latin1_bytes_fall_back_without_losing_the_degree_sign():
    raw = (HEADER + "Plate T (°C),I (A)\n1,2\n").encode("latin-1", "backslashreplace")
    header, encoding, offset = split_raw(raw)
    assert encoding == "latin-1"
    assert raw[offset:].decode(encoding).startswith("Plate T (°C)")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty file"),
        ("   \n\n", "empty file"),
        ("hello,world\n1,2\n", "no '#Data:' line"),
        ("#Parameters:\n#\tA: 1\n#Data:\nx\n", "no '#Procedure:'"),
        ("#Procedure: <a.IV>\n#Parameters:\n#\tA: 1\n", "never ends"),
    ],
)
def test_not_a_measurement_gives_a_readable_reason(text, reason):
    with pytest.raises(RawFormatError, match=reason):
        split_raw(text.encode())


def test_binary_is_refused():
    with pytest.raises(RawFormatError, match="binary"):
        split_raw(b"\x00\x01\x02PK")


def test_unescape_leaves_plain_text_alone():
    assert unescape(r"C:\\data") == r"C:\data"  # PyMeasure doubles backslashes
    assert unescape(r"C:\data") == r"C:\data"  # a lone backslash was never escaped: kept
    assert unescape("plain") == "plain"
    assert unescape("tab\\there") == "tab\there"
