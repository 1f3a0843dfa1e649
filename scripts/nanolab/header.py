"""Parse the `#`-commented header that PyMeasure's `Results` writer puts before the data table."""

from __future__ import annotations

import codecs
import re
import warnings
from dataclasses import dataclass, field

PROCEDURE_RE = re.compile(r"<(?:[^>]*\.)?(?P<name>[^.>]+)>")
SECTIONS = {"parameters:": "parameters", "metadata:": "metadata"}


class RawFormatError(ValueError):
    """The file is not a PyMeasure measurement; the message is the manifest's reject reason."""


@dataclass(frozen=True)
class RawHeader:
    """What the header says, values still as text (typing happens against the procedure schema)."""

    procedure: str
    parameters: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def start_time_text(self) -> str | None:
        """`Start time` from the metadata block; some older files carry it among the parameters."""
        return self.metadata.get("Start time") or self.parameters.get("Start time")


BINARY = "binary file (NUL bytes), not a PyMeasure CSV"
HEADER_BYTES = 16384  # PyMeasure headers are ~1 KB; a longer one is not a measurement header


def split_raw(head: bytes) -> tuple[RawHeader, str, int]:
    """Header, text encoding and byte offset of the label row, from the first HEADER_BYTES of a file.

    UTF-8 (BOM dropped), falling back to Latin-1 for older files with stray bytes such as a `°`.
    NUL bytes in the header or label row make it a binary file; in the table (e.g. the zero-filled tail
    a power cut leaves) they are damaged cells, counted when the table is read."""
    nul = head.find(b"\x00", 0, 8192)
    offset = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    body_start = offset
    lines = head[offset:].splitlines(keepends=True)
    for number, line in enumerate(lines):
        offset += len(line)
        stripped = line.strip()
        if stripped.startswith(b"#") and stripped[1:].strip().lower() == b"data:":
            at = next((k for k in range(number + 1, len(lines)) if lines[k].strip()), len(lines))  # the label row
            offset += sum(map(len, lines[number + 1 : at]))  # blank lines before it (\r\r\n line ends make one per line)
            label = lines[at] if at < len(lines) else b""
            if 0 <= nul < offset + len(label):
                raise RawFormatError(BINARY)
            encoding = "utf-8" if is_utf8(head[body_start:offset] + label) else "latin-1"
            return parse_header(head[body_start:offset].decode(encoding)), encoding, offset
        if stripped and not stripped.startswith(b"#"):
            break
    if nul >= 0:
        raise RawFormatError(BINARY)
    return parse_header(head[body_start:].decode("latin-1")), "latin-1", offset  # raises with the reason


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def unescape(value: str) -> str:
    """Undo PyMeasure's `unicode_escape` of parameter values; leave text that is not escaped as it is."""
    if "\\" not in value:
        return value
    try:
        with warnings.catch_warnings():  # a lone "\d" is not an escape: kept as typed
            warnings.simplefilter("ignore", DeprecationWarning)
            return codecs.decode(value.encode("latin-1", "backslashreplace"), "unicode_escape")
    except UnicodeDecodeError:
        return value


def parse_header(text: str) -> RawHeader:
    """Split the header lines into procedure, parameters and metadata; tolerant of tabs/spaces and CRLF."""
    if not text.strip():
        raise RawFormatError("empty file")
    procedure: str | None = None
    sections: dict[str, dict[str, str]] = {"parameters": {}, "metadata": {}}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if stripped:
                raise RawFormatError("no '#Data:' line before the data table")
            continue
        body = stripped[1:].strip()
        key, sep, value = body.partition(":")
        lowered = body.lower()
        if lowered.startswith("procedure:"):
            match = PROCEDURE_RE.search(value)
            procedure = (match.group("name") if match else value).strip()
        elif lowered == "data:":
            if procedure is None:
                raise RawFormatError("no '#Procedure:' line in the header")
            return RawHeader(procedure, sections["parameters"], sections["metadata"])
        elif lowered in SECTIONS:
            current = sections[SECTIONS[lowered]]
        elif sep and current is not None:
            current[key.strip()] = unescape(value.strip())
    if procedure is None:
        raise RawFormatError("no '#Procedure:' line in the header")
    raise RawFormatError(f"no '#Data:' line within the first {HEADER_BYTES} bytes: the header never ends")
