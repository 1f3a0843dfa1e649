"""Stage raw PyMeasure CSVs: one typed Parquet per file, one manifest row per file whatever happens."""

from __future__ import annotations

import errno
import functools
import itertools
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import reuse
from .atomic import Written
from .header import HEADER_BYTES, RawFormatError, RawHeader, split_raw
from .identity import make_run_id, parse_start_time, resolve_date
from .io import write_parquet, write_parquet_blocks_atomic
from .rawfiles import NO_DATA_ROWS, OUTSIDE_ROOT, RESOURCE_FORK, escapes_root, is_resource_fork, unknown_procedure
from .schema import LabSchema, ProcedureSpec
from .table import LINES_KEPT, Damage, map_columns, read_blocks
from .values import Value, is_missing, parse_value

STAGE_DATASET = "raw_measurements"
# proc, date and run_id live in the Hive path only: repeating them inside the files makes pandas
# (dictionary partitions) or pyarrow (string partitions) refuse to merge the two schemas.
PARTITION_KEYS = ("proc", "date", "run_id")
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
        ("skipped_lines", pa.list_(pa.int64())),  # raw-file line numbers (1-based, header counted) of the first skipped rows
        ("null_lines", pa.list_(pa.int64())),  # ... and of the first rows with a null cell
        ("not_measured_cells", pa.int64()),  # cells the instrument wrote as `nan`: null, and not damage
        ("not_measured_columns", pa.list_(pa.string())),  # the columns written `nan` in every row (nothing connected)
        ("unmapped_columns", pa.list_(pa.string())),
        ("missing_columns", pa.list_(pa.string())),
        ("invalid_parameters", pa.list_(pa.string())),  # header values not of their type or beyond its range: null
        ("chip_group", pa.string()),
        ("chip_number", pa.int64()),
        ("sample", pa.string()),
        ("procedure_version", pa.string()),
        ("with_light", pa.bool_()),
        ("laser_toggle", pa.bool_()),  # the header's Laser toggle (null when the procedure has none)
        ("wavelength_nm", pa.float64()),
        ("laser_voltage_V", pa.float64()),
        ("size_bytes", pa.int64()),
        ("output", pa.string()),
        ("output_bytes", pa.int64()),  # size of the staged Parquet file: an os.stat verifies it is whole
        ("duplicate_of", pa.string()),  # the first raw file (sorted) with the same bytes; set when the batches are merged
    ]
)
# The Arrow type of each parameter type of the procedure schema.
ARROW_TYPES: dict[str, pa.DataType] = {
    "float": pa.float64(),
    "float_no_unit": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "str": pa.string(),
    "datetime": pa.timestamp("us", tz="UTC"),
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DATA_COLUMNS_KEY = "nanolab.data_columns"  # Parquet metadata: which columns are measurements (JSON list)


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(error: OSError) -> bool:
    """ENOSPC/EDQUOT, also when pyarrow reports it without setting errno."""
    return error.errno in DISK_FULL or "No space left on device" in str(error) or "Disk quota exceeded" in str(error)


@dataclass(frozen=True)
class StageSettings:
    raw_root: Path
    out_root: Path  # results/02_stage
    schema: LabSchema
    timezone: str
    engine: reuse.Engine = reuse.IN_PROCESS  # the staging code's fingerprint; forced: every run staged from its raw bytes

    @functools.cached_property
    def fingerprint(self) -> str:
        """What, besides a raw file's bytes and path, decides its staged output (computed once: the
        schema's repr cost ~2 ms per file when built for each)."""
        return f"{self.timezone}\x00{self.schema!r}"


def relative_source(path: Path, raw_root: Path) -> str:
    """Path relative to raw_root in POSIX form: the run's identity does not depend on where the tree lives."""
    return PurePosixPath(Path(os.path.abspath(path)).relative_to(os.path.abspath(raw_root))).as_posix()


def storable(value: Value, type_: pa.DataType) -> bool:
    """Whether the value fits its Arrow column: `Chip number: 1e99` is beyond int64 (pa.array raises
    OverflowError for the whole batch's manifest), and `VG: inf V` or `1e400 V` is no setting at all."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and type_ == pa.int64():
        return INT64_MIN <= value <= INT64_MAX
    return True


def typed_parameters(header: RawHeader, spec: ProcedureSpec) -> tuple[dict[str, tuple[object, pa.DataType]], list[str]]:
    """Header parameters and metadata typed per schema, unknown ones kept as text under their own name;
    and the header names whose value is not of its type or beyond its range (stored as null)."""
    typed: dict[str, tuple[object, pa.DataType]] = {}
    invalid: list[str] = []
    for key, text in {**header.parameters, **header.metadata}.items():
        if key == "Start time":
            continue
        parameter = spec.parameter(key)
        if parameter is None:
            typed.setdefault(key, (None if text in ("", "None") else text, pa.string()))
            continue
        type_ = ARROW_TYPES[parameter.type]
        value = parse_value(text, parameter.type)
        if value is None and not is_missing(text) or not storable(value, type_):
            invalid.append(key)
            value = None
        typed[parameter.name] = (value, type_)
    return typed, invalid


def run_fields(parameters: dict[str, tuple[object, pa.DataType]]) -> dict[str, object]:
    """Run columns the lab filters on, derived from typed parameters (null when a procedure lacks them)."""
    value = {name: typed[0] for name, typed in parameters.items()}
    laser_voltage = value.get("laser_voltage_V")
    return {
        "with_light": laser_voltage is not None and laser_voltage != 0,
        "laser_toggle": value.get("laser_toggle"),
        "wavelength_nm": value.get("wavelength_nm"),
        "laser_voltage_V": laser_voltage,
        "chip_group": value.get("chip_group"),
        "chip_number": value.get("chip_number"),
        "sample": value.get("sample"),
        "procedure_version": value.get("procedure_version"),
    }


def constant_column(value: object, type_: pa.DataType, rows: int) -> pa.Array:
    """One value repeated. `pa.repeat(pa.scalar(value, type_))` costs ~230 µs for a float64 and ~140 µs
    for a timestamp at 1,000 rows (converting the Python value), numpy 3 µs, a scalar taken from an array ~15 µs."""
    if value is None:
        return pa.nulls(rows, type_)
    if type_ == pa.float64():
        return pa.array(np.full(rows, value, dtype=np.float64))
    return pa.repeat(pa.array([value], type_)[0], rows)


def run_constants(row: dict[str, object], parameters: dict[str, tuple[object, pa.DataType]]) -> dict[str, tuple[object, pa.DataType]]:
    """Run columns then parameters, each with its Arrow type: the per-file columns after the data."""
    constants = {name: (row.get(name), MANIFEST_SCHEMA.field(name).type) for name in RUN_COLUMNS if name not in PARTITION_KEYS}
    for name, typed in parameters.items():
        constants.setdefault(name, typed)
    return constants


def with_constants(blocks: Iterator[pa.Table], constants: dict[str, tuple[object, pa.DataType]], metadata: dict) -> Iterator[pa.Table]:
    """Data columns, then run columns and parameters repeated per row: each Parquet file describes itself."""
    for block in blocks:
        columns = dict(zip(block.column_names, block.columns))
        for name, (value, type_) in constants.items():
            columns.setdefault(name, constant_column(value, type_, block.num_rows))
        yield pa.table(columns).replace_schema_metadata(metadata)


@dataclass(frozen=True)
class StagedRun:
    """A raw file's manifest row, and what segmentation needs without reading the staged file back."""

    row: dict[str, object]
    table: pa.Table | None = None  # the staged table, when it was written fresh in one piece
    written: Written | None = None  # the staged file (fresh or reused) as it is on disk
    data: bytes | None = None  # a reused staged file's bytes, read once to check its CRC: segmentation parses them

    @property
    def reused(self) -> bool:
        return self.data is not None


def stage_file(path: Path, settings: StageSettings, records: reuse.Records | None = None) -> dict[str, object]:
    """Stage one raw file and return its manifest row."""
    return stage_run(path, settings, records).row


def output_path(settings: StageSettings, proc: str, day: object, run_id: str) -> Path:
    return settings.out_root / STAGE_DATASET / f"proc={proc}" / f"date={day}" / f"run_id={run_id}" / "part-000.parquet"


def stage_run(path: Path, settings: StageSettings, records: reuse.Records | None = None) -> StagedRun:
    """Stage one raw file; every failure becomes a reject row with a readable reason. With `records`, a
    run staged before from the same bytes keeps its file, and a run staged now is entered there."""
    source = relative_source(path, settings.raw_root)
    row: dict[str, object] = {"source_file": source, "status": "reject"}
    if is_resource_fork(path.name):
        return StagedRun(row | {"status": "skipped", "reason": RESOURCE_FORK})
    try:
        if escapes_root(path, settings.raw_root):
            raise RawFormatError(OUTSIDE_ROOT)
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            day, origin = resolve_date(None, source, stat.st_mtime, settings.timezone)  # until the header says
            row.update(size_bytes=stat.st_size, date=day.isoformat(), date_origin=origin)
            header, encoding, label_offset = split_raw(head := handle.read(HEADER_BYTES))
            start = parse_start_time(header.start_time_text)
            day, origin = resolve_date(start, source, stat.st_mtime, settings.timezone)
            run_id = make_run_id(source, start)
            row.update(proc=header.procedure, date=day.isoformat(), date_origin=origin, run_id=run_id, start_dt=start)
            spec = settings.schema.procedure(header.procedure)
            if spec is None:
                raise RawFormatError(unknown_procedure(header.procedure))
            output = output_path(settings, spec.name, day, run_id)
            record_key = settings.engine.key(settings.fingerprint, source, reuse.content_id(path))
            # staged before from these very bytes; whole if its bytes, read once, have the recorded CRC
            saved = records.load(source, record_key, whole=reuse.has_size) if records is not None and settings.engine.trusts() else None
            if saved and (data := reuse.read_if_whole(saved.outputs[0])) is not None:
                return StagedRun(saved.row | {"start_dt": start}, written=saved.outputs[0], data=data)
            # staged now: columns and parameters typed (a reused run's saved row has what they give)
            handle.seek(label_offset)
            columns = map_columns(read_line(handle).decode(encoding), spec)
            parameters, invalid = typed_parameters(header, spec)
            row.update(run_fields(parameters), unmapped_columns=columns.unmapped, missing_columns=columns.missing, invalid_parameters=invalid)
            damage = Damage()
            metadata = _raw_header(header) | {DATA_COLUMNS_KEY: json.dumps(columns.names)}
            blocks = with_constants(read_blocks(handle, columns, spec, encoding, damage), run_constants(row, parameters), metadata)
            table, written = write_blocks(blocks, output)
        if written is None:
            raise RawFormatError(no_rows_reason(damage, len(columns.names)))
        rows = table.num_rows if table is not None else written_rows(written)
        row.update(rows=rows, null_cells=damage.null_cells, skipped_rows=damage.skipped_rows, output=str(output), output_bytes=written.size)
        row.update(not_measured_cells=sum(damage.not_measured.values()), not_measured_columns=all_not_measured(damage, rows))
        row.update(damaged_lines(damage, head, label_offset))
        row.update(status="ok", reason=None)
        if records is not None:
            records.save(source, record_key, row, [written])
        return StagedRun(row, table, written)
    except RawFormatError as error:
        row["reason"] = str(error)
    except OSError as error:
        if is_disk_full(error):
            raise  # a full disk is not the raw file's fault: the job fails and the rerun stages it
        row["reason"] = f"unreadable: {error.strerror or error}"
    except Exception as error:  # noqa: BLE001 - one bad file must never stop the lab's run
        row["reason"] = f"{type(error).__name__}: {error}"
    if row.get("date_origin") == "mtime":  # only a file that stages is dated by its mtime: a reject makes no day
        row.update(date=None, date_origin=None)
    return StagedRun(row)


def read_line(handle: BinaryIO) -> bytes:
    """The line at the handle's position, ended by \n, \r\n or a lone \r (as pyarrow's CSV reader and
    the header's splitlines() end lines); the handle is left just after it."""
    start = handle.tell()
    line = handle.readline()
    first = line.splitlines(keepends=True)[0] if line else line
    if len(first) < len(line):  # a file with lone \r line ends: readline() read all of it
        handle.seek(start + len(first))
    return first


def damaged_lines(damage: Damage, head: bytes, label_offset: int) -> dict[str, list[int]]:
    """The raw file's line numbers of the first skipped rows and rows with null cells (none for a clean file)."""
    if not (damage.skipped_at or damage.null_at):
        return {"skipped_lines": [], "null_lines": []}
    label_line = len(head[:label_offset].splitlines()) + 1
    return {"skipped_lines": [label_line + n for n in damage.skipped_at[:LINES_KEPT]], "null_lines": [label_line + n for n in damage.null_at]}


def all_not_measured(damage: Damage, rows: int) -> list[str]:
    """The columns the instrument wrote `nan` in every row: not measured (e.g. a temperature input with nothing connected)."""
    return [name for name, cells in damage.not_measured.items() if cells == rows]


def no_rows_reason(damage: Damage, labels: int) -> str:
    if damage.skipped_rows:
        return f"no data rows with as many cells as the label row ({labels}): {damage.skipped_rows} rows with another number skipped"
    return NO_DATA_ROWS


def write_blocks(blocks: Iterator[pa.Table], output: Path) -> tuple[pa.Table | None, Written | None]:
    """A table of one block is written from memory and handed back (segmentation needs no re-read);
    a larger one is streamed to disk block by block (bounded memory) and not kept."""
    blocks = (block for block in blocks if block.num_rows)
    first = next(blocks, None)
    if first is None:
        return None, None
    second = next(blocks, None)
    if second is None:
        return first, write_parquet(first, output)
    return None, write_parquet_blocks_atomic(itertools.chain([first, second], blocks), output)


def written_rows(written: Written) -> int:
    return pq.read_metadata(written.path).num_rows


def _raw_header(header: RawHeader) -> dict[str, str]:
    document = {"procedure": header.procedure, "parameters": header.parameters, "metadata": header.metadata}
    return {"nanolab.raw_header": json.dumps(document)}


def manifest_table(rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)


def stage_files(paths: list[Path], settings: StageSettings, records: reuse.Records | None = None) -> pa.Table:
    """Stage a batch of files; the returned table has exactly one manifest row per input path."""
    return manifest_table([stage_file(path, settings, records) for path in paths])
