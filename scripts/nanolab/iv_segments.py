"""Split staged IV runs into sweep segments: one Parquet per segment, one manifest row per run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import reuse
from .io import read_parquet, write_parquet_atomic
from .segment import SEGMENT_TYPES, Segment, find_segments
from .stage import is_disk_full

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
        ("segment_bytes", pa.list_(pa.int64())),  # size of each segment=<k>/part-000.parquet as written
    ]
)


@dataclass(frozen=True)
class SegmentSettings:
    out_root: Path  # results/03_intermediate
    voltage_column: str
    dv_threshold: float
    min_segment_points: int


def segment_table(run: pa.Table, segment: Segment) -> pa.Table:
    """The run's rows of one segment plus the columns that say which segment they are."""
    rows = run.slice(segment.start, segment.stop - segment.start)
    n = rows.num_rows
    extra = {
        "segment_id": pa.array(np.full(n, segment.segment_id, dtype=np.int64)),
        "segment_type": pa.array([segment.segment_type] * n, pa.string()),
        "segment_v_start": pa.array(np.full(n, segment.v_start)),
        "segment_v_end": pa.array(np.full(n, segment.v_end)),
        "segment_direction": pa.array([segment.direction] * n, pa.string()),
        "point_in_segment": pa.array(np.arange(n, dtype=np.int64)),
    }
    for name, column in extra.items():
        rows = rows.append_column(name, column)
    return rows


def segment_file(run_folder: Path, segment_id: int) -> Path:
    return run_folder / f"segment={segment_id}" / "part-000.parquet"


def file_sizes(paths: list[Path]) -> list[int | None]:
    sizes: list[int | None] = []
    for path in paths:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            sizes.append(None)
    return sizes


def replace_run_segments(run_folder: Path, tables: list[pa.Table]) -> list[int]:
    """Write segment=<k> files, then drop segment folders left from an earlier, longer segmentation;
    returns the size of each file written."""
    written, sizes = {RECORD}, []
    for segment_id, table in enumerate(tables):
        path = write_parquet_atomic(table, segment_file(run_folder, segment_id))
        sizes.append(path.stat().st_size)
        written.add(path.parent.name)
    if run_folder.is_dir():
        for stale in run_folder.iterdir():
            if stale.name not in written:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return sizes


def segment_run(staged: dict[str, object], settings: SegmentSettings) -> dict[str, object]:
    """Segment one staged IV run (a stage manifest row) and return its segment manifest row."""
    row: dict[str, object] = {key: staged[key] for key in ("run_id", "date", "source_file")}
    row["status"] = "reject"
    run_folder = settings.out_root / SEGMENT_DATASET / "proc=IV" / f"date={staged['date']}" / f"run_id={staged['run_id']}"
    record, record_key = run_folder / RECORD, reuse.key(repr(settings), reuse.file_crc(Path(str(staged["output"]))))
    saved = reuse.load(record, record_key)
    if saved and file_sizes([segment_file(run_folder, k) for k in range(saved["n_segments"] or 0)]) == (saved.get("segment_bytes") or []):
        return saved  # segmented before from this very staged file with these settings, and every segment file still whole
    try:
        run = read_parquet(str(staged["output"]))
        row["rows"] = run.num_rows
        if settings.voltage_column not in run.column_names:
            raise ValueError(f"no voltage column {settings.voltage_column!r} in the staged run")
        voltage = pc.fill_null(run[settings.voltage_column], np.nan).to_numpy()
        segments = find_segments(voltage, settings.dv_threshold, settings.min_segment_points)
        sizes = replace_run_segments(run_folder, [segment_table(run, s) for s in segments])
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
            segment_bytes=sizes,
        )
        reuse.save(record, record_key, row)
    except Exception as error:  # noqa: BLE001 - one bad run must never stop the lab's run
        if isinstance(error, OSError) and is_disk_full(error):
            raise  # a full disk is not the run's fault: the job fails and the rerun segments it
        row["reason"] = f"{type(error).__name__}: {error}"
    return row


def segment_runs(stage_manifest: pa.Table, settings: SegmentSettings) -> pa.Table:
    """Segment every staged IV run listed in a stage batch manifest."""
    staged = stage_manifest.filter(pc.and_(pc.equal(stage_manifest["proc"], "IV"), pc.equal(stage_manifest["status"], "ok")))
    return pa.Table.from_pylist([segment_run(row, settings) for row in staged.to_pylist()], schema=MANIFEST_SCHEMA)
