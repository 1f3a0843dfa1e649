"""Stage raw PyMeasure CSVs: one typed Parquet per file, one manifest row per file whatever happens."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa

from .catalog import escapes_root, is_resource_fork
from .header import RawFormatError, RawHeader, decode_raw, parse_header
from .identity import make_run_id, parse_start_time, resolve_date
from .io import write_parquet_atomic
from .schema import LabSchema, ProcedureSpec
from .table import read_data
from .values import ARROW_TYPES, parse_value

STAGE_DATASET = "raw_measurements"
RUN_COLUMNS = (
    "run_id", "proc", "start_dt", "date_origin", "source_file", "with_light", "wavelength_nm",
    "laser_voltage_V", "chip_group", "chip_number", "sample", "procedure_version",
)  # fmt: skip
MANIFEST_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("status", pa.string()),  # ok | reject | skipped (macOS resource forks)
        ("reason", pa.string()),
        ("proc", pa.string()),
        ("date", pa.string()),
        ("date_origin", pa.string()),
        ("run_id", pa.string()),
        ("start_dt", pa.timestamp("us", tz="UTC")),
        ("rows", pa.int64()),
        ("null_cells", pa.int64()),
        ("skipped_rows", pa.int64()),
        ("unmapped_columns", pa.list_(pa.string())),
        ("missing_columns", pa.list_(pa.string())),
        ("chip_group", pa.string()),
        ("chip_number", pa.int64()),
        ("sample", pa.string()),
        ("procedure_version", pa.string()),
        ("with_light", pa.bool_()),
        ("wavelength_nm", pa.float64()),
        ("laser_voltage_V", pa.float64()),
        ("size_bytes", pa.int64()),
        ("output", pa.string()),
    ]
)


@dataclass(frozen=True)
class StageSettings:
    raw_root: Path
    out_root: Path  # results/02_stage
    schema: LabSchema
    timezone: str


def relative_source(path: Path, raw_root: Path) -> str:
    """Path relative to raw_root in POSIX form: the run's identity does not depend on where the tree lives."""
    return PurePosixPath(Path(os.path.abspath(path)).relative_to(os.path.abspath(raw_root))).as_posix()


def typed_parameters(header: RawHeader, spec: ProcedureSpec) -> dict[str, tuple[object, pa.DataType]]:
    """Header parameters and metadata typed per schema; unknown ones kept as text under their own name."""
    typed: dict[str, tuple[object, pa.DataType]] = {}
    for key, text in {**header.parameters, **header.metadata}.items():
        if key == "Start time":
            continue
        parameter = spec.parameter(key)
        if parameter is None:
            typed.setdefault(key, (None if text in ("", "None") else text, pa.string()))
        else:
            typed[parameter.name] = (parse_value(text, parameter.type), ARROW_TYPES[parameter.type])
    return typed


def run_fields(parameters: dict[str, tuple[object, pa.DataType]]) -> dict[str, object]:
    """Run columns the lab filters on, derived from typed parameters (null when a procedure lacks them)."""
    value = {name: typed[0] for name, typed in parameters.items()}
    laser_voltage = value.get("laser_voltage_V")
    return {
        "with_light": laser_voltage is not None and laser_voltage != 0,
        "wavelength_nm": value.get("wavelength_nm"),
        "laser_voltage_V": laser_voltage,
        "chip_group": value.get("chip_group"),
        "chip_number": value.get("chip_number"),
        "sample": value.get("sample"),
        "procedure_version": value.get("procedure_version"),
    }


def _constant(value: object, type_: pa.DataType, rows: int) -> pa.Array:
    return pa.array([value], type_).take(np.zeros(rows, dtype=np.int64))


def stage_file(path: Path, settings: StageSettings) -> dict[str, object]:
    """Stage one raw file and return its manifest row; every failure becomes a reject with a readable reason."""
    source = relative_source(path, settings.raw_root)
    row: dict[str, object] = {"source_file": source, "status": "reject"}
    if is_resource_fork(path.name):
        return row | {"status": "skipped", "reason": "macOS resource fork (._ file), not a measurement"}
    try:
        if escapes_root(path, settings.raw_root):
            raise RawFormatError("symlink to a file outside raw_root: not read")
        stat = path.stat()
        day, origin = resolve_date(None, source, stat.st_mtime, settings.timezone)  # until the header says
        row.update(size_bytes=stat.st_size, date=day.isoformat(), date_origin=origin)
        text = decode_raw(path.read_bytes())
        header = parse_header(text)
        start = parse_start_time(header.start_time_text)
        day, origin = resolve_date(start, source, stat.st_mtime, settings.timezone)
        run_id = make_run_id(source, start)
        row.update(proc=header.procedure, date=day.isoformat(), date_origin=origin, run_id=run_id, start_dt=start)
        spec = settings.schema.procedure(header.procedure)
        if spec is None:
            raise RawFormatError(f"unknown procedure {header.procedure!r} (not in the procedure schema)")
        data = read_data(text[header.data_offset :], spec)
        if data.table.num_rows == 0:
            raise RawFormatError("header but no data rows")
        parameters = typed_parameters(header, spec)
        runs = run_fields(parameters)
        row.update(runs, rows=data.table.num_rows, null_cells=data.null_cells, skipped_rows=data.skipped_rows)
        row.update(unmapped_columns=list(data.unmapped), missing_columns=list(data.missing))
        table = build_run_table(data.table, row, parameters, header)
        output = settings.out_root / STAGE_DATASET / f"proc={spec.name}" / f"date={day}" / f"run_id={run_id}"
        row["output"] = str(write_parquet_atomic(table, output / "part-000.parquet"))
        row.update(status="ok", reason=None)
    except RawFormatError as error:
        row["reason"] = str(error)
    except OSError as error:
        row["reason"] = f"unreadable: {error.strerror or error}"
    except Exception as error:  # noqa: BLE001 - one bad file must never stop the lab's run
        row["reason"] = f"{type(error).__name__}: {error}"
    return row


def build_run_table(
    data: pa.Table, row: dict[str, object], parameters: dict[str, tuple[object, pa.DataType]], header: RawHeader
) -> pa.Table:
    """Data columns, then run columns, then parameters: each Parquet file describes itself."""
    rows = data.num_rows
    run_types = MANIFEST_SCHEMA
    columns = dict(zip(data.column_names, data.columns))
    for name in RUN_COLUMNS:
        columns[name] = _constant(row.get(name), run_types.field(name).type, rows)
    for name, (value, type_) in parameters.items():
        columns.setdefault(name, _constant(value, type_, rows))
    raw_header = {"procedure": header.procedure, "parameters": header.parameters, "metadata": header.metadata}
    return pa.table(columns).replace_schema_metadata({"nanolab.raw_header": json.dumps(raw_header)})


def stage_files(paths: list[Path], settings: StageSettings) -> pa.Table:
    """Stage a batch of files; the returned table has exactly one manifest row per input path."""
    return pa.Table.from_pylist([stage_file(path, settings) for path in paths], schema=MANIFEST_SCHEMA)
