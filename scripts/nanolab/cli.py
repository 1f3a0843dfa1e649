"""Thin command-line entry points the Snakemake rules call (`python -m nanolab <command> …`).

Rules use `shell:` + `python -m` rather than `script:`: measured ~30 ms less per job, and the
commands run the same way by hand, on a cluster node or in a test. Each command imports the modules it
runs when it runs (a batch job does not load the manifests' modules; `codehash` follows these imports).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import job, reuse
from .jobargs import JobArgumentParser

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("nanolab")


def run_stage(args: argparse.Namespace) -> None:
    import pyarrow.compute as pc

    from . import stage
    from .io import write_parquet_atomic
    from .schema import load_schema

    engine = job.engine(args, "stage")
    settings = stage.StageSettings(args.raw_root, args.out_root, load_schema(args.schema), args.timezone, engine)
    records = reuse.Records(reuse.records_file(args.out_root, args.output))
    table = stage.stage_files(args.raw_files + listed_files(args.raw_files_from), settings, records)
    records.write()
    rejects = table.filter(pc.equal(table["status"], "reject"))
    for row in rejects.to_pylist():
        log.warning("rejected %s: %s", row["source_file"], row["reason"])
    write_parquet_atomic(table, args.output)
    log.info("%d raw files: %d rejected", table.num_rows, rejects.num_rows)


def run_batch(args: argparse.Namespace) -> None:
    """Stage a batch and segment its IV runs: the workflow's one job per (day, batch)."""
    import pyarrow.compute as pc

    from . import batch, iv_segments, stage
    from .io import write_parquet_atomic
    from .schema import load_schema

    stage_engine, segment_engine = (job.engine(args, kind) for kind in ("stage", "segments"))
    staging = stage.StageSettings(args.raw_root, args.stage_root, load_schema(args.schema), args.timezone, stage_engine)
    segmentation = iv_segments.SegmentSettings(args.segment_root, args.voltage_column, args.dv_threshold, args.min_segment_points, segment_engine)
    staged, segmented, points = batch.process_batch(args.raw_files + listed_files(args.raw_files_from), staging, segmentation, args.stage_output)
    for row in staged.filter(pc.equal(staged["status"], "reject")).to_pylist():
        log.warning("rejected %s: %s", row["source_file"], row["reason"])
    for row in segmented.filter(pc.not_equal(segmented["status"], "ok")).to_pylist():
        log.warning("not segmented %s: %s", row["source_file"], row["reason"])
    write_parquet_atomic(points, args.points_output)
    write_parquet_atomic(segmented, args.segment_output)
    write_parquet_atomic(staged, args.stage_output)
    log.info("%d raw files, %d IV runs segmented", staged.num_rows, segmented.num_rows)


def listed_files(path: Path | None) -> list[Path]:
    """Raw files from a JSON list (a batch's list is a file: a short arguments file, any raw file name)."""
    return [] if path is None else [Path(name) for name in json.loads(path.read_text(encoding="utf-8"))]


def run_segment(args: argparse.Namespace) -> None:
    import pyarrow.compute as pc

    from . import iv_segments
    from .io import read_parquet, write_parquet_atomic

    engine = job.engine(args, "segments")
    settings = iv_segments.SegmentSettings(args.out_root, args.voltage_column, args.dv_threshold, args.min_segment_points, engine)
    records = reuse.Records(reuse.records_file(args.out_root, args.output))
    table = iv_segments.segment_runs(read_parquet(args.stage_manifest), settings, records)
    records.write()
    for row in table.filter(pc.not_equal(table["status"], "ok")).to_pylist():
        log.warning("not segmented %s: %s", row["source_file"], row["reason"])
    write_parquet_atomic(table, args.output)
    log.info("segmented %d IV runs", table.num_rows)


class DamagedOutputs(RuntimeError):
    """Outputs a manifest lists as ok are not on disk as written: never write a manifest that says so."""


