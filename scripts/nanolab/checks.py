"""The output check before each run: which jobs' outputs are damaged, from what the plan says they write.

Runs once while the DAG is built (nanolab.integrity explains the checks themselves). Every job has a
check file among its declared inputs; a damaged job's check file is rewritten newer than its outputs,
so Snakemake's mtime trigger reruns it and what depends on it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import integrity, outputs
from .integrity import Damage, Expected


@dataclass(frozen=True)
class MonthFigures:
    """A figure job: its two declared folders and the segment manifests that say which days it draws."""

    figures: tuple[str, ...]  # (figure folder, runs folder); empty when figures are off
    segment_manifests: tuple[str, ...]


@dataclass(frozen=True)
class ExpectedOutputs:
    batch_manifests: dict[str, str]  # {batch or month manifest: kind}, whose listed files are checked
    merged: tuple[str, ...]  # the manifests job's declared outputs; merged[0] is the merged stage manifest
    batches: tuple[tuple[str, str, str], ...]  # (stage, segments, points) of each planned batch job
    months: dict[str, MonthFigures] = field(default_factory=dict)  # {figure folder: its job}
    declared: dict[str, tuple[str, ...]] = field(default_factory=dict)  # {job output: its declared outputs}, checked as they are


def find_output_damage(expected: ExpectedOutputs, index: Path) -> dict[str, list[Damage]]:
    """{job output: damage} of every job (empty lists for whole jobs)."""
    damage, days_of = integrity.check_and_list(expected.batch_manifests, index)
    merged_stage = expected.merged[0]
    record = str(Path(merged_stage).parent / integrity.OUTPUT_SIZES)
    sizes = integrity.load_output_sizes(record)
    damage[merged_stage] = integrity.check_declared(expected.merged, sizes or {})
    if sizes is None and any(Path(p).exists() for p in expected.merged):
        damage[merged_stage].append(Damage(record, None, None))
    merged_exist = Path(merged_stage).exists()
    for stage, segments, points in expected.batches:
        damage[stage] = damage.get(stage, []) + integrity.check_declared([points], {})  # truncated in place
        # Snakemake rebuilds a missing intermediate file only for a job that runs anyway: a batch job's
        # output deleted, or removed by Snakemake when the job failed, would stay missing behind up-to-date
        # merged manifests. Their job is marked instead; it needs the batch job, which rewrites all three.
        if merged_exist:
            damage[merged_stage] += integrity.find_damage(Expected(path, None) for path in (stage, segments, points))
    for output, month in expected.months.items():
        damage[output] = integrity.check_declared(month.figures, {})
        if month.figures and all(Path(f).is_dir() for f in month.figures):  # one file per day the job draws
            days = {day for path in month.segment_manifests for day in days_of.get(path, [])}
            damage[output] += integrity.find_damage(Expected(path, None) for path in outputs.day_files(*month.figures, sorted(days)))
    for output, files in expected.declared.items():
        damage[output] = integrity.check_declared(files, {})
    return damage


def write_checks(damage: dict[str, list[Damage]], checks_root: str) -> dict[str, list[Damage]]:
    """Every job's check file written, the damaged ones named on stderr; returns only the damaged."""
    for output, found in damage.items():
        integrity.write_check(integrity.check_file(checks_root, output), found)
        if found:
            print(integrity.damage_line(output, found), file=sys.stderr)
    return {output: found for output, found in damage.items() if found}
