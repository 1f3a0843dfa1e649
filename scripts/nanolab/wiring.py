"""What `workflow/rules/common.smk` builds once while the DAG is built, before any rule is read: the plan
(`nanolab.plan`), every job's files (arguments files, raw-file lists, the procedure schema's JSON copy,
the catalog's rejects) and the output check's check files. One call, `build`, writes them and returns a
frozen `Wiring`; the input functions only read it and write nothing.

Each job's arguments (settings, raw-file list, code fingerprint, library versions) are one input file
named by its content (nanolab.jobargs): new settings, raw files, code or libraries make a new file and
rerun exactly that job. The rules have no params of their own: comparing params makes Snakemake import
pandas (~0.7 s a run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from . import arguments, catalog, changes, checks, codehash, integrity, jobargs, layout
from .catalog import RawFile
from .plan import REUSE_CODE, RULE_COMMANDS, Plan, Stop, existing_other_days, notes, raw_list_name, rule_libraries
from .procedures import ANALYSED, Procedure
from .schema import read_yaml, schema_copy
from .versions import library_versions

LISTS = Path(".snakemake/nanolab")
CHECKS = f"{LISTS}/checks"
LISTED_INDEX = Path(CHECKS, "listed_outputs.json")


def procedure_schema(schema_file: str) -> tuple[object, str]:
    """The procedure schema as parsed, and the JSON copy of it the batch jobs read (named by its content:
    no PyYAML import in each job, ~15 ms); or a stop naming the file and the setting."""
    try:
        document = read_yaml(schema_file)
        return document, str(schema_copy(document, LISTS / "schema"))
    except (OSError, ValueError, TypeError) as error:
        raise Stop(f"procedure_schema {schema_file} cannot be read ({error}); set procedure_schema in config.yaml") from None


def code_versions() -> dict[str, str]:
    """{command or module: fingerprint of the package modules it runs}, cached while the package is unchanged."""
    modules = {module for kinds in REUSE_CODE.values() for module in kinds.values()}
    return codehash.code_versions(sorted(set(RULE_COMMANDS.values()) | modules), LISTS / "code_versions.json")


def all_library_versions() -> dict[str, dict[str, str]]:
    """{rule: {library: version}}: recorded by a successful run, compared by the next."""
    return {rule: library_versions(rule_libraries(rule)) for rule in RULE_COMMANDS}


@dataclass(frozen=True)
class Wiring:
    """The plan, and every job's files as written: what the rules' input functions read."""

    config: Mapping[str, Any]
    plan: Plan
    schema_copy: str
    undated: str  # the catalog's rejects' manifest rows, for the manifests job
    args: Mapping[tuple[str, str], str]  # (rule, label) -> arguments file, every job of the tree
    raw_lists: Mapping[tuple[str, str], str]  # (day, label) -> the batch's raw-file list

    # ---- what the rules declare and read -------------------------------------------------------

    def stage_args(self, day: str, label: str) -> str:
        return self.args[("stage_batch", f"{day}_{label}")]

    def shared_args(self, rule: str) -> str:
        return self.args[(rule, "all")]

    def batch_manifests(self, position: int) -> list[str]:
        """This run's batch jobs' stage (0) or segment (1) manifests, and in a days=… run the other days'
        as they are on disk."""
        current = [layout.batch_outputs(day, label)[position] for day, label in self.plan.selected_batches]
        root = (layout.STAGE, layout.SEGMENTS)[position]
        return current + existing_other_days(root, self.plan.days)

    def month_batches(self, procedure: Procedure, month: str, position: int) -> list[str]:
        """The stage (0), segment (1) manifests or points (2) files of the month's batches holding the procedure's files."""
        return [layout.batch_outputs(day, label)[position] for day, label in self.plan.month_batches(procedure.name, month)]

    def analysis_manifests(self, procedure: Procedure) -> list[str]:
        return [layout.analysis_manifest(procedure.slug, month) for month in self.plan.months(procedure.name)]

    def all_analysis_manifests(self, procedure: Procedure) -> list[str]:
        """Every month's, a days=… run's other months as they are on disk: the job covering every day has
        the full run's inputs (else that run would redo it)."""
        return with_other_months(self.analysis_manifests(procedure), layout.analysis_manifest(procedure.slug, "*"), self.plan.days)

    def figures(self, procedure: Procedure) -> list[str]:
        """A figure and a runs table folder per month with the procedure's runs, when the config asks."""
        if not self.config["figures"]:
            return []
        return [folder for month in self.plan.months(procedure.name) for folder in layout.figure_folders(procedure.slug, month)]

    def further(self, procedure: Procedure) -> list[str]:
        """The further analysis' declared outputs (one job over every day), figures only when asked."""
        if not self.plan.months(procedure.name):
            return []
        return [path for job in procedure.further if self.config["figures"] or not job.draws for path in layout.further_outputs(job.rule)]

    @cached_property
    def final_outputs(self) -> list[str]:
        produced = list(layout.MANIFESTS.values())
        for procedure in ANALYSED.values():
            produced += self.analysis_manifests(procedure) + self.figures(procedure) + self.further(procedure)
        return produced

    def landing_tables(self, procedure: Procedure) -> list[str]:
        """The month tables the landing page and its sortable tables are made from."""
        months = self.plan.months(procedure.name)
        tables = with_other_months([layout.month_table(procedure.slug, m) for m in months], layout.month_table(procedure.slug, "*"), self.plan.days)
        if self.config["figures"]:
            runs = [layout.figure_folders(procedure.slug, m)[1] for m in months]
            tables += with_other_months(runs, layout.figure_folders(procedure.slug, "*")[1], self.plan.days)
        return tables

    def checked(self, output: str) -> str:
        """The check file of the job writing `output` (written by `check_outputs`)."""
        return integrity.check_file(CHECKS, output)

    # ---- the output check ---------------------------------------------------------------------

    def batch_manifest_kinds(self) -> dict[str, str]:
        """{batch manifest: kind} of every job whose manifest lists per-run or per-day files."""
        kinds = dict.fromkeys(self.batch_manifests(0), "stage") | dict.fromkeys(self.batch_manifests(1), "segment")
        for procedure in ANALYSED.values():
            kinds |= dict.fromkeys(self.analysis_manifests(procedure), "analysis")
            if self.plan.months(procedure.name):  # its further analysis' manifest lists per-day tables too
                kinds |= {layout.further_outputs(job.rule)[0]: "analysis" for job in procedure.further if not job.draws}
        return kinds

    def expected_outputs(self) -> checks.ExpectedOutputs:
        """What every planned job writes, as the output check sees it."""
        months, declared = {}, {}
        for procedure in ANALYSED.values():
            for month in self.plan.months(procedure.name):
                folders = layout.figure_folders(procedure.slug, month)
                months[folders[0]] = checks.MonthFigures(folders if self.config["figures"] else (), tuple(self.month_batches(procedure, month, 1)))
            for job in procedure.further:
                if job.draws and (outputs := [p for p in layout.further_outputs(job.rule) if p in self.final_outputs]):
                    declared[outputs[0]] = tuple(outputs)
        batches = tuple(layout.batch_outputs(day, label) for day, label in self.plan.selected_batches)
        return checks.ExpectedOutputs(self.batch_manifest_kinds(), tuple(layout.MANIFESTS.values()), batches, months, declared)

    def check_outputs(self) -> None:
        """Once, before any job, in the main snakemake process: every job's check file written (a damaged
        job's newer than its outputs, so Snakemake reruns it), damaged jobs named on stderr."""
        checks.write_checks(checks.find_output_damage(self.expected_outputs(), LISTED_INDEX), CHECKS)


