"""Test-only: seeded random damage to good raw files, of the kinds the lab's archive holds (edited or
mangled header lines, special and out-of-range numbers, instrument overflow readings, truncation
anywhere, NUL bytes, flipped bytes, ragged and blank lines)."""

from __future__ import annotations

import re

import numpy as np

SPECIAL_VALUES = ("1e99", "-1e99", "1e308", "-1e308", "1.7e308", "-1.7e308", "1e400", "inf", "-inf", "nan", "NaN", "Infinity", "9.9e37", "-9.9e37",
                  "99999999999999999999", "-9223372036854775809", "1e-320", "", "abc", "0x1F", "--1", "1e", "\x7f")  # fmt: skip
HEADER_VALUES = (*SPECIAL_VALUES, "1e99 V", "inf nm", "1e400 s", "True", "None", "ÿþ", "\\xff", "\\N{bad}", "\\u12")
START_TIMES = ("1e99", "-1e99", "inf", "nan", "-62135596800", "253402300799", "-1", "x", "", "1e18")
PROCEDURE_LINES = ("#Procedure:", "#Procedure: <>", "#Procedure: <laser_setup.procedures.IV.", "#Proc", "#Procedure: IV/../x",
                   "#Procedure: <laser_setup.procedures.Mystery.Mystery>", "Procedure: <laser_setup.procedures.IV.IV>")  # fmt: skip
DATA_LINES = ("#Data", "#Dat:", "Data:", "#Data: extra", "", "#Data:\n#Data:", "# Data :", "#DATA:")


def _lines(text: str) -> tuple[list[str], int]:
    """The file's lines and the index of its first data row (after `#Data:` and the label row)."""
    lines = text.split("\n")
    data = next((k for k, line in enumerate(lines) if line.strip() == "#Data:"), len(lines) - 2) + 2
    return lines, min(data, len(lines) - 1)


def _pick_data_line(lines: list[str], data: int, rng: np.random.Generator) -> int:
    rows = [k for k in range(data, len(lines)) if lines[k]]
    return int(rng.choice(rows)) if rows else len(lines) - 1


def header_value(text: str, rng: np.random.Generator) -> str:
    lines = text.split("\n")
    keyed = [k for k, line in enumerate(lines) if re.match(r"#\t[^:]+: ", line)]
    if not keyed:  # an earlier damage took the header's parameter lines
        return text
    integers = [k for k in keyed if re.match(r"#\t(Chip number|N_avg|NPLC):", lines[k])]
    k = int(rng.choice(integers if integers and rng.random() < 0.5 else keyed))  # int64 overflow is the likeliest harm
    name = lines[k].split(":")[0]
    lines[k] = f"{name}: {rng.choice(START_TIMES if 'Start time' in name else HEADER_VALUES)}"
    return "\n".join(lines)


def cell(text: str, rng: np.random.Generator) -> str:
    lines, data = _lines(text)
    for _ in range(int(rng.integers(1, 4))):
        k = _pick_data_line(lines, data, rng)
        cells = lines[k].split(",")
        cells[int(rng.integers(len(cells)))] = str(rng.choice(SPECIAL_VALUES))
        lines[k] = ",".join(cells)
    return "\n".join(lines)


def overflow_row(text: str, rng: np.random.Generator) -> str:
    """A whole reading at the instrument's overflow value (Keithley: 9.9e37)."""
    lines, data = _lines(text)
    k = _pick_data_line(lines, data, rng)
    lines[k] = ",".join("9.9e37" for _ in lines[k].split(","))
    return "\n".join(lines)


def procedure_line(text: str, rng: np.random.Generator) -> str:
    return re.sub(r"^#Procedure:.*$", str(rng.choice(PROCEDURE_LINES)), text, count=1, flags=re.M)


def data_line(text: str, rng: np.random.Generator) -> str:
    return re.sub(r"^#Data:$", str(rng.choice(DATA_LINES)), text, count=1, flags=re.M)


def ragged_and_blank(text: str, rng: np.random.Generator) -> str:
    lines, data = _lines(text)
    for _ in range(int(rng.integers(1, 4))):
        k = _pick_data_line(lines, data, rng)
        lines.insert(k, str(rng.choice(["", "1,2", lines[k] + ",7", "\r", " "])))
    return "\n".join(lines)


def label_row(text: str, rng: np.random.Generator) -> str:
    lines, data = _lines(text)
    labels = lines[data - 1].split(",")
    choice = int(rng.integers(3))
    if choice == 0:
        labels.pop(int(rng.integers(len(labels))))
    elif choice == 1:
        labels[int(rng.integers(len(labels)))] = "Ünknown ¿"
    else:
        labels = labels[::-1]
    lines[data - 1] = ",".join(labels)
    return "\n".join(lines)


TEXT_DAMAGE = (header_value, cell, overflow_row, procedure_line, data_line, ragged_and_blank, label_row)


def truncate(raw: bytes, rng: np.random.Generator) -> bytes:
    return raw[: int(rng.integers(len(raw)))]


def nul_bytes(raw: bytes, rng: np.random.Generator) -> bytes:
    at = int(rng.integers(len(raw)))
    return raw[:at] + b"\x00" * int(rng.integers(1, 64)) + raw[at:]


def flip_bytes(raw: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(raw)
    for at in rng.integers(len(data), size=int(rng.integers(1, 6))):
        data[at] = int(rng.integers(256))
    return bytes(data)


def crlf(raw: bytes, rng: np.random.Generator) -> bytes:
    return raw.replace(b"\n", b"\r\n") if rng.random() < 0.5 else raw.replace(b"\n", b"\r")


BYTE_DAMAGE = (truncate, nul_bytes, flip_bytes, crlf)
KINDS = tuple(f.__name__ for f in TEXT_DAMAGE + BYTE_DAMAGE)


def damage(raw: bytes, rng: np.random.Generator) -> tuple[bytes, list[str]]:
    """The file with one to three random kinds of damage applied, and their names in order."""
    applied = []
    for _ in range(int(rng.integers(1, 4))):
        kind = (TEXT_DAMAGE + BYTE_DAMAGE)[int(rng.integers(len(KINDS)))]
        if kind in TEXT_DAMAGE:
            raw = kind(raw.decode("utf-8", "surrogateescape"), rng).encode("utf-8", "surrogateescape")
        else:
            raw = kind(raw, rng)
        applied.append(kind.__name__)
    return raw, applied
