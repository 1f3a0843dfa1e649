"""The whole pipeline in one Python process, without Snakemake: the benchmark's baseline, and the
reference the tests compare the batched workflow against. Same core functions, same outputs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from . import batch, catalog, iv_segments, manifest, stage
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
    files = [raw_root / f.source_file for f in catalog.scan(raw_root, config["timezone"])][index::count]
    stage_settings = stage.StageSettings(raw_root, results / "02_stage", load_schema(schema_file), config["timezone"])
    segmentation = config["segmentation"]
    segment_settings = iv_segments.SegmentSettings(
        results / "03_intermediate",
        segmentation["voltage_column"],
        segmentation["dv_threshold"],
        segmentation["min_segment_points"],
    )
    if fused:
        staged, segmented, _ = batch.process_batch(files, stage_settings, segment_settings)
    else:
        staged = stage.stage_files(files, stage_settings)
        segmented = iv_segments.segment_runs(staged, segment_settings)
    return (
        manifest.sort_manifest(staged, stage.MANIFEST_SCHEMA),
        manifest.sort_manifest(segmented, iv_segments.MANIFEST_SCHEMA),
    )
