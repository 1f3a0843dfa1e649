"""The analysis job: the IV analysis tables of every day of a month, one Parquet per day and kind,
`results/04_analysis/<kind>/date=<YYYY-MM-DD>/part-000.parquet`.

One job per month keeps the job start-ups few (~0.35 s CPU each); a day whose input points, settings
and code are unchanged keeps its tables (a `_records/date=<d>.json` record proves it), so a changed raw
file recomputes only its day.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from . import job, outputs, reuse
from .analysis import DAY_KINDS, AnalysisSettings, analyse_day
from .atomic import Written
from .io import read_parquet, write_parquet, write_parquet_atomic
from .iv_segments import POINTS_SCHEMA
from .manifest import write_csv

log = logging.getLogger("nanolab")

ANALYSIS_SCHEMA = pa.schema(
    [("date", pa.string()), ("kind", pa.string()), ("rows", pa.int64()), ("output", pa.string()), ("output_bytes", pa.int64())]
)


def day_of(path: Path) -> str:
    """The measurement day from a `…/date=<d>/…` path."""
    return next(part.removeprefix("date=") for part in path.parts if part.startswith("date="))


def points_by_day(points_files: list[Path]) -> dict[str, list[Path]]:
    days: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(points_files):
        days[day_of(path)].append(path)
    return dict(days)


def read_points(paths: list[Path], with_segments: bool = False) -> pa.Table:
    """A day's points from its batch files (analysis needs no segment ids, so they are not read; figures do)."""
    schema = POINTS_SCHEMA if with_segments else pa.schema([field for field in POINTS_SCHEMA if field.name != "segment_id"])
    tables = [read_parquet(path, columns=schema.names).cast(schema) for path in paths]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def analysed_days(segment_manifests: list[Path]) -> list[str]:
    """The days the segment manifests list IV runs on (nanolab.outputs: the figures' days too)."""
    tables = [read_parquet(path, columns=["date"]) for path in segment_manifests]
    return outputs.iv_days({"date": [day for table in tables for day in table["date"].to_pylist()]})


def analyse_days(
    points_files: list[Path],
    out_root: Path,
    settings: AnalysisSettings,
    days: list[str] | None = None,
    engine: reuse.Engine = reuse.IN_PROCESS,
    excluded: dict[str, list[str]] | None = None,
    records_dir: Path | None = None,
) -> pa.Table:
    """Analyse each of `days` (default: each day found in `points_files`), without the runs `excluded`
    names for it (copies of other raw files, with analysis.exclude_duplicates); one manifest row per day
    and kind. A day made before from these very points, settings and code keeps its tables (`engine`)."""
    rows: list[dict] = []
    points_of = points_by_day(points_files)
    records = reuse.Folder(records_dir or out_root / "_records")
    for day in points_of if days is None else days:
        paths = points_of.get(day, [])
        left_out = sorted((excluded or {}).get(day, []))
        record_key = engine.key(repr(settings), day, *left_out, *(reuse.content_id(path) for path in paths))
        make = partial(analyse_and_write, paths, left_out, settings, out_root, day)
        row, _ = engine.reuse_or_make(records, f"date={day}", record_key, make, day)
        rows += row["outputs"]
    return pa.Table.from_pylist(rows, schema=ANALYSIS_SCHEMA)


def analyse_and_write(paths: list[Path], left_out: list[str], settings: AnalysisSettings, out_root: Path, day: str) -> tuple[dict, list[Written]]:
    points = read_points(paths)
    if left_out:
        points = points.filter(pc.invert(pc.is_in(points["run_id"], pa.array(left_out, pa.string()))))
    return write_day_tables(analyse_day(points, settings), out_root, day, DAY_KINDS)


def write_day_tables(tables: dict[str, pa.Table], out_root: Path, day: str, kinds: tuple[str, ...]) -> tuple[dict, list[Written]]:
    """A day's tables, one Parquet per kind (`<out_root>/<kind>/date=<day>/part-000.parquet`), and their
    manifest rows (the record's row) with what was written."""
    outputs, written = [], []
    for kind in kinds:
        written.append(write_parquet(tables[kind], out_root / kind / f"date={day}" / "part-000.parquet"))
        outputs.append({"date": day, "kind": kind, "rows": tables[kind].num_rows, "output": str(written[-1].path), "output_bytes": written[-1].size})
    return {"outputs": outputs}, written


def fits_table(manifest: pa.Table) -> pa.Table:
    """Resistance and R² per day, chip and V_max group: the report's table of the linear and polynomial fits."""
    paths = manifest.filter(pc.equal(manifest["kind"], "iv_fits"))
    tables = []
    for row in paths.to_pylist():
        fits = read_parquet(row["output"])
        keep = ["chip_group", "chip_number", "chip", "v_max_V", "n_runs", "resistance_ohm", "r_squared"]
        keep += [name for name in fits.column_names if name.startswith("r2_poly")]
        tables.append(fits.select(keep).add_column(0, "date", pa.array([row["date"]] * fits.num_rows, pa.string())))
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({"date": pa.array([], pa.string())})


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-root", type=Path, required=True, help="results/04_analysis")
    parser.add_argument("--manifest", type=Path, required=True, help="the month's analysis manifest (Parquet)")
    parser.add_argument("--fits-table", type=Path, required=True, help="CSV: resistance and R² per group, for the report")
    parser.add_argument("--poly-orders", type=int, nargs="+", required=True)
    parser.add_argument("--v-max-decimals", type=int, required=True)
    parser.add_argument("--hysteresis-decimals", type=int, required=True)
    parser.add_argument("--group-by", choices=("chip", "day"), required=True)
    parser.add_argument("--exclude-runs", default="[]", help="JSON [{run_id, date}]: runs the analysis leaves out (copies of other raw files)")
    parser.add_argument("--segment-manifests", type=Path, nargs="*", help="the month's segment batch manifests: which days are analysed")
    parser.add_argument("--records-dir", type=Path, help="one reuse record per day (default: <out-root>/_records)")
    parser.add_argument("points", type=Path, nargs="*", help="the month's iv_points batch files")


def run_job(args: argparse.Namespace) -> None:
    settings = AnalysisSettings(tuple(args.poly_orders), args.v_max_decimals, args.hysteresis_decimals, args.group_by)
    excluded: dict[str, list[str]] = defaultdict(list)
    for run in json.loads(args.exclude_runs):
        excluded[run["date"]].append(run["run_id"])
    days = None if args.segment_manifests is None else analysed_days(args.segment_manifests)
    manifest = analyse_days(args.points, args.out_root, settings, days, job.engine(args, "analysis"), excluded, args.records_dir)
    write_parquet_atomic(manifest, args.manifest)
    write_csv(fits_table(manifest), args.fits_table)
    log.info("analysed %d days", len(set(manifest["date"].to_pylist())))


def main(argv: list[str] | None = None) -> None:
    job.main("python -m nanolab.analysis_job", __doc__, arguments, run_job, argv, reuses=True)


if __name__ == "__main__":
    main()
