"""Read staged runs and IV segments back as pandas DataFrames.

Only the partitions a query names are opened: `proc` and `date` select folders before any file
is read, and other filters are pushed down into the Parquet scan.

    load_runs("results", proc="IV", date="2025-09-11", chip_number=67)
    load_segments("results", date="2025-09-11", segment_type="forward_positive")
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .iv_segments import SEGMENT_DATASET
from .stage import STAGE_DATASET

PARTITIONS = {
    STAGE_DATASET: pa.schema([("proc", pa.string()), ("date", pa.string()), ("run_id", pa.string())]),
    SEGMENT_DATASET: pa.schema([("proc", pa.string()), ("date", pa.string()), ("run_id", pa.string()), ("segment", pa.int32())]),
}


def _values(value: str | Iterable[str] | None) -> list[str] | None:
    return None if value is None else [value] if isinstance(value, str) else list(value)


def matching_files(root: Path, proc: str | Iterable[str] | None, date: str | Iterable[str] | None) -> list[str]:
    """Part files under the partitions asked for, found by folder name alone (no file is opened)."""
    procs, dates = _values(proc), _values(date)
    files = []
    for proc_folder in sorted(root.glob("proc=*")):
        if procs is not None and proc_folder.name.removeprefix("proc=") not in procs:
            continue
        for date_folder in sorted(proc_folder.glob("date=*")):
            if dates is None or date_folder.name.removeprefix("date=") in dates:
                files += sorted(str(p) for p in date_folder.rglob("part-*.parquet"))
    return files


def _load(root: Path, dataset_name: str, proc, date, columns: list[str] | None, filters: dict) -> pd.DataFrame:
    files = matching_files(root, proc, date)
    partitioning = ds.partitioning(PARTITIONS[dataset_name], flavor="hive")
    if not files:
        return pd.DataFrame(columns=columns or list(PARTITIONS[dataset_name].names))
    # Files of one procedure may differ in columns (instrument software versions): take the union.
    schema = pa.unify_schemas([pq.read_schema(f) for f in files] + [PARTITIONS[dataset_name]])
    dataset = ds.dataset(files, schema=schema, partitioning=partitioning, partition_base_dir=str(root))
    conditions = [ds.field(name).isin(_values(value) if isinstance(value, (list, tuple, set)) else [value])
                  for name, value in filters.items() if value is not None]  # fmt: skip
    condition = reduce(lambda a, b: a & b, conditions) if conditions else None
    return dataset.to_table(columns=columns, filter=condition).to_pandas()


def load_runs(results: str | Path, proc=None, date=None, columns: list[str] | None = None, **filters) -> pd.DataFrame:
    """Staged measurements, one row per data point; `filters` are column = value (or list of values)."""
    return _load(Path(results) / "02_stage" / STAGE_DATASET, STAGE_DATASET, proc, date, columns, filters)


def load_segments(results: str | Path, date=None, columns: list[str] | None = None, **filters) -> pd.DataFrame:
    """IV sweep segments, one row per data point, e.g. `segment_type="forward_positive"`."""
    return _load(Path(results) / "03_intermediate" / SEGMENT_DATASET, SEGMENT_DATASET, "IV", date, columns, filters)
