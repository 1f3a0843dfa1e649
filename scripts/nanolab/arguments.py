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
from .plan import ANALYSIS, REPORT, REUSE_CODE, RULE_COMMANDS, Plan
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


def excluded_runs_args(config: Config, duplicates: Duplicates) -> Args:
    """For the analysis jobs, only with analysis.exclude_duplicates: the copies to leave out."""
    if not config["analysis"]["exclude_duplicates"]:
        return []
    return ["--exclude-runs", json.dumps(duplicates)]


def analysis_args(config: Config, duplicates: Duplicates) -> Args:
    analysis = config["analysis"]
    return [
        "--poly-orders",
        *analysis["poly_orders"],
        "--v-max-decimals",
        analysis["v_max_decimals"],
        "--hysteresis-decimals",
        analysis["hysteresis_decimals"],
        "--group-by",
        analysis["group_by"],
        *excluded_runs_args(config, duplicates),
    ]


def duplicates_args(config: Config, duplicates: Duplicates) -> Args:
    """For the manifests job: every copy and the file it copies (marked duplicate_of and counted)."""
    excluded = ["--duplicates-excluded"] if config["analysis"]["exclude_duplicates"] else []
    return ["--duplicates", json.dumps(duplicates), *excluded]


def manifests_args(config: Config, plan: Plan, undated_rejects: str, duplicates: Duplicates) -> Args:
    """The analysis root, the catalog's rejects' rows (no batch lists them) and the months the whole tree has."""
    return [
        "--analysis-root",
        ANALYSIS,
        "--undated-rejects",
        undated_rejects,
        "--iv-months",
        *plan.all_iv_months,
        *duplicates_args(config, duplicates),
    ]


def landing_args(config: Config, raw_root: Path, workflow_dir: str) -> Args:
    """The report's first page: the raw tree and code it names, and the tables it makes sortable."""
    figures = ["--runs-root", f"{REPORT}/iv_day_runs", "--figures-root", f"{REPORT}/iv_days"]
    return [
        "--raw-root",
        raw_root,
        "--timezone",
        config["timezone"],
        "--workflow-dir",
        workflow_dir,
        "--fits-root",
        f"{REPORT}/iv_fits",
        *(figures if config["figures"] else []),
    ]


def lab_analysis_args(config: Config) -> Args:
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


def shared_args(config: Config, plan: Plan, duplicates: Duplicates, undated_rejects: str, workflow_dir: str) -> dict[str, Args]:
    """{rule: arguments} of the rules whose jobs all take the same arguments (one file per rule).
    A new rule adds its line here and its command to nanolab.plan.RULE_COMMANDS."""
    return {
        "analyse_month": analysis_args(config, duplicates),
        "iv_figures": ["--timezone", config["timezone"]],
        "manifests": manifests_args(config, plan, undated_rejects, duplicates),
        "landing_page": landing_args(config, plan.raw_root, workflow_dir),
        "lab_analysis": lab_analysis_args(config),
        "lab_figures": ["--order", config["lab_analysis"]["history_order"]],
    }


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
