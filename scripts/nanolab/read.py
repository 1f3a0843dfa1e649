"""Read staged runs, IV segments and the day analyses back as pandas DataFrames.

Only the partitions a query names are opened: `proc` and `date` select folders before any file
is read (for segments also `run_id`, from a filter on a run column), and other filters are pushed
down into the Parquet scan. Integer columns come back as pandas nullable integers (chip_number is
Int64, never 67.0, even when some runs lack it).

    load_runs("results", proc="IV", date="2025-09-11", chip_number=67)
    load_segments("results", date="2025-09-11", segment_type="forward_positive", with_light=False, labels="lab")
    load_analysis("results", "iv_fits", date=["2025-09-11", "2025-09-12"])
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .io import read_parquet
from .iv_segments import SEGMENT_COLUMNS, SEGMENT_DATASET, SEGMENT_FACTS, SEGMENT_RUN_COLUMNS
from .procedures import analysis_kinds
from .schema import read_yaml
from .stage import STAGE_DATASET

ANALYSIS_FOLDER = "04_analysis"
STAGE_MANIFEST = Path("02_stage") / "_manifest" / "manifest.parquet"  # one row per raw file: the run columns
SEGMENT_MANIFEST = Path("03_intermediate") / "_manifest" / "manifest.parquet"  # one row per IV run: per-segment lists
ANALYSIS_KINDS = analysis_kinds()  # every analysed procedure's day tables (nanolab.procedures)
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
        values = None if wanted is None else set(_values(wanted))
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


def _condition(filters: dict) -> ds.Expression | None:
    """column = value (or one of a list of values) for every filter given, all of them."""
    conditions = [ds.field(name).isin(_values(value) if isinstance(value, (list, tuple, set)) else [value])
                  for name, value in filters.items() if value is not None]  # fmt: skip
    return reduce(lambda a, b: a & b, conditions) if conditions else None


def _dataset(files: list[str], partitions: pa.Schema, root: Path) -> ds.Dataset:
    partitioning = ds.partitioning(partitions, flavor="hive")
    # Files of one procedure may differ in columns (instrument software versions): take the union.
    schema = pa.unify_schemas([pq.read_schema(f) for f in files] + [partitions])
    return ds.dataset(files, schema=schema, partitioning=partitioning, partition_base_dir=str(root))


def _load(files: list[str], partitions: pa.Schema, root: Path, columns: list[str] | None, filters: dict) -> pd.DataFrame:
    if not files:
        return pd.DataFrame(columns=columns or list(partitions.names))
    return _to_pandas(_dataset(files, partitions, root).to_table(columns=columns, filter=_condition(filters)))


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
    """IV sweep segments, one row per data point, e.g. `segment_type="forward_positive"`; labels as in load_runs.

    A segment file holds the run's data columns and the segment columns; the run columns (`with_light`,
    `chip_number`, `source_file`, …) are joined from the stage manifest by run_id, and each segment's
    voltage range and direction from the segment manifest by run_id and segment. A filter on a run column
    picks the run_id folders from the stage manifest before any segment file is opened.
    """
    results = Path(results)
    root = results / "03_intermediate" / SEGMENT_DATASET
    run_filters = {name: value for name, value in filters.items() if name in SEGMENT_RUN_COLUMNS}
    fact_filters = {name: value for name, value in filters.items() if name in SEGMENT_FACTS}
    file_filters = {name: value for name, value in filters.items() if name not in run_filters and name not in fact_filters}
    joined = {*SEGMENT_RUN_COLUMNS, *SEGMENT_FACTS}
    wants = set(joined if columns is None else columns)
    runs = _iv_runs(results, date) if run_filters or wants & set(SEGMENT_RUN_COLUMNS) else None
    if run_filters:
        runs = runs.filter(_condition(run_filters))
    run_ids = runs["run_id"].to_pylist() if run_filters else None
    files = partition_files(root, {"proc": "IV", "date": date, "run_id": run_ids})
    if not files:
        return _relabel(pd.DataFrame(columns=columns or list(PARTITIONS[SEGMENT_DATASET].names)), labels, schema)
    dataset = _dataset(files, PARTITIONS[SEGMENT_DATASET], root)
    in_files = [name for name in dataset.schema.names if name not in joined]  # files of an older layout held run columns
    keys = ["run_id", "segment"]
    read = in_files if columns is None else [*dict.fromkeys(name for name in [*columns, *keys] if name not in joined)]
    table = dataset.to_table(columns=read, filter=_condition(file_filters))
    if runs is not None:
        table = _join_runs(table, runs)
    if fact_filters or wants & set(SEGMENT_FACTS):
        table = _join_facts(table, results / SEGMENT_MANIFEST)
        table = table.filter(_condition(fact_filters)) if fact_filters else table
    if columns is None:  # as the files once held them: data, run columns, segment columns, then the path's keys
        partitions, segment = PARTITIONS[SEGMENT_DATASET].names, [*SEGMENT_COLUMNS[:2], *SEGMENT_FACTS, *SEGMENT_COLUMNS[2:]]
        data = [name for name in in_files if name not in {*SEGMENT_COLUMNS, *partitions}]
        columns = [*data, *SEGMENT_RUN_COLUMNS, *(name for name in segment if name in table.column_names), *partitions]
    return _relabel(_to_pandas(table.select(columns)), labels, schema)


def _manifest(path: Path, columns: list[str]) -> pa.Table:
    try:
        return read_parquet(path, columns=columns)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} not found: the segments' run columns and voltage ranges come from it (every workflow run writes it)"
        ) from None


def _iv_runs(results: Path, date) -> pa.Table:
    """run_id and run columns of the staged IV runs (of the days asked for), from the merged stage manifest."""
    manifest = _manifest(results / STAGE_MANIFEST, ["run_id", "proc", "status", "date", *SEGMENT_RUN_COLUMNS])
    return manifest.filter(_condition({"proc": "IV", "status": "ok", "date": _values(date)})).select(["run_id", *SEGMENT_RUN_COLUMNS])


def _join_runs(table: pa.Table, runs: pa.Table) -> pa.Table:
    """Each row's run columns, by run_id (null for a run the manifest does not list), rows kept in order."""
    matched = runs.take(pc.index_in(table["run_id"], value_set=runs["run_id"]))
    for name in SEGMENT_RUN_COLUMNS:
        table = table.append_column(name, matched[name])
    return table


