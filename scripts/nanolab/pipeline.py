"""The whole pipeline in one Python process, without Snakemake: the benchmark's baseline, and the
reference the tests compare the batched workflow against. Same core functions, same plan (nanolab.plan:
which files stage, which are rejects the catalog knows), same outputs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from . import batch, catalog, iv_segments, manifest, plan, stage
from .schema import load_schema


def run_in_process(
    raw_root: Path,
    results: Path,
    config: dict,
    schema_file: Path,
    shard: tuple[int, int] = (0, 1),
    fused: bool = False,
) -> tuple[pa.Table, pa.Table]:
    """Stage and segment every raw file (or shard k of n of them), return the stage and segment manifests.

    The straightforward way (default) stages every file, then segments every IV run from its staged
    file: the reference the workflow's one-pass jobs are tested against. `fused` runs those jobs'
    one pass (`batch.process_batch`) instead: the benchmark's measure of the work itself."""
    index, count = shard
    schema = load_schema(schema_file)
    # as the workflow plans it: rejects the catalog knows get their row from it, the others are staged
    staged_files, rejects = plan.classify(catalog.scan(raw_root, config["timezone"])[index::count], frozenset(schema.procedures))
    files = [raw_root / f.source_file for f in staged_files]
    stage_settings = stage.StageSettings(raw_root, results / "02_stage", schema, config["timezone"])
    segmentation = config["segmentation"]
    segment_settings = iv_segments.SegmentSettings(
        results / "03_intermediate",
        segmentation["voltage_column"],
        segmentation["dv_threshold"],
        segmentation["min_segment_points"],
    )
    if fused:
        staged, segmented, _ = batch.process_batch(files, stage_settings, segment_settings, Path(f"shard={index}-of-{count}.parquet"))
    else:
        staged = stage.stage_files(files, stage_settings)
        segmented = iv_segments.segment_runs(staged, segment_settings)
    staged = pa.concat_tables([staged, pa.Table.from_pylist(catalog.reject_rows(rejects), schema=stage.MANIFEST_SCHEMA)])
    return (
        manifest.sort_manifest(staged, stage.MANIFEST_SCHEMA),
        manifest.sort_manifest(segmented, iv_segments.MANIFEST_SCHEMA),
    )
