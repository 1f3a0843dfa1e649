"""Split staged IV runs into sweep segments: one Parquet per segment, one manifest row per run.

A segment file holds the run's data columns and the segment columns of `SEGMENT_COLUMNS`, as a star
layout's fact table: the run columns (start_dt, source_file, chip_number, …) live once per run in the
staged file and the stage manifest, the per-segment facts (voltage range, direction) in the segment
manifest, and proc, date, run_id and segment in the path; `nanolab.read.load_segments` joins them back.
Each column costs ~30 µs per file to write: a segment file with the run columns cost ~0.72 ms, without
them ~0.33 ms (docs/performance-notes.md).
"""

from __future__ import annotations

import json
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import reuse
from .atomic import Written
from .io import write_parquet
from .segment import SEGMENT_TYPES, Segment, find_segments
from .stage import DATA_COLUMNS_KEY, PARTITION_KEYS, RUN_COLUMNS, StagedRun, constant_column, is_disk_full

SEGMENT_DATASET = "iv_segments"
MANIFEST_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("date", pa.string()),
        ("source_file", pa.string()),
        ("start_dt", pa.timestamp("us", tz="UTC")),  # the run's start time: runs are numbered in measurement order
        ("status", pa.string()),  # ok | no_segments | reject
        ("reason", pa.string()),
        ("rows", pa.int64()),
        ("n_segments", pa.int64()),
        ("complete", pa.bool_()),  # all four segment types present: the sweep was not aborted
        ("segment_types", pa.list_(pa.string())),
        ("segment_points", pa.list_(pa.int64())),
        ("segment_v_start", pa.list_(pa.float64())),
        ("segment_v_end", pa.list_(pa.float64())),
        ("segment_directions", pa.list_(pa.string())),  # increasing | decreasing | unknown
        ("output", pa.string()),  # the run's folder of segment=<k> partitions
        ("segment_bytes", pa.list_(pa.int64())),  # size of each segment=<k>/part-000.parquet, in order
    ]
)
SEGMENT_RUN_COLUMNS = tuple(name for name in RUN_COLUMNS if name not in PARTITION_KEYS)  # from the stage manifest
# Inside each segment file, after the data columns: what a user filters on, and the row's place in its
# segment (a per-row fact no manifest holds; 30 µs per file). The per-segment constants voltage range and
# direction (90 µs per file) are the segment manifest's lists; load_segments adds them back.
SEGMENT_COLUMNS = ("segment_id", "segment_type", "point_in_segment")
SEGMENT_FACTS = {"segment_v_start": "segment_v_start", "segment_v_end": "segment_v_end", "segment_direction": "segment_directions"}
POINT_COLUMNS = ("chip_group", "chip_number", "i_A")  # read with the voltage column for the `_points` file
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
    engine: reuse.Engine = reuse.IN_PROCESS  # the segmentation code's fingerprint; forced: every run segmented again


def segment_table(run: pa.Table, segment: Segment) -> pa.Table:
    """The run's rows of one segment (its data columns) plus the columns that say which segment they are."""
    rows = run.slice(segment.start, segment.stop - segment.start)
    n = rows.num_rows
    extra = {
        "segment_id": constant_column(segment.segment_id, pa.int64(), n),
        "segment_type": constant_column(segment.segment_type, pa.string(), n),
        "point_in_segment": pa.array(np.arange(n, dtype=np.int64)),
    }
    for name, column in extra.items():
        rows = rows.append_column(name, column)
    return rows


def replace_run_segments(run_folder: Path, tables: list[pa.Table]) -> list[Written]:
    """Write segment=<k> files, then drop segment folders left from an earlier, longer segmentation."""
    written = [write_parquet(table, run_folder / f"segment={segment_id}" / "part-000.parquet") for segment_id, table in enumerate(tables)]
    kept = {w.path.parent.name for w in written}
    if run_folder.is_dir():
        for stale in run_folder.iterdir():
            if stale.name not in kept:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return written


