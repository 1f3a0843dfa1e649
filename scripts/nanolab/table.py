"""The data table after `#Data:`: labels mapped to canonical names, cells typed, damage counted."""

from __future__ import annotations

import csv
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .schema import ProcedureSpec
from .values import NUMBER

FLOAT_CELL = rf"^\s*(?:{NUMBER})\s*$"


@dataclass(frozen=True)
class DataTable:
    table: pa.Table
    null_cells: int  # cells that are empty or could not be parsed as their type
    skipped_rows: int  # rows with the wrong number of cells (ragged, or the last line cut short)
    unmapped: tuple[str, ...]  # labels kept under their own name: no canonical name matched
    missing: tuple[str, ...]  # canonical columns of the procedure that the file lacks


def column_names(labels: list[str], spec: ProcedureSpec) -> tuple[list[str], list[str]]:
    """Canonical names for mapped labels, the label itself otherwise; duplicates get a numeric suffix."""
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
    return names, unmapped


def _read(body: bytes, names: list[str], types: dict[str, pa.DataType]) -> tuple[pa.Table, int]:
    skipped = 0

    def skip_ragged(_row: object) -> str:
        nonlocal skipped
        skipped += 1
        return "skip"

    table = pacsv.read_csv(
        pa.py_buffer(body),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=skip_ragged),
        convert_options=pacsv.ConvertOptions(column_types=types),
    )
    return table, skipped


def _to_float(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Cast text cells to float64; cells that are not numbers become null instead of failing the file."""
    numeric = pc.match_substring_regex(column, FLOAT_CELL, ignore_case=True)
    return pc.if_else(numeric, column, pa.scalar(None, pa.string())).cast(pa.float64())


def _type_text_columns(table: pa.Table, canonical: set[str]) -> pa.Table:
    columns = []
    for name, column in zip(table.column_names, table.columns):
        as_float = _to_float(column)
        keep_text = name not in canonical and as_float.null_count > column.null_count
        columns.append(column if keep_text else as_float)
    return pa.table(columns, names=table.column_names)


def read_data(text: str, spec: ProcedureSpec) -> DataTable:
    """Parse the label row and data rows; a fast all-float read first, a per-cell fallback when it fails."""
    label_line, _, body = text.partition("\n")
    labels = next(csv.reader([label_line.strip("\r\n")]), [])
    names, unmapped = column_names(labels, spec)
    data = body.encode("utf-8")
    if not data.strip():
        table = pa.table({name: pa.array([], pa.float64()) for name in names})
        return DataTable(table, 0, 0, tuple(unmapped), _missing(names, spec))
    try:
        table, skipped = _read(data, names, dict.fromkeys(names, pa.float64()))
    except pa.ArrowInvalid:
        table, skipped = _read(data, names, dict.fromkeys(names, pa.string()))
        table = _type_text_columns(table, set(spec.columns))
    null_cells = sum(column.null_count for column in table.columns)
    return DataTable(table, null_cells, skipped, tuple(unmapped), _missing(names, spec))


def _missing(names: list[str], spec: ProcedureSpec) -> tuple[str, ...]:
    return tuple(column for column in spec.columns if column not in names)