def merge(
    kind: str, out_root: Path, batch_manifests: list[Path], output: Path, extra_rows: list[dict] | None = None, duplicates: list[dict] | None = None
) -> pa.Table:
    """Whole-run manifest of one stage (plus rows no batch holds: undated rejects; copies of other raw files
    marked); removes outputs no current raw file produces."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from . import integrity, iv_segments, manifest, stage
    from .io import write_parquet_atomic

    schema, dataset, levels_up = {
        "stage": (stage.MANIFEST_SCHEMA, stage.STAGE_DATASET, 1),
        "segment": (iv_segments.MANIFEST_SCHEMA, iv_segments.SEGMENT_DATASET, 0),
    }[kind]
    table = manifest.merge_manifests(batch_manifests, schema)
    if extra_rows:
        # the catalog's rows win over a batch manifest written before the plan knew them as rejects
        known = pa.array([row["source_file"] for row in extra_rows], pa.string())
        table = table.filter(pc.invert(pc.is_in(table["source_file"], value_set=known)))
        table = manifest.sort_manifest(pa.concat_tables([table, pa.Table.from_pylist(extra_rows, schema=schema)]), schema)
    if duplicates is not None:
        table = manifest.mark_duplicates(table, duplicates)
    columns, listed = integrity.LISTED[kind]
    if damage := integrity.find_damage(listed(table.select(list(columns)).to_pydict())):
        # the check before the run reruns damaged batches; this is damage done while the run ran
        named = "; ".join(d.describe() for d in damage[:5])
        raise DamagedOutputs(f"{len(damage)} {kind} outputs listed as ok are missing or damaged (run snakemake again to rebuild them): {named}")
    removed = manifest.prune_orphans(out_root / dataset, manifest.output_folders(table, levels_up), depth=3)
    removed += manifest.prune_stale_batches(out_root / "_batches", set(batch_manifests))
    removed += manifest.prune_stale_batches(out_root / "_records", {reuse.records_file(out_root, path) for path in batch_manifests}, "*.json")
    if kind == "segment":  # each batch's points file, beside its segment manifest
        points = {out_root / "_points" / Path(path).relative_to(out_root / "_batches") for path in batch_manifests}
        removed += manifest.prune_stale_batches(out_root / "_points", points)
    for path in removed:
        log.info("removed %s: no raw file produces it any more", path)
    write_parquet_atomic(table, output)
    return table


def run_manifests(args: argparse.Namespace) -> None:
    """Both manifests, the rejects list and the summary in one job: the end of every run is one step."""
    from . import integrity, manifest
    from .atomic import write_text_atomic
    from .outputs import procedure_days
    from .procedures import ANALYSED

    undated = json.loads(args.undated_rejects.read_text(encoding="utf-8")) if args.undated_rejects else []
    for row in undated:  # the rejects the catalog knows had no staging job to log them
        log.warning("%s %s: %s", "rejected" if row["status"] == "reject" else "skipped", row["source_file"], row["reason"])
    staged = merge("stage", args.stage_root, args.stage_batches, args.stage_manifest, undated, json.loads(args.duplicates))
    segmented = merge("segment", args.segment_root, args.segment_batches, args.segment_manifest)
    for name, procedure in ANALYSED.items():  # what its analysis and figure jobs write, and no more
        days = set(procedure_days(staged.select(["date", "proc", "status"]).to_pydict(), name))
        for path in manifest.prune_days_gone(procedure, days, set(args.months.get(name, []))):
            log.info("removed %s: no %s runs on that day any more", path, name)
    manifest.write_rejects_csv(staged, args.rejects)
    manifest.write_csv(manifest.staging_summary(staged), args.staging_summary)
    manifest.write_csv(manifest.flagged_runs(segmented), args.segmentation_qc)
    manifest.write_csv(manifest.segment_point_counts(segmented), args.segment_points)
    text = manifest.summarize(staged, segmented, str(args.rejects), args.duplicates_excluded)
    write_text_atomic(args.summary, text)
    outputs = [
        args.stage_manifest,
        args.segment_manifest,
        args.rejects,
        args.summary,
        args.staging_summary,
        args.segmentation_qc,
        args.segment_points,
    ]
    integrity.save_output_sizes(args.stage_manifest.parent / integrity.OUTPUT_SIZES, outputs)
    sys.stdout.write(text)


def add_raw_files(p: argparse.ArgumentParser) -> None:
    """The raw files a staging command reads, and what decides how they are read."""
    p.add_argument("--raw-root", type=Path, required=True)
    p.add_argument("--schema", type=Path, required=True, help="procedure schema YAML")
    p.add_argument("--timezone", required=True)
    p.add_argument("--raw-files-from", type=Path, help="JSON list of raw files, read with those given as arguments")
    p.add_argument("raw_files", type=Path, nargs="*")


def add_segmentation_settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voltage-column", required=True)
    p.add_argument("--dv-threshold", type=float, required=True)
    p.add_argument("--min-segment-points", type=int, required=True)


def parser() -> argparse.ArgumentParser:
    """The commands' parser as `job.main` builds it (tests parse arguments files with it)."""
    main = JobArgumentParser(prog="python -m nanolab", description=__doc__)
    add_commands(main)
    return main


