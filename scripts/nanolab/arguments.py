"""Each job's arguments: pure functions of the typed config, the plan and the few paths the jobs read.

`workflow/rules/common.smk` writes them into content-named arguments files (`nanolab.jobargs`) that
the rules declare as inputs, so a setting reruns exactly the jobs whose arguments hold it. No job
imports this module: changing it changes no job's code fingerprint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .catalog import RawFile
from .layout import figure_folders, month_table, records_folder
from .plan import REUSE_CODE, RULE_COMMANDS, Plan
from .procedures import ANALYSED, IV, JOBS, Job
from .versions import describe_versions

Config = Mapping[str, Any]  # the config after the schema check (typed values, defaults filled in)
Args = list[object]  # one argument per line of the file (str() of each)
Duplicates = list[dict[str, str]]  # catalog.duplicates: every copy and the file it copies


def file_comment(rule: str, label: str, code_version: str, versions: dict[str, str]) -> str:
    """An arguments file's first line: which job it is for and what made it (its code, its libraries)."""
    return f"{rule} {label}; code of {RULE_COMMANDS[rule]}: {code_version}; {describe_versions(versions)}"


def code_args(rule: str, code_versions: Mapping[str, str]) -> Args:
    """A reusing job's `--code`: {kind: fingerprint of the module computing that output} (`REUSE_CODE`)."""
    kinds = REUSE_CODE.get(rule)
    return ["--code", json.dumps({kind: code_versions[module] for kind, module in kinds.items()}, sort_keys=True)] if kinds else []


def raw_list_text(raw_root: Path, files: list[RawFile]) -> str:
    """A batch's raw-file list for its staging job (`--raw-files-from`): absolute paths, JSON."""
    return json.dumps([str(raw_root / f.source_file) for f in files])


def stage_args(config: Config, raw_root: Path, raw_list: Path) -> Args:
    """A batch job's: where its raw files are, how to date and segment them, the list of its files."""
    segmentation = config["segmentation"]
    return [
        "--raw-root",
        raw_root,
        "--timezone",
        config["timezone"],
        "--voltage-column",
        segmentation["voltage_column"],
        "--dv-threshold",
        segmentation["dv_threshold"],
        "--min-segment-points",
        segmentation["min_segment_points"],
        "--raw-files-from",
        raw_list,
    ]


def duplicates_args(config: Config, duplicates: Duplicates) -> Args:
    """For the manifests job: every copy and the file it copies (marked duplicate_of and counted)."""
    excluded = ["--duplicates-excluded"] if config["analysis"]["exclude_duplicates"] else []
    return ["--duplicates", json.dumps(duplicates), *excluded]


def manifests_args(config: Config, plan: Plan, undated_rejects: str, duplicates: Duplicates) -> Args:
    """The catalog's rejects' rows (no batch lists them) and each analysed procedure's months in the whole
    tree (what the manifests job keeps)."""
    months = {proc: plan.all_months(proc) for proc in ANALYSED}
    return [
        "--undated-rejects",
        undated_rejects,
        "--months",
        json.dumps(months, sort_keys=True),
        *duplicates_args(config, duplicates),
    ]


def landing_args(config: Config, raw_root: Path, workflow_dir: str) -> Args:
    """The report's first page: the raw tree and code it names, and the tables it makes sortable."""
    day_figures, day_runs = (folder.rsplit("/", 1)[0] for folder in figure_folders(IV.slug, "*"))
    figures = ["--runs-root", day_runs, "--figures-root", day_figures]
    return [
        "--raw-root",
        raw_root,
        "--timezone",
        config["timezone"],
        "--workflow-dir",
        workflow_dir,
        "--fits-root",
        month_table(IV.slug, "*").rsplit("/", 1)[0],
        *(figures if config["figures"] else []),
    ]


def shared_args(config: Config, plan: Plan, duplicates: Duplicates, undated_rejects: str, workflow_dir: str) -> dict[str, Args]:
    """{rule: arguments} of the rules whose jobs all take the same arguments (one file per rule): the
    manifests and landing jobs, and every analysed procedure's jobs (their registry entries say how)."""
    return {
        "manifests": manifests_args(config, plan, undated_rejects, duplicates),
        "landing_page": landing_args(config, plan.raw_root, workflow_dir),
    } | {rule: [*job.arguments(config, duplicates), *records_args(job)] for rule, job in JOBS.items()}


def records_args(job: Job) -> Args:
    """An analysis job's reuse records folder, one per rule (a figure job keeps its drawings beside its figures)."""
    return [] if job.draws else ["--records-dir", records_folder(job.rule)]


def job_args(
    config: Config,
    plan: Plan,
    duplicates: Duplicates,
    raw_lists: Mapping[tuple[str, str], Path],
    undated_rejects: str,
    workflow_dir: str,
) -> dict[tuple[str, str], Args]:
    """{(rule, label): arguments} of every job of the whole raw tree, whichever jobs this run needs:
    a batch job per (day, label) of the plan (label `<day>_<batch>`), one `all` per shared rule."""
    jobs = {("stage_batch", f"{day}_{label}"): stage_args(config, plan.raw_root, raw_lists[(day, label)]) for day, label in plan.batches}
    shared = shared_args(config, plan, duplicates, undated_rejects, workflow_dir)
    return jobs | {(rule, "all"): args for rule, args in shared.items()}
