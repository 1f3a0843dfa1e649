"""One owner of every output path template: the rules declare these, the Python that plans, checks and
prunes reads the same definitions (relative to the run folder, so arguments files stay valid when it
moves). A `{wildcard}` may stand for a day, batch or month."""

from __future__ import annotations

STAGE = "results/02_stage"
SEGMENTS = "results/03_intermediate"
ANALYSIS = "results/04_analysis"
REPORT = "results/04_report"

# The manifests job's outputs (one job at the end of every run).
MANIFESTS = {
    "stage": f"{STAGE}/_manifest/manifest.parquet",
    "rejects": f"{STAGE}/_manifest/rejects.csv",
    "segments": f"{SEGMENTS}/_manifest/manifest.parquet",
    "summary": "results/summary.txt",
    "staging_summary": f"{REPORT}/staging_summary.csv",
    "segmentation_qc": f"{REPORT}/segmentation_qc.csv",
    "segment_points": f"{REPORT}/segment_points.csv",
}
LANDING = f"{REPORT}/landing.html"
TABLES = f"{REPORT}/tables"  # the landing job's sortable pages


def batch_outputs(day: str, label: str) -> tuple[str, str, str]:
    """The stage manifest, segment manifest and points file the batch job of (day, label) declares."""
    batch = f"date={day}/batch={label}.parquet"
    return f"{STAGE}/_batches/{batch}", f"{SEGMENTS}/_batches/{batch}", f"{SEGMENTS}/_points/{batch}"


def analysis_manifest(slug: str, month: str) -> str:
    """A procedure's month analysis job's manifest (one row per day and kind)."""
    return f"{ANALYSIS}/_batches/{slug}/month={month}.parquet"


def month_table(slug: str, month: str) -> str:
    """The month's table for the report (IV: the fits), written by the analysis job."""
    return f"{REPORT}/{slug}_fits/month={month}.csv"


def figure_folders(slug: str, month: str) -> tuple[str, str]:
    """A procedure's month figure job's two declared folders: day figures, day runs tables."""
    return f"{REPORT}/{slug}_days/month={month}", f"{REPORT}/{slug}_day_runs/month={month}"


def drawn_folder(figure_folder: str) -> str:
    """Where a figure job draws and keeps each day (not declared: Snakemake empties declared folders)."""
    root, month = figure_folder.rsplit("/", 1)
    return f"{REPORT}/_drawn/{root.rsplit('/', 1)[1]}/{month}"


def records_folder(rule: str) -> str:
    """Where a procedure's analysis job keeps one reuse record per day (`<folder>/date=<d>.json`)."""
    return f"{ANALYSIS}/_records/{rule}"


def further_outputs(rule: str) -> tuple[str, ...]:
    """The declared outputs of a procedure's further analysis rules (IV's lab analysis, over every day)."""
    return FURTHER[rule]


FURTHER = {
    "lab_analysis": (f"{ANALYSIS}/_batches/lab_analysis.parquet", f"{REPORT}/chip_history.csv"),
    "lab_figures": (f"{REPORT}/lab_days", f"{REPORT}/lab_chips"),
}