def _join_facts(table: pa.Table, manifest_path: Path) -> pa.Table:
    """Each row's segment voltage range and direction: element `segment` of its run's manifest lists
    (null for a run or segment the manifest does not list), rows kept in order."""
    manifest = _manifest(manifest_path, ["run_id", "status", *SEGMENT_FACTS.values()])
    manifest = manifest.filter(pc.equal(manifest["status"], "ok")).combine_chunks()
    lengths = pc.list_value_length(manifest[SEGMENT_FACTS["segment_v_start"]]).fill_null(0).to_numpy(zero_copy_only=False)
    starts, lengths = np.concatenate(([0], np.cumsum(lengths))), np.append(lengths, 0)  # a sentinel row: an empty manifest works
    row = pc.index_in(table["run_id"], value_set=manifest["run_id"])
    found = pc.is_valid(row).to_numpy(zero_copy_only=False)
    row = pc.fill_null(row, manifest.num_rows).to_numpy(zero_copy_only=False)
    segment = table["segment"].to_numpy().astype(np.int64)
    listed = found & (segment >= 0) & (segment < lengths[row])
    index = pa.array(np.where(listed, starts[row] + segment, 0), mask=~listed)
    for name, list_name in SEGMENT_FACTS.items():
        table = table.append_column(name, pc.list_flatten(manifest[list_name]).take(index))
    return table


def load_analysis(results: str | Path, kind: str, date=None, columns: list[str] | None = None, **filters) -> pd.DataFrame:
    """One analysis kind (ANALYSIS_KINDS) from results/04_analysis/<kind>/date=<d>/part-000.parquet, e.g. chip_number=67;
    `load_analysis(results, "chip_history")` is every chip's history over all days."""
    if kind not in ANALYSIS_KINDS:
        raise ValueError(f"unknown analysis kind {kind!r}; expected one of {ANALYSIS_KINDS}")
    root = Path(results) / ANALYSIS_FOLDER / kind
    return _load(partition_files(root, {"date": date}), PARTITIONS[ANALYSIS_FOLDER], root, columns, filters)
