"""Split staged IV runs into sweep segments: one Parquet per segment, one manifest row per run.

A segment file holds the run's data columns, its run columns (start_dt, source_file, chip_number, …)
and the segment columns; the header parameters stay in the staged file only (each column costs
~30 µs per file to write, and a segment file with all 34 columns cost ~1.1 ms).
"""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import reuse
from .atomic import Written, file_crc
from .io import write_parquet
from .segment import SEGMENT_TYPES, Segment, find_segments
from .stage import DATA_COLUMNS_KEY, PARTITION_KEYS, RUN_COLUMNS, StagedRun, constant_column, is_disk_full

SEGMENT_DATASET = "iv_segments"
RECORD = "_segments.json"
MANIFEST_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("date", pa.string()),
        ("source_file", pa.string()),
        ("status", pa.string()),  # ok | no_segments | reject
        ("reason", pa.string()),
        ("rows", pa.int64()),
        ("n_segments", pa.int64()),
        ("complete", pa.bool_()),  # all four segment types present: the sweep was not aborted
        ("segment_types", pa.list_(pa.string())),
        ("segment_points", pa.list_(pa.int64())),
        ("segment_v_start", pa.list_(pa.float64())),
        ("segment_v_end", pa.list_(pa.float64())),
        ("output", pa.string()),  # the run's folder of segment=<k> partitions
        ("segment_bytes", pa.list_(pa.int64())),  # size of each segment=<k>/part-000.parquet, in order
    ]
)
SEGMENT_RUN_COLUMNS = tuple(name for name in RUN_COLUMNS if name not in PARTITION_KEYS)
# A batch's segmented IV rows in one file, `_points/date=<d>/batch=<b>.parquet`: what the analysis and
# the figures read (one file per batch instead of ~4 per run: 500 files a day cost ~0.25 s to open).
POINTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("chip_group", pa.string()),
        ("chip_number", pa.int64()),
        ("segment_id", pa.int64()),
        ("segment_type", pa.string()),
        ("vsd_V", pa.float64()),
        ("i_A", pa.float64()),
    ]
)


@dataclass(frozen=True)
class SegmentSettings:
    out_root: Path  # results/03_intermediate
    voltage_column: str
    dv_threshold: float
    min_segment_points: int
    reuse: bool = True  # False in a forced job: every run is segmented again

    @functools.cached_property
    def fingerprint(self) -> str:
        """What, besides the staged file's bytes, decides a run's segments."""
        return repr((self.out_root, self.voltage_column, self.dv_threshold, self.min_segment_points))


def segment_table(run: pa.Table, segment: Segment) -> pa.Table:
    """The run's rows of one segment plus the columns that say which segment they are."""
    rows = run.slice(segment.start, segment.stop - segment.start)
    n = rows.num_rows
    extra = {
        "segment_id": constant_column(segment.segment_id, pa.int64(), n),
        "segment_type": constant_column(segment.segment_type, pa.string(), n),
        "segment_v_start": constant_column(segment.v_start, pa.float64(), n),
        "segment_v_end": constant_column(segment.v_end, pa.float64(), n),
        "segment_direction": constant_column(segment.direction, pa.string(), n),
        "point_in_segment": pa.array(np.arange(n, dtype=np.int64)),
    }
    for name, column in extra.items():
        rows = rows.append_column(name, column)
    return rows


def replace_run_segments(run_folder: Path, tables: list[pa.Table]) -> list[Written]:
    """Write segment=<k> files, then drop segment folders left from an earlier, longer segmentation."""
    written = [write_parquet(table, run_folder / f"segment={segment_id}" / "part-000.parquet") for segment_id, table in enumerate(tables)]
    kept = {RECORD} | {w.path.parent.name for w in written}
    if run_folder.is_dir():
        for stale in run_folder.iterdir():
            if stale.name not in kept:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return written


def segment_column_names(staged: pa.Schema) -> list[str]:
    """Data and run columns of a staged run: not the header parameters."""
    data = json.loads((staged.metadata or {}).get(DATA_COLUMNS_KEY.encode(), b"null"))
    if data is None:  # staged by an older version: everything before the run columns is data
        data = staged.names[: staged.names.index(SEGMENT_RUN_COLUMNS[0])]
    return [*data, *(name for name in SEGMENT_RUN_COLUMNS if name not in data)]


def segment_columns(run: pa.Table) -> pa.Table:
    """The staged table in memory cut to the segment files' columns, without the raw header."""
    return run.select(segment_column_names(run.schema)).replace_schema_metadata(None)


def read_staged(path: Path) -> pa.Table:
    """The staged file's data and run columns only (the parameters are not read)."""
    with pq.ParquetFile(path) as parquet:
        names = segment_column_names(parquet.schema_arrow)
        return parquet.read(columns=names, use_threads=False).replace_schema_metadata(None)


