"""The data table after `#Data:`: labels mapped to canonical names, cells typed, damage counted.

Read block by block with pyarrow's streaming CSV reader, so a 200 MB file is staged in bounded
memory; a typical file (~30 KB) is a single block.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .schema import ProcedureSpec
from .values import NUMBER

FLOAT_CELL = rf"^\s*(?:{NUMBER})\s*$"
BLOCK_BYTES = 8 << 20


@dataclass
class Columns:
    """How the label row maps onto columns, and what the file lacks."""

    names: list[str]
    unmapped: list[str]
    missing: list[str]


@dataclass
class Damage:
    null_cells: int = 0  # cells that are empty or could not be parsed as their type
    skipped_rows: int = 0  # rows with the wrong number of cells (ragged, or the last line cut short)
    text_columns: set[str] = field(default_factory=set)  # unmapped columns holding text, fixed by the first block


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
    return pc.if_else(numeric, column, pa.scalar(None, pa.string())).cast(pa.float64())


def read_blocks(source: BinaryIO, columns: Columns, spec: ProcedureSpec, encoding: str, damage: Damage) -> Iterator[pa.Table]:
    """Typed tables, one per block of rows. `source` is positioned just after the label row."""

    def skip_ragged(_row: object) -> str:
        damage.skipped_rows += 1
        return "skip"

    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=columns.names, use_threads=False, block_size=BLOCK_BYTES, encoding=encoding),
            parse_options=pacsv.ParseOptions(invalid_row_handler=skip_ragged),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(columns.names, pa.string()), strings_can_be_null=True),
        )
    except pa.ArrowInvalid as error:
        if "Empty CSV" in str(error):  # a label row and nothing after it
            return
        raise
    first = True
    for batch in reader:
        typed = [to_float(column) for column in batch.columns]
        if first:  # an unmapped column stays text if its first block has text in it
            damage.text_columns = {
                name for name, raw, value in zip(columns.names, batch.columns, typed)
                if name not in spec.columns and value.null_count > raw.null_count
            }  # fmt: skip
            first = False
        arrays = [raw if name in damage.text_columns else value for name, raw, value in zip(columns.names, batch.columns, typed)]
        damage.null_cells += sum(array.null_count for array in arrays)
        yield pa.table(arrays, names=columns.names)


def empty_table(columns: Columns, damage: Damage) -> pa.Table:
    return pa.table({name: pa.array([], pa.string() if name in damage.text_columns else pa.float64()) for name in columns.names})
