"""Read staged runs, IV segments and the day analyses back as pandas DataFrames.

Only the partitions a query names are opened: `proc` and `date` select folders before any file
is read, and other filters are pushed down into the Parquet scan. Integer columns come back as
pandas nullable integers (chip_number is Int64, never 67.0, even when some runs lack it).

    load_runs("results", proc="IV", date="2025-09-11", chip_number=67)
    load_segments("results", date="2025-09-11", segment_type="forward_positive", labels="lab")
    load_analysis("results", "iv_fits", date=["2025-09-11", "2025-09-12"])
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .analysis import DAY_KINDS
from .iv_segments import SEGMENT_DATASET
from .lab_analysis_job import LAB_KINDS
from .schema import read_yaml
from .stage import STAGE_DATASET

ANALYSIS_FOLDER = "04_analysis"
ANALYSIS_KINDS = (*DAY_KINDS, *LAB_KINDS)
PARTITIONS = {
    STAGE_DATASET: pa.schema([("proc", pa.string()), ("date", pa.string()), ("run_id", pa.string())]),
    SEGMENT_DATASET: pa.schema([("proc", pa.string()), ("date", pa.string()), ("run_id", pa.string()), ("segment", pa.int32())]),
    ANALYSIS_FOLDER: pa.schema([("date", pa.string())]),
}
# The repository's procedure schema (the package is installed in editable mode from scripts/).
DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "procedures.yaml"
NULLABLE_INTEGERS = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
}


def _values(value: str | Iterable[str] | None) -> list[str] | None:
    return None if value is None else [value] if isinstance(value, str) else list(value)


def partition_files(root: Path, levels: dict[str, str | Iterable[str] | None]) -> list[str]:
    """Part files under the partition folders asked for (`key=value` levels in order; None = all), found by name alone."""
    folders = [root]
    for key, wanted in levels.items():
        values = _values(wanted)
        folders = [f for parent in folders for f in sorted(parent.glob(f"{key}=*")) if values is None or f.name.removeprefix(f"{key}=") in values]
    return [str(p) for folder in folders for p in sorted(folder.rglob("part-*.parquet"))]


def matching_files(root: Path, proc: str | Iterable[str] | None, date: str | Iterable[str] | None) -> list[str]:
    """Part files under the proc=/date= partitions asked for (no file is opened)."""
    return partition_files(root, {"proc": proc, "date": date})


def lab_labels(schema: str | Path = DEFAULT_SCHEMA) -> dict[str, str]:
    """Canonical data column -> the lab's label: the first label of each column in the schema's `columns:` vocabulary."""
    return {name: labels[0] for name, labels in read_yaml(schema)["columns"].items()}


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=NULLABLE_INTEGERS.get)


def _load(files: list[str], partitions: pa.Schema, root: Path, columns: list[str] | None, filters: dict) -> pd.DataFrame:
    if not files:
        return pd.DataFrame(columns=columns or list(partitions.names))
    partitioning = ds.partitioning(partitions, flavor="hive")
    # Files of one procedure may differ in columns (instrument software versions): take the union.
    schema = pa.unify_schemas([pq.read_schema(f) for f in files] + [partitions])
    dataset = ds.dataset(files, schema=schema, partitioning=partitioning, partition_base_dir=str(root))
    conditions = [ds.field(name).isin(_values(value) if isinstance(value, (list, tuple, set)) else [value])
                  for name, value in filters.items() if value is not None]  # fmt: skip
    condition = reduce(lambda a, b: a & b, conditions) if conditions else None
    return _to_pandas(dataset.to_table(columns=columns, filter=condition))


def _relabel(frame: pd.DataFrame, labels: str | None, schema: str | Path) -> pd.DataFrame:
    if labels is None:
        return frame
    if labels != "lab":
        raise ValueError(f"labels must be None (canonical names) or 'lab', got {labels!r}")
    return frame.rename(columns=lab_labels(schema))


def load_runs(
    results: str | Path,
    proc=None,
    date=None,
    columns: list[str] | None = None,
    labels: str | None = None,
    schema: str | Path = DEFAULT_SCHEMA,
    **filters,
) -> pd.DataFrame:
    """Staged measurements, one row per data point; `filters` are column = value (or list of values).

    `columns` and `filters` use canonical names; labels="lab" renames the data columns to the lab's old
    labels afterwards (vsd_V -> "Vsd (V)", i_A -> "I (A)", ...), from the procedure `schema`.
    """
    root = Path(results) / "02_stage" / STAGE_DATASET
    frame = _load(matching_files(root, proc, date), PARTITIONS[STAGE_DATASET], root, columns, filters)
    return _relabel(frame, labels, schema)


def load_segments(
    results: str | Path, date=None, columns: list[str] | None = None, labels: str | None = None, schema: str | Path = DEFAULT_SCHEMA, **filters
) -> pd.DataFrame:
    """IV sweep segments, one row per data point, e.g. `segment_type="forward_positive"`; labels as in load_runs."""
    root = Path(results) / "03_intermediate" / SEGMENT_DATASET
    frame = _load(matching_files(root, "IV", date), PARTITIONS[SEGMENT_DATASET], root, columns, filters)
    return _relabel(frame, labels, schema)


def load_analysis(results: str | Path, kind: str, date=None, columns: list[str] | None = None, **filters) -> pd.DataFrame:
    """One analysis kind (ANALYSIS_KINDS) from results/04_analysis/<kind>/date=<d>/part-000.parquet, e.g. chip_number=67;
    `load_analysis(results, "chip_history")` is every chip's history over all days."""
    if kind not in ANALYSIS_KINDS:
        raise ValueError(f"unknown analysis kind {kind!r}; expected one of {ANALYSIS_KINDS}")
    root = Path(results) / ANALYSIS_FOLDER / kind
    return _load(partition_files(root, {"date": date}), PARTITIONS[ANALYSIS_FOLDER], root, columns, filters)
