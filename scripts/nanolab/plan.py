"""The plan Snakemake runs from: built once at DAG time from the config and the raw catalog.

Which raw files stage (and in which batch, day and month job) and which are rejects the catalog
already knows (a manifest row, no job); the selected days; each rule's command and the library
versions its outputs depend on. `workflow/rules/common.smk` builds one `Plan` and its input functions
read it; nothing else re-derives these facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from . import catalog
from .catalog import RawFile
from .procedures import ANALYSED, JOBS

# The package command each rule's shell runs (`python -m <command> @args …`): its code fingerprint and
# the libraries below go into the job's arguments file. The analysed procedures' rules come from their
# registry entries (nanolab.procedures).
RULE_COMMANDS = {
    "stage_batch": "nanolab batch",
    "manifests": "nanolab manifests",
    "landing_page": "nanolab.landing",
} | {rule: job.module for rule, job in JOBS.items()}
# The module computing each kind of output a rule's jobs reuse: a reuse key holds the fingerprint of that
# module and what it imports (`codehash`), carried by the arguments file, so an edit to segmentation
# re-segments without restaging, and an edit to a DAG-time module (plan, catalog) redoes no output.
REUSE_CODE = {"stage_batch": {"stage": "nanolab.stage", "segments": "nanolab.iv_segments"}} | {
    rule: {job.kind: job.module} for rule, job in JOBS.items()
}
# Libraries whose version decides the bytes a rule writes (Python itself always counts).
LIBRARIES = ("pyarrow", "numpy")
RULE_LIBRARIES = {rule: (*LIBRARIES, "matplotlib") for rule, job in JOBS.items() if job.draws}


class Stop(SystemExit):
    """A stop before any job: the message names the problem and the fix, without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"nanolab: stopped before any job: {message}")


def rule_libraries(rule: str) -> tuple[str, ...]:
    return RULE_LIBRARIES.get(rule, LIBRARIES)


def schema_procedures(document: object) -> frozenset[str]:
    """The procedure names of a procedure schema document (its `procedures` mapping)."""
    try:
        return frozenset(document["procedures"])  # type: ignore[index]
    except (TypeError, KeyError) as error:
        raise Stop(f"the procedure schema has no 'procedures' mapping ({error}); check procedure_schema in config.yaml") from None


@dataclass(frozen=True)
class Plan:
    """What this run plans, from the whole raw tree: batches of files that stage, rejects the catalog
    knows (with their reason), and the days a `days=…` run selects (empty: every day)."""

    raw_root: Path
    results: Path  # absolute: the exit hooks run after Snakemake left the --directory folder
    catalog: tuple[RawFile, ...]
    batches: dict[tuple[str, str], list[RawFile]]  # (day, label) -> files, the whole tree's
    rejects: tuple[tuple[RawFile, str], ...]  # (file, reason): a manifest row each, no job
    days: frozenset[str]

    @cached_property
    def selected_batches(self) -> dict[tuple[str, str], list[RawFile]]:
        return {key: files for key, files in self.batches.items() if not self.days or key[0] in self.days}

    @cached_property
    def procedure_batches(self) -> dict[str, list[tuple[str, str]]]:
        """{procedure: batches holding its files that stage}: their days are its analysis and figure jobs' months."""
        procs = {proc: [] for proc in ANALYSED}
        for key, files in self.batches.items():
            for proc in {f.proc for f in files} & procs.keys():
                procs[proc].append(key)
        return procs

    def all_months(self, proc: str) -> list[str]:
        """Months with the procedure's analysis and figure jobs in the whole tree (what the manifests job keeps)."""
        return sorted({day[:7] for day, _ in self.procedure_batches[proc]})

    def months(self, proc: str) -> list[str]:
        """The procedure's months this run (re)does: a `days=…` run only its days' months."""
        return sorted({day[:7] for day, _ in self.procedure_batches[proc] if not self.days or day in self.days})

    @cached_property
    def any_months(self) -> list[str]:
        """The months this run (re)does, of any procedure (a days=… run's month wildcards)."""
        return sorted({month for proc in ANALYSED for month in self.months(proc)})

    def month_batches(self, proc: str, month: str) -> list[tuple[str, str]]:
        return [(day, label) for day, label in self.procedure_batches[proc] if day.startswith(f"{month}-")]

    def reject_rows(self) -> list[dict[str, object]]:
        return catalog.reject_rows(list(self.rejects))


def raw_list_name(day: str, label: str, files: list[RawFile]) -> str:
    """Content-addressed: the same batch content always has the same list, so a running job's list is
    never rewritten under it (a concurrent `snakemake -n` writes a new name)."""
    return f"{day}_{label}_{len(files)}-files_{catalog.fingerprint(files)}.json"


def existing_other_days(root: str, days: frozenset[str]) -> list[str]:
    """In a days=… run, the other days' batch manifests as they are on disk."""
    if not days:
        return []
    found = sorted(Path(root, "_batches").glob("date=*/batch=*.parquet"))
    return [str(p) for p in found if p.parent.name.removeprefix("date=") not in days]


def notes(plan: Plan) -> list[str]:
    """The change listing's lines about this plan: rejects without a job, a days=… selection."""
    lines = []
    if plan.rejects:
        lines.append(
            f"nanolab: {len(plan.rejects)} raw files are rejects (unreadable header, no data rows or unknown procedure): "
            "listed in the manifest, no job"
        )
    if plan.days:
        lines.append(f"nanolab: only days {', '.join(sorted(plan.days))}; other days' results are left as they are")
    return lines


def classify(files: list[RawFile], procedures: frozenset[str]) -> tuple[list[RawFile], list[tuple[RawFile, str]]]:
    """Files that go to a staging job, and the rejects the catalog already knows, with their reason."""
    staged, rejects = [], []
    for raw_file in files:
        reason = catalog.reject_reason(raw_file, procedures)
        if reason is None:
            staged.append(raw_file)
        else:
            rejects.append((raw_file, reason))
    return staged, rejects


def selected_days(days: list[str], planned: set[str]) -> frozenset[str]:
    """The days a `--config days=…` run (re)processes; every day when none are given."""
    unknown = sorted(set(days) - planned)
    if unknown:
        known = sorted(planned)
        span = f", {known[0]} to {known[-1]}" if known else ""
        raise Stop(
            f"days: no raw files that stage on {', '.join(unknown)} (the raw tree has {len(known)} days{span}); "
            "give days of the tree, or leave days empty for every day"
        )
    return frozenset(days)


def build(raw_root: Path, results: Path, files: list[RawFile], procedures: frozenset[str], batch_size: int, days: list[str]) -> Plan:
    """The plan of one run: only files that can stage are batched (and only they are dated by mtime)."""
    staged, rejects = classify(files, procedures)
    batches = catalog.plan_batches(staged, batch_size)
    return Plan(raw_root, results, tuple(files), batches, tuple(rejects), selected_days(days, {day for day, _ in batches}))