def add_commands(main: argparse.ArgumentParser) -> None:
    commands = main.add_subparsers(dest="command", required=True)

    p = commands.add_parser("stage", help="stage raw CSVs into Parquet; write the batch manifest")
    add_raw_files(p)
    p.add_argument("--out-root", type=Path, required=True, help="results/02_stage")
    p.add_argument("--output", type=Path, required=True, help="batch manifest Parquet")
    reuse.add_arguments(p)
    p.set_defaults(run=run_stage)

    p = commands.add_parser("segment", help="segment the staged IV runs of one batch")
    p.add_argument("--stage-manifest", type=Path, required=True)
    p.add_argument("--out-root", type=Path, required=True, help="results/03_intermediate")
    add_segmentation_settings(p)
    p.add_argument("--output", type=Path, required=True)
    reuse.add_arguments(p)
    p.set_defaults(run=run_segment)

    p = commands.add_parser("batch", help="stage raw CSVs and segment their IV runs; write both batch manifests")
    add_raw_files(p)
    add_segmentation_settings(p)
    p.add_argument("--stage-root", type=Path, required=True, help="results/02_stage")
    p.add_argument("--segment-root", type=Path, required=True, help="results/03_intermediate")
    p.add_argument("--stage-output", type=Path, required=True, help="stage batch manifest Parquet")
    p.add_argument("--segment-output", type=Path, required=True, help="segment batch manifest Parquet")
    p.add_argument("--points-output", type=Path, required=True, help="the batch's segmented IV rows, Parquet")
    reuse.add_arguments(p)
    p.set_defaults(run=run_batch)

    p = commands.add_parser("manifests", help="merge batch manifests, remove orphaned outputs, summarize")
    p.add_argument("--stage-root", type=Path, required=True, help="results/02_stage")
    p.add_argument("--segment-root", type=Path, required=True, help="results/03_intermediate")
    p.add_argument("--months", type=json.loads, default={}, help="JSON {procedure: months with its analysis and figure jobs}")
    p.add_argument("--stage-manifest", type=Path, required=True)
    p.add_argument("--segment-manifest", type=Path, required=True)
    p.add_argument("--rejects", type=Path, required=True)
    p.add_argument("--summary", type=Path, required=True)
    p.add_argument("--staging-summary", type=Path, required=True, help="CSV: files per day, procedure, status")
    p.add_argument("--segmentation-qc", type=Path, required=True, help="CSV: IV runs without exactly 4 segments")
    p.add_argument("--segment-points", type=Path, required=True, help="CSV: points per segment type")
    p.add_argument("--undated-rejects", type=Path, help="JSON list of manifest rows of the rejects the catalog knows (no batch)")
    p.add_argument("--duplicates", default="[]", help="JSON list of the copies of other raw files (catalog.duplicates)")
    p.add_argument("--duplicates-excluded", action="store_true", help="the analysis leaves the copies out (for the summary)")
    p.add_argument("--stage-batches", type=Path, nargs="*", default=[])
    p.add_argument("--segment-batches", type=Path, nargs="*", default=[])
    p.set_defaults(run=run_manifests)


def main(argv: list[str] | None = None) -> None:
    job.main("python -m nanolab", __doc__, add_commands, lambda args: args.run(args), argv)