def data_column_names(staged: pa.Schema) -> list[str]:
    """The data columns of a staged run: not its run columns, not the header parameters."""
    data = json.loads((staged.metadata or {}).get(DATA_COLUMNS_KEY.encode(), b"null"))
    if data is None:  # staged by an older version: everything before the run columns is data
        data = staged.names[: staged.names.index(SEGMENT_RUN_COLUMNS[0])]
    return list(data)


class StagedColumns:
    """A staged run's columns, read only as segmentation asks for them: from the table still in memory
    after staging, or parsed from the staged file's bytes (read once, and their CRC is the run's identity)."""

    def __init__(self, table: pa.Table | None, data: bytes | None) -> None:
        self.table = table
        self.parquet = None if table is not None else pq.ParquetFile(pa.BufferReader(data))
        self.schema = table.schema if table is not None else self.parquet.schema_arrow
        self.data_names = data_column_names(self.schema)
        self.rows = table.num_rows if table is not None else self.parquet.metadata.num_rows

    def read(self, names: list[str]) -> pa.Table:
        if self.table is not None:
            return self.table.select(names).replace_schema_metadata(None)
        return self.parquet.read(columns=names, use_threads=False).replace_schema_metadata(None)


def run_points(run_id: str, run: pa.Table, segments: list[Segment], voltage_column: str) -> pa.Table:
    """A run's segment rows in the `_points` layout (the swept voltage as vsd_V, null current if none),
    from the run's columns and its segments: the same for a run segmented now or kept from before."""
    if not segments:
        return POINTS_SCHEMA.empty_table()
    run = run.select([name for name in run.column_names if name in {voltage_column, *POINT_COLUMNS}])
    rows = pa.concat_tables([run.slice(s.start, s.stop - s.start) for s in segments])
    n = rows.num_rows
    of_segment = np.repeat(np.arange(len(segments)), [s.stop - s.start for s in segments])

    def column(name: str, type_: pa.DataType) -> pa.ChunkedArray | pa.Array:
        return rows[name] if name in rows.column_names else pa.nulls(n, type_)

    columns = [
        constant_column(run_id, pa.string(), n),
        column("chip_group", pa.string()),
        column("chip_number", pa.int64()),
        pa.array(np.array([s.segment_id for s in segments], dtype=np.int64)[of_segment]),
        pa.array([s.segment_type for s in segments], pa.string()).take(of_segment),
        rows[voltage_column],
        column("i_A", pa.float64()),
    ]
    return pa.table(columns, names=POINTS_SCHEMA.names).cast(POINTS_SCHEMA)


def segments_key(engine: reuse.Engine, run_folder: Path, staged_id: str, segments: list[Segment]) -> str:
    """What decides a run's segment files and manifest row: where they are, the staged file's bytes and
    the segments found in them, not the settings that found them (a changed setting that finds the same
    segments rewrites nothing)."""
    return engine.key(str(run_folder), staged_id, repr(segments))


@dataclass(frozen=True)
class SegmentedRun:
    row: dict[str, object]  # the run's segment manifest row
    reused: bool = False  # its segment files were on disk already, from the same staged bytes and segments


