"""The analysed procedures: one entry each says what the workflow does with that procedure's runs.

The plan (which months each procedure's jobs cover), the rules (each procedure's own rules file,
`workflow/rules/procedures/<slug>.smk`, included for each entry), the jobs' arguments, the output check,
the pruning of days and months gone, `load_analysis`, the landing page and the report's categories
derive from this registry. Adding a procedure's analysis is its own modules and rules file, an entry
here, its config section in the schema, tests and docs.

Read at DAG time and by the manifests, landing and read modules: it names the job modules, it never
imports them (a figure module imports matplotlib).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Config = Mapping[str, Any]  # the config after the schema check (typed values, defaults filled in)
Duplicates = list[dict[str, str]]  # catalog.duplicates: every copy and the file it copies


def no_arguments(config: Config, duplicates: Duplicates) -> list[object]:
    return []


@dataclass(frozen=True)
class Job:
    """A rule of a procedure and the job module its shell runs (`python -m <module> @args …`)."""

    rule: str
    module: str  # its code fingerprint is the arguments file's and the reuse keys' (`--code {kind: …}`)
    kind: str  # the name its reuse engine asks `--code` for
    arguments: Callable[[Config, Duplicates], list[object]] = no_arguments  # its settings, from the config
    draws: bool = False  # a figure job: matplotlib's version decides its bytes; none when figures are off


@dataclass(frozen=True)
class Procedure:
    name: str  # as the raw header's #Procedure names it: "IV"
    slug: str  # in paths, rule names and its rules file: "iv" (04_report/iv_days/, analyse_iv)
    title: str  # in the report's categories: "IV" ("IV analysis", "IV days")
    day_kinds: tuple[str, ...]  # its day tables, 04_analysis/<kind>/date=<d>/part-000.parquet
    analysis: Job  # its day analysis: one job per month with runs of it
    figures: Job  # a figure and a runs table per day: one job per month
    further_kinds: tuple[str, ...] = ()  # day tables of its further analysis (one job over every day)
    further: tuple[Job, ...] = ()  # the rules of that further analysis and its figures
    timeline: tuple[str, ...] = ()  # the columns it adds to a chip's timeline (IV: chip_history)
    reads: tuple[str, ...] = ()  # other procedures its analysis reads (IV's lab analysis: the laser calibrations)

    @property
    def jobs(self) -> tuple[Job, ...]:
        return (self.analysis, self.figures, *self.further)

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every day table kind of this procedure under 04_analysis/."""
        return (*self.day_kinds, *self.further_kinds)


# ---- IV: drain-source sweeps, segmented; statistics, fits and hysteresis per day (lab-analysis.md) ----


def iv_analysis_arguments(config: Config, duplicates: Duplicates) -> list[object]:
    analysis = config["analysis"]
    excluded = ["--exclude-runs", json.dumps(duplicates)] if analysis["exclude_duplicates"] else []
    return [
        "--poly-orders",
        *analysis["poly_orders"],
        "--v-max-decimals",
        analysis["v_max_decimals"],
        "--hysteresis-decimals",
        analysis["hysteresis_decimals"],
        "--group-by",
        analysis["group_by"],
        *excluded,
    ]


def lab_analysis_arguments(config: Config, duplicates: Duplicates) -> list[object]:
    lab = config["lab_analysis"]
    return [
        "--reference-v-max",
        lab["reference_v_max"],
        "--channel-length-um",
        lab["channel_length_um"],
        "--channel-width-um",
        lab["channel_width_um"],
        "--chip-geometry",
        json.dumps(lab["chips"], sort_keys=True),
        "--beam-to-sample-ratio",
        lab["beam_to_sample_ratio"],
        "--history-order",
        lab["history_order"],
    ]


IV = Procedure(
    name="IV",
    slug="iv",
    title="IV",
    day_kinds=("iv_stats", "iv_fits", "hysteresis", "hysteresis_summary", "hysteresis_peaks", "iv_group_runs"),
    analysis=Job("analyse_iv", "nanolab.analysis_job", "analysis", iv_analysis_arguments),
    figures=Job("draw_iv", "nanolab.plots", "figures", lambda config, _: ["--timezone", config["timezone"]], draws=True),
    further_kinds=("hysteresis_subtracted", "coercive_field", "chip_history"),
    further=(
        Job("lab_analysis", "nanolab.lab_analysis_job", "lab_analysis", lab_analysis_arguments),
        Job("lab_figures", "nanolab.lab_plots", "lab_figures", lambda config, _: ["--order", config["lab_analysis"]["history_order"]], draws=True),
    ),
    timeline=("resistance_MOhm", "hysteresis_mean_nA", "e_coercive_pos_V_cm", "e_coercive_neg_V_cm"),
    reads=("LaserCalibration",),
)

ANALYSED: dict[str, Procedure] = {procedure.name: procedure for procedure in (IV,)}
JOBS: dict[str, Job] = {job.rule: job for procedure in ANALYSED.values() for job in procedure.jobs}


def used() -> set[str]:
    """The procedures some analysis reads: the analysed ones and those their analyses read."""
    return {name for procedure in ANALYSED.values() for name in (procedure.name, *procedure.reads)}


def analysis_kinds() -> tuple[str, ...]:
    """Every day table kind of every analysed procedure (what `load_analysis` reads)."""
    return tuple(kind for procedure in ANALYSED.values() for kind in procedure.kinds)