def with_other_months(current: list[str], pattern: str, days: frozenset[str]) -> list[str]:
    """This run's month files, and in a days=… run the other months' as they are on disk."""
    others = sorted(str(p) for p in Path().glob(pattern)) if days else []
    return current + [p for p in others if p not in current]


def build(config: Mapping[str, Any], plan: Plan, copy: str, workflow_dir: str) -> Wiring:
    """Write every job's files for the whole raw tree (content-named: only new ones are written) and return
    the wiring the input functions read (`copy`: the procedure schema's JSON copy, from `procedure_schema`)."""
    duplicates = catalog.duplicates(list(plan.catalog), plan.raw_root)
    rows = json.dumps(plan.reject_rows())
    undated = str(jobargs.write_once(LISTS / "undated" / jobargs.content_name(len(plan.rejects), rows), rows))
    raw_lists = {key: str(write_raw_list(plan.raw_root, key, files)) for key, files in plan.batches.items()}
    versions, libraries = code_versions(), all_library_versions()
    jobs = arguments.job_args(config, plan, duplicates, {key: Path(path) for key, path in raw_lists.items()}, undated, workflow_dir)
    args = {}
    for (rule, label), job_arguments in jobs.items():
        comment = arguments.file_comment(rule, label, versions[RULE_COMMANDS[rule]], libraries[rule])
        path, text = jobargs.args_file(LISTS / "args", rule, label, comment, [*job_arguments, *arguments.code_args(rule, versions)])
        args[(rule, label)] = str(jobargs.write_once(path, text))
    return Wiring(config, plan, copy, undated, args, raw_lists)


def write_raw_list(raw_root: Path, key: tuple[str, str], files: list[RawFile]) -> Path:
    """A batch's raw files (absolute paths), for its staging job; named by the batch's content, so it is
    written only when new (checked first: ~0.1 s of path joins at lab scale)."""
    path = LISTS / "raw_lists" / raw_list_name(*key, files)
    return path if path.exists() else jobargs.write_once(path, arguments.raw_list_text(raw_root, files))


def remove_stale_lists(wiring: Wiring) -> None:
    """onsuccess: lists and arguments files no job of the current plan uses."""
    keep = {*wiring.raw_lists.values(), wiring.undated, wiring.schema_copy, *wiring.args.values()}
    patterns = {"raw_lists": "*.json", "undated": "*.json", "args": "*/*.args", "schema": "*.json"}
    jobargs.remove_others(LISTS, patterns, keep)


def change_lines(wiring: Wiring, previous: dict | None) -> list[str]:
    """What changed since results/ was last built (raw tree, code, libraries), the plan's notes."""
    plan = wiring.plan
    lines = changes.change_lines(
        previous,
        {f.source_file: f.content_hash for f in plan.catalog},
        str(plan.raw_root),
        codehash.module_hashes(),
        lambda: {rule: codehash.rule_closure(command) for rule, command in RULE_COMMANDS.items()},
        all_library_versions(),
    )
    return lines + notes(plan)


def record_build(wiring: Wiring, results: Path, previous: dict | None) -> None:
    """onsuccess: the raw tree, code and libraries results/ now reflect; what the manifests just written
    list (read now rather than by the next run: a no-op then reads no Parquet); stale lists removed."""
    files = {f.source_file: [f.content_hash, f.date] for f in wiring.plan.catalog}
    document = changes.tree_after_run(previous, files, codehash.module_hashes(), wiring.plan.days, all_library_versions())
    if document != previous:
        changes.save_tree(results, document)
    integrity.read_listed(wiring.batch_manifest_kinds(), LISTED_INDEX)
    remove_stale_lists(wiring)