def segment_run(
    staged: dict[str, object],
    settings: SegmentSettings,
    run: pa.Table | None = None,
    staged_crc: str | None = None,
    points: list[pa.Table] | None = None,
    staged_bytes: bytes | None = None,
    records: reuse.Records | None = None,
) -> SegmentedRun:
    """Segment one staged IV run (a stage manifest row) and return its segment manifest row.

    `run` is the staged table when the caller still holds it, `staged_bytes` the staged file's bytes
    when the caller read them (otherwise the file is read, once), `staged_crc` the CRC-32 of that file
    when the caller knows it. The run's rows are appended to `points` when it is given. With `records`,
    segment files already on disk from the same staged bytes with the same segments are kept."""
    row: dict[str, object] = {key: staged.get(key) for key in ("run_id", "date", "source_file", "start_dt")}
    row["status"] = "reject"
    run_folder = settings.out_root / SEGMENT_DATASET / "proc=IV" / f"date={staged['date']}" / f"run_id={staged['run_id']}"
    try:
        if run is None and staged_bytes is None:
            staged_bytes, staged_crc = Path(str(staged["output"])).read_bytes(), None  # the bytes read name the file
    except OSError as error:
        return SegmentedRun(row | {"reason": f"unreadable staged file: {error.strerror or error}"})
    try:
        crc = staged_crc or f"{zlib.crc32(staged_bytes):08x}"
        source = StagedColumns(run if staged_bytes is None else None, staged_bytes)
        row["rows"] = source.rows
        if settings.voltage_column not in source.data_names:
            raise ValueError(f"no voltage column {settings.voltage_column!r} in the staged run")
        narrow = source.read([name for name in source.schema.names if name in {settings.voltage_column, *POINT_COLUMNS}])
        voltage = pc.fill_null(narrow[settings.voltage_column], np.nan).to_numpy()
        segments = find_segments(voltage, settings.dv_threshold, settings.min_segment_points)
        name, record_key = str(staged["source_file"]), segments_key(settings.engine, run_folder, f"{staged['output_bytes']}:{crc}", segments)
        if records is not None and settings.engine.trusts() and segments and (saved := records.load(name, record_key)):
            if points is not None:
                points.append(run_points(str(staged["run_id"]), narrow, segments, settings.voltage_column))
            # the record keeps the start time as text: the staged row's own is the typed one
            return SegmentedRun(saved.row | {"start_dt": row["start_dt"]}, reused=True)
        columns = source.read(source.data_names)
        written = replace_run_segments(run_folder, [segment_table(columns, s) for s in segments])
        if points is not None:
            points.append(run_points(str(staged["run_id"]), narrow, segments, settings.voltage_column))
        row.update(
            status="ok" if segments else "no_segments",
            reason=None if segments else f"no segment of at least {settings.min_segment_points} points",
            n_segments=len(segments),
            complete=set(SEGMENT_TYPES) <= {s.segment_type for s in segments},
            segment_types=[s.segment_type for s in segments],
            segment_points=[s.stop - s.start for s in segments],
            segment_v_start=[s.v_start for s in segments],
            segment_v_end=[s.v_end for s in segments],
            segment_directions=[s.direction for s in segments],
            output=str(run_folder) if segments else None,
            segment_bytes=[w.size for w in written],
        )
        if written and records is not None:  # a run without segments has no folder (nothing to reuse: finding none is cheap)
            records.save(name, record_key, row, written)
    except Exception as error:  # noqa: BLE001 - one bad run must never stop the lab's run
        if isinstance(error, OSError) and is_disk_full(error):
            raise  # a full disk is not the run's fault: the job fails and the rerun segments it
        row["reason"] = f"{type(error).__name__}: {error}"
    return SegmentedRun(row)


def segment_staged(
    staged: StagedRun, settings: SegmentSettings, points: list[pa.Table] | None = None, records: reuse.Records | None = None
) -> SegmentedRun:
    """Segment a run just staged: from its table in memory when it was staged fresh, else from its bytes."""
    crc = staged.written.crc if staged.written else None
    return segment_run(staged.row, settings, staged.table, crc, points, staged.data, records)


def manifest_table(rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)


def segment_runs(stage_manifest: pa.Table, settings: SegmentSettings, records: reuse.Records | None = None) -> pa.Table:
    """Segment every staged IV run listed in a stage batch manifest, reading each staged file back."""
    staged = stage_manifest.filter(pc.and_(pc.equal(stage_manifest["proc"], "IV"), pc.equal(stage_manifest["status"], "ok")))
    return manifest_table([segment_run(row, settings, records=records).row for row in staged.to_pylist()])
