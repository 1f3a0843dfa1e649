"""The data table after `#Data:`: labels mapped to canonical names, cells typed, damage counted.

Read block by block with pyarrow's streaming CSV reader, so a 200 MB file is staged in bounded
memory; a typical file (~100 KB) is a single block. Such a file is first read with every column
typed float64 by the CSV reader itself (~3x cheaper than checking each cell's text): when that fails
(a cell that is not a number) or yields a non-finite value (the reader accepts spellings such as
`Infinity` that the text path does not), the same bytes go through the text path, so the result and
its damage counts are always what the text path gives.

A cell the instrument wrote as `nan` (any case, with or without a sign) is a value that was not measured
(nothing connected to a temperature input), not damage: it is null in the table and counted per column
(`Damage.not_measured`); `null_cells` counts only the cells that are empty or not a number.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .header import is_utf8
from .schema import ProcedureSpec
from .values import NUMBER

FLOAT_CELL = rf"^\s*(?:{NUMBER})\s*$"
BLOCK_BYTES = 8 << 20
LINES_KEPT = 5  # line numbers kept of the first skipped rows and rows with null cells (the manifest shows them)
NOT_MEASURED = r"^\s*[-+]?nan\s*$"  # how PyMeasure writes a value it did not measure
# Every spelling of it, for the CSV reader's float path (exact matches only: padded ones take the text path).
NOT_MEASURED_SPELLINGS = [
    sign + "".join(c.upper() if 1 << k & case else c for k, c in enumerate("nan")) for sign in ("", "-", "+") for case in range(8)
]


@dataclass
class Columns:
    """How the label row maps onto columns, and what the file lacks."""

    names: list[str]
    unmapped: list[str]
    missing: list[str]


@dataclass
class Damage:
    """What was wrong with the table, and where: line numbers count from the label row (1 = the line
    after it). The CSV reader numbers rows without blank lines; they are counted back in when the
    table was read in one block (every file but those over BLOCK_BYTES)."""

    null_cells: int = 0  # cells that are empty or could not be parsed as their type (not those written `nan`)
    not_measured: dict[str, int] = field(default_factory=dict)  # {column: cells written `nan`}, stored as null
    skipped_rows: int = 0  # rows with the wrong number of cells (ragged, or the last line cut short)
    text_columns: set[str] = field(default_factory=set)  # unmapped columns holding text, fixed by the first block
    skipped_at: list[int] = field(default_factory=list)  # every skipped row's line
    null_at: list[int] = field(default_factory=list)  # the first LINES_KEPT rows with a null cell

    def count_blank_lines(self, data: bytes) -> None:
        """Row numbers of the CSV reader to line numbers of `data`, the table's bytes after the label row."""
        nonblank = [number for number, line in enumerate(data.splitlines(), start=1) if line]
        self.skipped_at, self.null_at = ([nonblank[n - 1] if n <= len(nonblank) else n for n in rows] for rows in (self.skipped_at, self.null_at))


def row_number(kept: int, skipped: list[int]) -> int:
    """The CSV row number of the table's row `kept` (0-based), given the sorted numbers of the rows skipped."""
    number = kept + 1
    for row in skipped:
        if row > number:
            break
        number += 1
    return number


def null_rows(masks: list, first: int, damage: Damage) -> list[int]:
    """Row numbers of the first rows with a damaged null cell among `masks` (one per column, of a block whose
    first row is the table's row `first`)."""
    has_null = functools.reduce(pc.or_, masks)
    found = pc.indices_nonzero(has_null)[: LINES_KEPT - len(damage.null_at)].to_pylist()
    return [row_number(first + k, damage.skipped_at) for k in found]


def count_not_measured(damage: Damage, name: str, cells: int) -> None:
    if cells:
        damage.not_measured[name] = damage.not_measured.get(name, 0) + cells


def map_columns(label_line: str, spec: ProcedureSpec) -> Columns:
    """Canonical names for mapped labels, the label itself otherwise; duplicates get a numeric suffix."""
    labels = next(csv.reader([label_line.strip("\r\n")]), [])
    names: list[str] = []
    unmapped: list[str] = []
    for label in labels:
        name = spec.canonical_column(label)
        if name is None:
            name = label.strip() or "unnamed"
            unmapped.append(name)
        base, n = name, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return Columns(names, unmapped, [c for c in spec.columns if c not in names])


def to_float(column: pa.Array) -> pa.Array:
    """Text cells to float64; cells that are not numbers become null instead of failing the file."""
    numeric = pc.match_substring_regex(column, FLOAT_CELL, ignore_case=True)
    return pc.if_else(numeric, pc.utf8_trim_whitespace(column), pa.scalar(None, pa.string())).cast(pa.float64())


