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
    data_offset: int = 0  # character offset of the label row in the decoded text

    @property
    def start_time_text(self) -> str | None:
        """`Start time` from the metadata block; some older files carry it among the parameters."""
        return self.metadata.get("Start time") or self.parameters.get("Start time")


def decode_raw(data: bytes) -> str:
    """Decode raw bytes: UTF-8 (BOM dropped), falling back to Latin-1 for older files with stray bytes."""
    if b"\x00" in data[:8192]:
        raise RawFormatError("binary file (NUL bytes), not a PyMeasure CSV")
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


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
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        offset += len(line)
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
            return RawHeader(procedure, sections["parameters"], sections["metadata"], offset)
        elif lowered in SECTIONS:
            current = sections[SECTIONS[lowered]]
        elif sep and current is not None:
            current[key.strip()] = unescape(value.strip())
    if procedure is None:
        raise RawFormatError("no '#Procedure:' line in the header")
    raise RawFormatError("no '#Data:' line: the header never ends")
