"""The lab's further analysis job (lab-analysis-2.md §3-§5): per day, from the day's analysis tables,
backward-subtracted hysteresis, coercive fields with laser power and the chip history rows, one Parquet per
day and kind `results/04_analysis/<kind>/date=<d>/part-000.parquet`; and the chip history of every day
as one CSV for the report.

One job for every day (its few tables per day are small): a day whose tables, runs, calibrations, settings
and code are unchanged keeps its outputs (`_lab_records/date=<d>.json`), so an edited raw file recomputes
only its day.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from . import job, reuse
from .analysis import GROUP_RUNS
from .analysis_job import ANALYSIS_SCHEMA, write_day_tables
from .atomic import Written
from .history import history_rows
from .io import read_parquet, write_parquet_atomic
from .laser import PowerFinder, calibrations_of, read_runs, with_power
from .manifest import write_csv
from .subtraction import COERCIVE, SUBTRACTED, Geometry, coercive_day, subtract_day

log = logging.getLogger("nanolab")
HISTORY = "chip_history"
LAB_KINDS = (SUBTRACTED, COERCIVE, HISTORY)
INPUT_KINDS = ("hysteresis", "iv_fits", "hysteresis_summary", "hysteresis_peaks", GROUP_RUNS)


@dataclass(frozen=True)
class LabSettings:
    reference_v_max: float | None  # None: each chip's largest V_max group of the day
    geometry: Geometry
    history_order: int


def day_inputs(analysis_manifests: list[Path]) -> dict[str, dict[str, str]]:
    """{day: {kind: table path}} from the months' analysis manifests."""
    days: dict[str, dict[str, str]] = {}
    for path in analysis_manifests:
        for row in read_parquet(path).to_pylist():
            days.setdefault(row["date"], {})[row["kind"]] = row["output"]
    return dict(sorted(days.items()))


def analyse_day(day: str, tables: dict[str, pa.Table], runs: dict[str, dict], finder: PowerFinder, settings: LabSettings) -> dict[str, pa.Table]:
    subtracted = subtract_day(tables["hysteresis"], settings.reference_v_max, settings.geometry)
    coercive = with_power(coercive_day(subtracted, settings.geometry), tables[GROUP_RUNS], runs, finder, day)
    history = history_rows(day, tables["iv_fits"], tables["hysteresis_summary"], tables["hysteresis_peaks"], coercive, settings.history_order)
    return {SUBTRACTED: subtracted, COERCIVE: coercive, HISTORY: history}


def run(
    analysis_manifests: list[Path],
    stage_manifest: Path,
    out_root: Path,
    settings: LabSettings,
    engine: reuse.Engine = reuse.IN_PROCESS,
    records_dir: Path | None = None,
) -> tuple[pa.Table, pa.Table]:
    """(manifest rows per day and kind, the chip history of every day); a day made before from the same
    inputs, settings and code keeps its tables (`engine`)."""
    runs_table = read_runs(stage_manifest)
    calibrations = calibrations_of(runs_table)
    finder = PowerFinder(calibrations, settings.geometry.beam_to_sample_ratio)
    iv = runs_table.filter(pc.equal(runs_table["proc"], "IV")).to_pylist()
    runs = {row["run_id"]: row for row in iv}
    settings_of = ("run_id", "start_dt", "laser_toggle", "laser_voltage_V", "wavelength_nm")
    runs_of_day: dict[str, list[str]] = {}  # grouped once: a scan of every run per day cost days x runs
    for row in iv:
        runs_of_day.setdefault(row["date"], []).append(str([row[name] for name in settings_of]))
    rows, histories, computed = [], [], 0
    fresh: dict[str, pa.Table] = {}  # the history of each day computed now, as written (not read back)
    records = reuse.Folder(records_dir or out_root / "_lab_records")
    for day, inputs in day_inputs(analysis_manifests).items():
        if any(kind not in inputs for kind in INPUT_KINDS):
            log.warning("%s: analysis tables missing (%s), skipped", day, ", ".join(k for k in INPUT_KINDS if k not in inputs))
            continue
        day_runs = sorted(runs_of_day.get(day, []))
        known = [(c.run_id, str(c.start), c.wavelength_nm, c.output_bytes) for c in calibrations if c.date <= day]
        parts = [reuse.content_id(Path(inputs[kind])) for kind in INPUT_KINDS]
        record_key = engine.key(repr(settings), day, *parts, repr(day_runs), repr(known))
        make = partial(analyse_and_write, day, inputs, runs, finder, settings, out_root, fresh)
        row, made = engine.reuse_or_make(records, f"date={day}", record_key, make, day)
        rows += row["outputs"]
        histories.append(fresh.pop(day) if made else read_parquet(out_root / HISTORY / f"date={day}" / "part-000.parquet"))
        computed += made
    log.info("%d days: %d computed, %d unchanged", len(histories), computed, len(histories) - computed)
    history = pa.concat_tables(histories, promote_options="permissive") if histories else pa.table({"date": pa.array([], pa.string())})
    return pa.Table.from_pylist(rows, schema=ANALYSIS_SCHEMA), history


def analyse_and_write(
    day: str,
    inputs: dict[str, str],
    runs: dict[str, dict],
    finder: PowerFinder,
    settings: LabSettings,
    out_root: Path,
    histories: dict[str, pa.Table],
) -> tuple[dict, list[Written]]:
    """The day's lab tables written; its history also kept in `histories` for the run's history table."""
    tables = analyse_day(day, {kind: read_parquet(inputs[kind]) for kind in INPUT_KINDS}, runs, finder, settings)
    histories[day] = tables[HISTORY]
    return write_day_tables(tables, out_root, day, LAB_KINDS)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-root", type=Path, required=True, help="results/04_analysis")
    parser.add_argument("--manifest", type=Path, required=True, help="this job's manifest (Parquet): one row per day and kind")
    parser.add_argument("--history-table", type=Path, required=True, help="CSV: the chip history of every day, for the report")
    parser.add_argument("--stage-manifest", type=Path, required=True, help="the merged stage manifest (runs' laser settings, calibrations)")
    parser.add_argument("--reference-v-max", type=float, default=0.0, help="V_max of the reference group (V); 0 = each chip's largest")
    parser.add_argument("--channel-length-um", type=float, required=True)
    parser.add_argument("--channel-width-um", type=float, required=True)
    parser.add_argument("--chip-geometry", type=json.loads, default={}, help='JSON: {"Alisson 67": {"channel_length_um": 96}}')
    parser.add_argument("--beam-to-sample-ratio", type=float, required=True)
    parser.add_argument("--history-order", type=int, required=True)
    parser.add_argument("--records-dir", type=Path, help="one reuse record per day (default: <out-root>/_lab_records)")
    parser.add_argument("analysis_manifests", type=Path, nargs="*", help="the months' analysis manifests")


def run_job(args: argparse.Namespace) -> None:
    geometry = Geometry(args.channel_length_um, args.channel_width_um, args.beam_to_sample_ratio, args.chip_geometry)
    reference = None if args.reference_v_max == 0 else args.reference_v_max
    settings = LabSettings(reference, geometry, args.history_order)
    engine = job.engine(args, "lab_analysis")
    manifest, history = run(args.analysis_manifests, args.stage_manifest, args.out_root, settings, engine, args.records_dir)
    write_parquet_atomic(manifest, args.manifest)
    write_csv(history, args.history_table)


def main(argv: list[str] | None = None) -> None:
    job.main("python -m nanolab.lab_analysis_job", __doc__, arguments, run_job, argv, reuses=True)


if __name__ == "__main__":
    main()