def read_blocks(source: BinaryIO, columns: Columns, spec: ProcedureSpec, encoding: str, damage: Damage) -> Iterator[pa.Table]:
    """Typed tables, one per block of rows. `source` is positioned just after the label row."""
    start = source.tell()
    head = source.read(BLOCK_BYTES + 1)
    if len(head) <= BLOCK_BYTES:  # the whole table is in `head`
        if encoding == "utf-8" and not head.isascii() and not is_utf8(head):  # a stray byte below a UTF-8 header:
            encoding = "latin-1"  # as UTF-8 pyarrow would refuse the whole table, so every byte is taken as a character
        if (table := read_floats(head, columns, encoding, damage)) is not None:
            if table.num_rows:
                yield table
        else:
            yield from read_text_blocks(io.BytesIO(head), columns, spec, encoding, damage)
        if damage.skipped_at or damage.null_at:
            damage.count_blank_lines(head)
        return
    source.seek(start)
    if encoding == "utf-8" and not rest_is_utf8(source):
        encoding = "latin-1"  # as for a table read whole
    yield from read_text_blocks(source, columns, spec, encoding, damage)


def rest_is_utf8(source: BinaryIO) -> bool:
    """Whether `source` decodes as UTF-8 from where it is to its end, read in blocks; it is left where it was."""
    start, decoder = source.tell(), codecs.getincrementaldecoder("utf-8")()
    try:
        while block := source.read(BLOCK_BYTES):
            decoder.decode(block)
        decoder.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False
    finally:
        source.seek(start)


def read_floats(data: bytes, columns: Columns, encoding: str, damage: Damage) -> pa.Table | None:
    """The table with every cell parsed as float64 by the CSV reader, or None if any cell is not a finite number or empty."""
    skipped: list[int] = []

    def skip_ragged(row: pacsv.InvalidRow) -> str:
        skipped.append(row.number)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=columns.names, use_threads=False, block_size=BLOCK_BYTES, encoding=encoding),
            parse_options=pacsv.ParseOptions(invalid_row_handler=skip_ragged),
            # only the spellings of `nan` are null here: an empty cell fails the float path and takes the text path
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(columns.names, pa.float64()), null_values=NOT_MEASURED_SPELLINGS),
        ).combine_chunks()
    except pa.ArrowInvalid:
        return None
    if not all(pc.all(pc.is_finite(column)).as_py() in (True, None) for column in table.columns):
        return None
    damage.skipped_rows += len(skipped)
    damage.skipped_at += skipped
    for name, column in zip(columns.names, table.columns):
        count_not_measured(damage, name, column.null_count)  # every null here was written `nan`
    return table


def read_text_blocks(source: BinaryIO, columns: Columns, spec: ProcedureSpec, encoding: str, damage: Damage) -> Iterator[pa.Table]:
    """Every cell read as text, then typed: numbers, nulls counted, unmapped text columns kept as text."""

    def skip_ragged(row: pacsv.InvalidRow) -> str:
        damage.skipped_rows += 1
        damage.skipped_at.append(row.number)
        return "skip"

    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=columns.names, use_threads=False, block_size=BLOCK_BYTES, encoding=encoding),
            parse_options=pacsv.ParseOptions(invalid_row_handler=skip_ragged),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(columns.names, pa.string()), strings_can_be_null=True, null_values=[""]),
        )
    except pa.ArrowInvalid as error:
        if "Empty CSV" in str(error):  # a label row and nothing after it
            return
        raise
    first, kept = True, 0
    for batch in reader:
        typed = [to_float(column) for column in batch.columns]
        if first:  # an unmapped column stays text if its first block has text in it
            damage.text_columns = {
                name for name, raw, value in zip(columns.names, batch.columns, typed)
                if name not in spec.columns and value.null_count > raw.null_count
            }  # fmt: skip
            first = False
        arrays, damaged = [], []
        for name, raw, value in zip(columns.names, batch.columns, typed):
            not_measured = pc.fill_null(pc.match_substring_regex(raw, NOT_MEASURED, ignore_case=True), False)
            count_not_measured(damage, name, pc.sum(not_measured).as_py() or 0)
            kept_value = raw if name in damage.text_columns else value
            arrays.append(pc.if_else(not_measured, pa.scalar(None, kept_value.type), kept_value))
            damaged.append(pc.and_(pc.is_null(kept_value), pc.invert(not_measured)))
        nulls = sum(pc.sum(mask).as_py() or 0 for mask in damaged)
        if nulls and len(damage.null_at) < LINES_KEPT:
            damage.null_at += null_rows(damaged, kept, damage)
        damage.null_cells += nulls
        kept += batch.num_rows
        yield pa.table(arrays, names=columns.names)


def empty_table(columns: Columns, damage: Damage) -> pa.Table:
    return pa.table({name: pa.array([], pa.string() if name in damage.text_columns else pa.float64()) for name in columns.names})