def run_points(run_id: str, segments: list[pa.Table], voltage_column: str) -> pa.Table:
    """A run's segment rows in the `_points` layout (the swept voltage as vsd_V, null current if none)."""
    if not segments:
        return POINTS_SCHEMA.empty_table()
    rows = pa.concat_tables(segments, promote_options="permissive")
    n = rows.num_rows

    def column(name: str, type_: pa.DataType) -> pa.ChunkedArray | pa.Array:
        return rows[name] if name in rows.column_names else pa.nulls(n, type_)

    columns = [
        constant_column(run_id, pa.string(), n),
        column("chip_group", pa.string()),
        column("chip_number", pa.int64()),
        rows["segment_id"],
        rows["segment_type"],
        rows[voltage_column],
        column("i_A", pa.float64()),
    ]
    return pa.table(columns, names=POINTS_SCHEMA.names).cast(POINTS_SCHEMA)


def read_segments(written: list[Written]) -> list[pa.Table]:
    """Segment files written before (a reused run), for its points."""
    columns = ["chip_group", "chip_number", "segment_id", "segment_type", "vsd_V", "i_A"]
    tables = []
    for output in written:
        with pq.ParquetFile(output.path) as parquet:
            present = [name for name in parquet.schema_arrow.names if name in columns or name not in SEGMENT_RUN_COLUMNS]
            tables.append(parquet.read(columns=present, use_threads=False))
    return tables


def segment_run(
    staged: dict[str, object],
    settings: SegmentSettings,
    run: pa.Table | None = None,
    staged_crc: str | None = None,
    points: list[pa.Table] | None = None,
) -> dict[str, object]:
    """Segment one staged IV run (a stage manifest row) and return its segment manifest row.

    `run` is the staged table when the caller still holds it (otherwise the staged file is read),
    `staged_crc` the staged file's CRC-32 when known (otherwise it is computed); the run's rows are
    appended to `points` when it is given."""
    row: dict[str, object] = {key: staged[key] for key in ("run_id", "date", "source_file")}
    row["status"] = "reject"
    run_folder = settings.out_root / SEGMENT_DATASET / "proc=IV" / f"date={staged['date']}" / f"run_id={staged['run_id']}"
    staged_path = Path(str(staged["output"]))
    try:
        staged_id = f"{staged['output_bytes']}:{staged_crc or file_crc(staged_path)}"
    except OSError as error:
        return row | {"reason": f"unreadable staged file: {error.strerror or error}"}
    record, record_key = run_folder / RECORD, reuse.key(settings.fingerprint, staged_id)
    if settings.reuse and (saved := reuse.load(record, record_key)):
        if points is not None:
            points.append(run_points(str(staged["run_id"]), read_segments(saved.outputs), settings.voltage_column))
        return saved.row  # segmented before from this very staged file with these settings, and still whole
    try:
        run = read_staged(staged_path) if run is None else segment_columns(run)
        row["rows"] = run.num_rows
        if settings.voltage_column not in run.column_names:
            raise ValueError(f"no voltage column {settings.voltage_column!r} in the staged run")
        voltage = pc.fill_null(run[settings.voltage_column], np.nan).to_numpy()
        segments = find_segments(voltage, settings.dv_threshold, settings.min_segment_points)
        tables = [segment_table(run, s) for s in segments]
        written = replace_run_segments(run_folder, tables)
        if points is not None:
            points.append(run_points(str(staged["run_id"]), tables, settings.voltage_column))
        row.update(
            status="ok" if segments else "no_segments",
            reason=None if segments else f"no segment of at least {settings.min_segment_points} points",
            n_segments=len(segments),
            complete=set(SEGMENT_TYPES) <= {s.segment_type for s in segments},
            segment_types=[s.segment_type for s in segments],
            segment_points=[s.stop - s.start for s in segments],
            segment_v_start=[s.v_start for s in segments],
            segment_v_end=[s.v_end for s in segments],
            output=str(run_folder) if segments else None,
            segment_bytes=[w.size for w in written],
        )
        if written:  # a run without segments has no folder (nothing to reuse: finding none is cheap)
            reuse.save(record, record_key, row, written)
    except Exception as error:  # noqa: BLE001 - one bad run must never stop the lab's run
        if isinstance(error, OSError) and is_disk_full(error):
            raise  # a full disk is not the run's fault: the job fails and the rerun segments it
        row["reason"] = f"{type(error).__name__}: {error}"
    return row


def segment_staged(staged: StagedRun, settings: SegmentSettings, points: list[pa.Table] | None = None) -> dict[str, object]:
    """Segment a run just staged: from its table in memory when it was staged fresh, else from its file."""
    return segment_run(staged.row, settings, staged.table, staged.written.crc if staged.written else None, points)


def manifest_table(rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)


def segment_runs(stage_manifest: pa.Table, settings: SegmentSettings) -> pa.Table:
    """Segment every staged IV run listed in a stage batch manifest, reading each staged file back."""
    staged = stage_manifest.filter(pc.and_(pc.equal(stage_manifest["proc"], "IV"), pc.equal(stage_manifest["status"], "ok")))
    return manifest_table([segment_run(row, settings) for row in staged.to_pylist()])
