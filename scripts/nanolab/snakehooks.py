"""Every hook into Snakemake's internals, in one place, each guarded by the release it was written for.

The workflow calls these from `onstart` and at exit; they reach into `workflow` (the DAG, the scheduler)
beyond Snakemake's documented API. `tests/test_lint.py` fails when an upgrade moves what they use. On a
release they were not written for, the savings (the rate limiter, the exit handler) do nothing rather than
fail a run; the forced-job marking, which decides what a force recomputes, runs anyway: a run that fails on
a moved attribute is better than a force that silently reuses records.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import snakemake

from . import integrity

WRITTEN_FOR = "9."  # Snakemake 9: the attributes below were read off 9.16.3
SUPPORTED = snakemake.__version__.startswith(WRITTEN_FOR)


def mark_forced_jobs(workflow: object, checks_root: str, days: frozenset[str]) -> None:
    """onstart: a job forced by --forceall, --forcerun or -R redoes its outputs from the raw bytes: its
    check file (a declared input, read by the job) says so, and no reuse record of the forced days (in a
    days=… run those only, so other days' outputs stay as they are) applies. The next run's check
    writes 'whole' again (mtime 0), so nothing reruns because of it."""
    dag = workflow.dag  # type: ignore[attr-defined]
    for job in dag.needrun_jobs():
        if dag.reason(job).forced:
            for path in job.input:
                if str(path).startswith(f"{checks_root}/"):
                    integrity.write_forced(path, days)


def without_local_rate_limit(workflow: object) -> None:
    """onstart: Snakemake's job rate limiter (default 100 jobs per 1 s) arms a 1 s timer at the end of every
    scheduling pass that leaves jobs waiting, and each timer starts another pass that arms another: every
    job event adds a chain firing once a second while jobs wait (2,792 passes, 15 CPU-s of the snakemake
    process for 64 jobs on 2 cores; snakemake/snakemake#3744). A local run is limited by its cores anyway,
    so its default limit is dropped; a cluster run or any other limit keeps it."""
    if not SUPPORTED:
        return
    limit = workflow.scheduling_settings.max_jobs_per_timespan  # type: ignore[attr-defined]
    default = limit is not None and (limit.max_jobs, limit.timespan) == (100, 1)
    if workflow.local_exec and default:  # type: ignore[attr-defined]
        workflow.scheduler.job_rate_limiter = None  # type: ignore[attr-defined]


def nothing_was_done(workflow: object) -> bool:
    """At exit: whether this was a real run with nothing to do (Snakemake calls onsuccess only after jobs
    ran; a run with nothing to do returns before it)."""
    if not SUPPORTED:
        return False
    dag, scheduler = workflow.dag, workflow.scheduler  # type: ignore[attr-defined]
    return bool(workflow.is_main_process and scheduler is not None and dag is not None and len(dag) == 0 and not workflow.dryrun)  # type: ignore[attr-defined]


def at_exit(workflow: object, print_summary: Callable[[], None]) -> Callable[[], None]:
    """The exit handler: the summary after "Nothing to be done", then `gc.freeze()`. Python's last garbage
    collection walks every object Snakemake built for the DAG (~0.3 s of a ~2 s no-op at lab scale) only
    to free memory the process returns anyway; frozen objects are skipped. Files are closed where they are
    written, and logging flushes its handlers in its own exit handler."""

    def handler() -> None:
        if nothing_was_done(workflow):
            print_summary()
        gc.freeze()

    return handler
