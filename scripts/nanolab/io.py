"""File output: every Parquet file appears whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def temporary_for(path: Path) -> Path:
    """A fixed hidden name beside the target: a job killed mid-write leaves it behind, and the rerun
    that rewrites the target replaces it (batches are disjoint and Snakemake locks the results)."""
    return path.with_name(f".{path.name}.tmp")


def write_parquet_atomic(table: pa.Table, path: str | Path) -> Path:
    """Write to a hidden temp file beside `path`, then rename: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_for(path)
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_parquet(path: str | Path) -> pa.Table:
    """One file, without the dataset machinery of `pq.read_table` (2 ms less per file), on the
    calling thread: no Arrow thread-pool work may be in flight when a short-lived job exits."""
    with pq.ParquetFile(path) as parquet:
        return parquet.read(use_threads=False)


def write_parquet_blocks_atomic(blocks: Iterable[pa.Table], path: str | Path) -> int:
    """Stream tables of one schema into one Parquet file (bounded memory), atomically; returns rows.

    Nothing is left at `path` when there are no rows."""
    path = Path(path)
    temporary = temporary_for(path)
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for table in blocks:
            if writer is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(temporary, table.schema)
            writer.write_table(table)
            rows += table.num_rows
        if writer is not None:
            writer.close()
            writer = None
            if rows:
                os.replace(temporary, path)
    finally:
        if writer is not None:
            writer.close()
        temporary.unlink(missing_ok=True)
    return rows
