"""Whole-run manifests from the per-batch ones, the cleanup that keeps results/ equal to a clean run,
and the end-of-run summary."""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .atomic import write_bytes_atomic, write_text_atomic
from .io import read_parquet, write_parquet_atomic
from .layout import ANALYSIS, analysis_manifest, drawn_folder, figure_folders, month_table, records_folder
from .procedures import Procedure


def merge_manifests(paths: list[Path], schema: pa.Schema) -> pa.Table:
    """Concatenate batch manifests, sorted so the result does not depend on job order."""
    tables = [read_parquet(path).cast(schema) for path in paths]
    return sort_manifest(pa.concat_tables(tables) if tables else schema.empty_table(), schema)


def sort_manifest(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Rows in order of their first column (source_file or run_id): one canonical order to compare."""
    return table.cast(schema).sort_by([(schema.names[0], "ascending")])


def folders_at_depth(root: Path, depth: int) -> list[str]:
    """Folder paths exactly `depth` levels below root (os.scandir: ~10x faster than glob + resolve)."""
    level = [str(root)] if root.is_dir() else []
    for _ in range(depth):
        level = [entry.path for folder in level for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False)]
    return level


def prune_orphans(dataset: Path, keep: set[str], depth: int) -> list[Path]:
    """Remove run folders `depth` levels below `dataset` that no current manifest row points to
    (raw file deleted, or moved to another day), and the partition folders they leave empty.
    Runs only after every job writing to `dataset` has finished."""
    cwd = os.getcwd()  # once: os.path.abspath asks for it per path (17,000 run folders: ~0.1 s a job)
    kept = {os.path.normpath(os.path.join(cwd, path)) for path in keep}  # strings: a Path per run cost ~0.3 s
    root = Path(os.path.abspath(dataset))
    removed = [Path(folder) for folder in folders_at_depth(root, depth) if folder not in kept]  # absolute, normal
    for folder in removed:
        shutil.rmtree(folder)
    for parent in sorted({p for folder in removed for p in folder.parents if root in p.parents}, reverse=True):
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    return removed


def output_folders(manifest: pa.Table, levels_up: int) -> set[str]:
    """Run folders named by the manifest's `output` column (a file when levels_up=1, a folder when 0)."""
    folders = set()
    for path in pc.drop_null(manifest["output"]).to_pylist():
        for _ in range(levels_up):
            path = os.path.dirname(path)
        folders.add(path)
    return folders


def write_rejects_csv(manifest: pa.Table, path: Path) -> Path:
    """The rejects as a CSV a person can open: file, reason."""
    rejects = manifest.filter(pc.not_equal(manifest["status"], "ok")).select(["source_file", "status", "reason"])
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(rejects.column_names)
    writer.writerows(zip(*(column.to_pylist() for column in rejects.columns)))
    return write_text_atomic(Path(path), text.getvalue())


def damaged_files_line(stage: pa.Table, shown: int = 5) -> str:
    """Staged files with skipped rows or null cells: how many, and the first `shown` by name."""
    ok = stage.filter(pc.equal(stage["status"], "ok"))
    skipped, nulls = pc.fill_null(ok["skipped_rows"], 0), pc.fill_null(ok["null_cells"], 0)
    damaged = ok.filter(pc.or_(pc.greater(skipped, 0), pc.greater(nulls, 0)))
    if damaged.num_rows == 0:
        return "  staged with damage (skipped rows or null cells): none"
    columns = [name for name in ("source_file", "skipped_rows", "null_cells", "skipped_lines", "null_lines") if name in damaged.column_names]
    rows = damaged.select(columns).to_pylist()
    named = ", ".join(
        f"{r['source_file']} ({r['skipped_rows'] or 0} skipped rows{at_lines(r.get('skipped_lines'))}, "
        f"{r['null_cells'] or 0} null cells{at_lines(r.get('null_lines'))})"
        for r in rows[:shown]
    )
    more = f", and {len(rows) - shown} more" if len(rows) > shown else ""
    total_skipped, total_nulls = pc.sum(skipped).as_py() or 0, pc.sum(nulls).as_py() or 0
    return (
        f"  staged with damage: {len(rows)} file{'s' if len(rows) != 1 else ''} "
        f"({total_skipped} skipped rows, {total_nulls} null cells): {named}{more}; "
        "the first lines of each are in the stage manifest's skipped_lines and null_lines"
    )


def not_measured_line(stage: pa.Table) -> list[str]:
    """Cells the instrument wrote `nan` (not measured, not damage): how many, in how many files, and the columns
    not measured at all with their file counts; no line when none."""
    if "not_measured_cells" not in stage.column_names:
        return []
    ok = stage.filter(pc.greater(pc.fill_null(stage["not_measured_cells"], 0), 0))
    if ok.num_rows == 0:
        return []
    columns = Counter(name for names in ok["not_measured_columns"].to_pylist() for name in names or [])
    listed = ", ".join(f"{name} ({n} file{'s' if n != 1 else ''})" for name, n in sorted(columns.items()))
    cells = pc.sum(ok["not_measured_cells"]).as_py()
    return [
        f"  not measured (written as nan, stored as null): {cells} cells in {ok.num_rows} files" + (f"; whole columns: {listed}" if listed else "")
    ]


def at_lines(lines: list[int] | None) -> str:
    """ " at lines 29, 31" (the first few the manifest keeps)."""
    return f" at line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}" if lines else ""


def invalid_parameters_line(stage: pa.Table, shown: int = 5) -> list[str]:
    """Staged files with header values not of their type or beyond its range (stored as null); no line when none."""
    if "invalid_parameters" not in stage.column_names:
        return []
    ok = stage.filter(pc.equal(stage["status"], "ok"))
    rows = ok.filter(pc.greater(pc.fill_null(pc.list_value_length(ok["invalid_parameters"]), 0), 0))
    if rows.num_rows == 0:
        return []
    found = rows.select(["source_file", "invalid_parameters"]).to_pylist()
    named = ", ".join(f"{r['source_file']} ({', '.join(r['invalid_parameters'])})" for r in found[:shown])
    more = f", and {len(found) - shown} more" if len(found) > shown else ""
    return [f"  header values not of their type, stored as null: {len(found)} file{'s' if len(found) != 1 else ''}: {named}{more}"]


def mark_duplicates(stage: pa.Table, duplicates: list[dict[str, str]]) -> pa.Table:
    """The stage manifest with `duplicate_of` set for every copy of another raw file (catalog.duplicates)."""
    original = {row["source_file"]: row["duplicate_of"] for row in duplicates}
    column = pa.array([original.get(source) for source in stage["source_file"].to_pylist()], pa.string())
    return stage.set_column(stage.schema.get_field_index("duplicate_of"), "duplicate_of", column)


def duplicates_line(stage: pa.Table, excluded: bool, shown: int = 5) -> list[str]:
    """Copies of other raw files: how many, the first `shown` with what they copy; no line when there are none."""
    if "duplicate_of" not in stage.column_names:
        return []
    copies = stage.filter(pc.is_valid(stage["duplicate_of"])).select(["source_file", "duplicate_of"]).to_pylist()
    if not copies:
        return []
    named = ", ".join(f"{r['source_file']} (= {r['duplicate_of']})" for r in copies[:shown])
    more = f", and {len(copies) - shown} more" if len(copies) > shown else ""
    use = "left out of the analysis (analysis.exclude_duplicates)" if excluded else "analysed too (analysis.exclude_duplicates: true leaves them out)"
    return [f"  duplicates (the same bytes as another raw file): {len(copies)}, staged and {use}: {named}{more}; duplicate_of in the stage manifest"]


def summarize(stage: pa.Table, segments: pa.Table, rejects_csv: str, duplicates_excluded: bool = False) -> str:
    """A few lines for the end of the run: what was staged, rejected and segmented, per procedure."""
    status = Counter(stage["status"].to_pylist())
    by_proc = Counter(p for p, s in zip(stage["proc"].to_pylist(), stage["status"].to_pylist()) if s == "ok")
    segmented = sum(1 for s in segments["status"].to_pylist() if s == "ok")
    written = sum(n or 0 for n in segments["n_segments"].to_pylist())
    incomplete = sum(1 for s, c in zip(segments["status"].to_pylist(), segments["complete"].to_pylist()) if s == "ok" and not c)
    lines = [
        f"nanolab: {stage.num_rows} raw files: {status['ok']} staged, {status['reject']} rejected"
        + (f", {status['skipped']} skipped" if status["skipped"] else ""),
        "  staged per procedure: " + (", ".join(f"{p} {n}" for p, n in sorted(by_proc.items())) or "none"),
        damaged_files_line(stage),
        *not_measured_line(stage),
        *invalid_parameters_line(stage),
        *duplicates_line(stage, duplicates_excluded),
        f"  IV runs segmented: {segmented} of {segments.num_rows} ({written} segments; {incomplete} without all 4 segment types)",
        f"  rejects listed in {rejects_csv}",
    ]
    return "\n".join(lines) + "\n"


def write_manifest(table: pa.Table, path: Path) -> Path:
    return write_parquet_atomic(table, path)


def prune_stale_batches(folder: Path, current: set[Path], pattern: str = "*.parquet") -> list[Path]:
    """Batch files (manifests, points, records) of batches that no longer exist (a day vanished or was re-split)."""
    keep = {path.resolve() for path in current}
    stale = [path for path in folder.rglob(pattern) if path.resolve() not in keep]
    for path in stale:
        path.unlink()
    return stale


def staging_summary(stage: pa.Table) -> pa.Table:
    """Raw files per day, procedure and status, and how many of them copy another: the report's staging table."""
    counts = stage.group_by(["date", "proc", "status"]).aggregate([("source_file", "count"), ("duplicate_of", "count")])
    return counts.rename_columns(["date", "proc", "status", "files", "duplicates"]).sort_by([("date", "ascending"), ("proc", "ascending")])


def flagged_runs(segments: pa.Table) -> pa.Table:
    """IV runs worth a look: not segmented, or without exactly the four segment types (aborted sweeps)."""
    flagged = pc.or_(pc.not_equal(segments["status"], "ok"), pc.invert(pc.fill_null(segments["complete"], False)))
    flagged = pc.or_(flagged, pc.not_equal(pc.fill_null(segments["n_segments"], 0), 4))
    table = segments.filter(flagged)
    return pa.table(
        {
            "date": table["date"],
            "source_file": table["source_file"],
            "run_id": table["run_id"],
            "status": table["status"],
            "n_segments": table["n_segments"],
            "segment_types": [" ".join(t or []) for t in table["segment_types"].to_pylist()],
            "segment_points": [" ".join(map(str, p or [])) for p in table["segment_points"].to_pylist()],
            "reason": table["reason"],
        }
    ).sort_by([("date", "ascending"), ("source_file", "ascending")])


def segment_point_counts(segments: pa.Table) -> pa.Table:
    """Points per segment type over all runs: min, median, max, to spot truncated or odd sweeps."""
    rows = segments.filter(pc.equal(segments["status"], "ok")).select(["segment_types", "segment_points"])
    long = pa.table({"segment_type": pc.list_flatten(rows["segment_types"]), "points": pc.list_flatten(rows["segment_points"])})
    stats = long.group_by("segment_type").aggregate([("points", "count"), ("points", "min"), ("points", "approximate_median"), ("points", "max")])
    return stats.rename_columns(["segment_type", "segments", "min_points", "median_points", "max_points"]).sort_by("segment_type")


def csv_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def write_csv(table: pa.Table, path: Path) -> Path:
    return write_bytes_atomic(csv_bytes(table), Path(path)).path


def prune_days_gone(procedure: Procedure, days: set[str], months: set[str]) -> list[Path]:
    """A procedure's analysis tables, records and figures of days without its runs (nanolab.outputs) and of
    months without its analysis and figure jobs: their raw files were deleted or moved. A month that still
    has days drops the others' drawings in its own job. Paths as nanolab.layout defines them."""
    folders = [Path(ANALYSIS, kind) for kind in procedure.kinds] + [Path(records_folder(job.rule)) for job in procedure.jobs]
    stale = [p for folder in folders for p in folder.glob("date=*") if p.name.removeprefix("date=").removesuffix(".json") not in days]
    month_files = [analysis_manifest(procedure.slug, "*"), month_table(procedure.slug, "*"), *figure_folders(procedure.slug, "*")]
    month_files.append(drawn_folder(figure_folders(procedure.slug, "*")[0]))
    for pattern in month_files:
        stale += [p for p in Path().glob(pattern) if p.name.removeprefix("month=").split(".")[0] not in months]
    for path in stale:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return stale
