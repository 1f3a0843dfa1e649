"""Which days have analysis tables and a figure: one definition for the jobs that write them and the
checks that expect them.

A day has them when its segment manifests list at least one IV run, i.e. at least one IV file of the
day was staged. The analysis job, the figure job, the manifests job (which removes other days' tables
and figures) and the output check before each run all call `iv_days`; none decides on its own (they
once did, and a day of rejects got a figure the check expected and the figure job never drew).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def iv_days(segment_manifest: Mapping[str, Sequence]) -> list[str]:
    """The days with analysis tables and a figure, from segment manifest columns (`{"date": [...]}`)."""
    return sorted({day for day in segment_manifest["date"] if day is not None})


def procedure_days(stage_manifest: Mapping[str, Sequence], procedure: str) -> list[str]:
    """The days with a procedure's analysis tables and figures, from stage manifest columns (date, proc,
    status): its staged runs' days. For IV the same days as `iv_days` (a segment row per staged IV run)."""
    rows = zip(stage_manifest["date"], stage_manifest["proc"], stage_manifest["status"])
    return sorted({day for day, proc, status in rows if day is not None and proc == procedure and status == "ok"})


def day_files(figure_dir: str, runs_dir: str, days: Iterable[str]) -> list[str]:
    """The figure and the runs table the figure job writes for each day."""
    days = list(days)
    return [*(f"{figure_dir}/date={day}.png" for day in days), *(f"{runs_dir}/date={day}.csv" for day in days)]
