"""The report's first page and its tables, from the merged manifests and the report's CSV tables.

`workflow/report/workflow.rst` embeds `landing.html` (a fragment: the report shows it beside the rule
graph, where no script runs) and the report lists the sortable tables written here. Every number on the
page is counted from the manifests in this one job, so the page cannot disagree with them.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import html
import importlib.metadata
import json
import logging
import statistics
import subprocess
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from . import codehash, htmltable, job, manifest, procedures
from .atomic import write_kept, write_text_atomic
from .io import read_parquet

log = logging.getLogger(__name__)
SHOWN = 200  # rows of each table on the first page; the sortable tables hold them all

HEADERS = {
    "run": "#",
    "source_file": "raw file",
    "date": "day",
    "chip": "chip",
    "chip_group": "chip group",
    "chip_number": "chip number",
    "v_max_V": "V_max",
    "max_abs_i_A": "max |I|",
    "n_segments": "segments",
    "n_runs": "runs",
    "resistance_ohm": "resistance",
    "r_squared": "R² (linear)",
    "status": "status",
    "reason": "reason",
    "flag": "flag",
    "run_id": "run id",
}
FLAGGED_COLUMNS = [
    htmltable.text("date", "day (its figure)"),
    htmltable.number("run", "# in the figure", htmltable.plain),
    htmltable.text("source_file", "raw file"),
    htmltable.text("chip", "chip"),
    htmltable.text("why", "why"),
]
UNITS = {"_ohm": "Ω", "_A": "A", "_V": "V", "_S": "S", "_s": "s"}


@dataclass(frozen=True)
class Counts:
    raw_files: int
    staged: int
    rejected: int
    skipped: int
    damaged: int
    duplicates: int | None  # None: the stage manifest has no `duplicate_of` column
    iv_runs: int
    segmented: int
    flagged: int
    days: int
    iv_days: int


def column_for(key: str, sample: object) -> htmltable.Column:
    """A column shown the way its name says: `_A` in amperes with a prefix, `r2_*` as R², counts as is."""
    header = HEADERS.get(key) or (f"R² poly {key.removeprefix('r2_poly')}" if key.startswith("r2_poly") else key)
    if key == "r_squared" or key.startswith("r2_"):
        return htmltable.number(key, header, htmltable.r_squared)
    for suffix, unit in UNITS.items():
        if key.endswith(suffix) and (sample is None or htmltable.finite(sample)):
            return htmltable.quantity(key, header, unit)
    if isinstance(sample, int) and not isinstance(sample, bool):
        return htmltable.number(key, header, htmltable.plain)
    if isinstance(sample, float):
        return htmltable.number(key, header)
    return htmltable.text(key, header)


def columns_of(rows: Sequence[dict], keys: Sequence[str]) -> list[htmltable.Column]:
    samples = {key: next((r[key] for r in rows if r.get(key) is not None), None) for key in keys}
    return [column_for(key, samples[key]) for key in keys]


def read_csv_rows(path: Path) -> list[dict]:
    return pacsv.read_csv(path).to_pylist()


def in_amperes(row: dict) -> dict:
    """A runs-table row with its largest |I| in A (the CSV gives µA): the page chooses each prefix itself."""
    if "max_abs_i_uA" not in row:
        return row
    micro = row.pop("max_abs_i_uA")
    return row | {"max_abs_i_A": None if micro is None else micro * 1e-6}


def day_runs_tables(runs_root: Path) -> dict[str, list[dict]]:
    """{day: rows of its runs table} for every day drawn (`month=<m>/date=<d>.csv`), in run order."""
    tables = {}
    for path in sorted(runs_root.glob("month=*/date=*.csv")):
        rows = [in_amperes(row) for row in read_csv_rows(path)]
        tables[path.stem.removeprefix("date=")] = sorted(rows, key=lambda r: r.get("run") or 0)
    return tables


def month_fits_tables(fits_root: Path) -> dict[str, list[dict]]:
    return {path.stem.removeprefix("month="): read_csv_rows(path) for path in sorted(fits_root.glob("month=*.csv"))}


def damaged(stage: pa.Table) -> list[dict]:
    """Staged files with skipped rows or null cells (the summary's "staged with damage")."""
    ok = stage.filter(pc.equal(stage["status"], "ok"))
    hit = pc.or_(pc.greater(pc.fill_null(ok["skipped_rows"], 0), 0), pc.greater(pc.fill_null(ok["null_cells"], 0), 0))
    return ok.filter(hit).select(["source_file", "date", "skipped_rows", "null_cells"]).to_pylist()


def rejects(stage: pa.Table) -> list[dict]:
    table = stage.filter(pc.not_equal(stage["status"], "ok")).select(["source_file", "date", "status", "reason"])
    return table.sort_by([("source_file", "ascending")]).to_pylist()


def duplicates(stage: pa.Table) -> list[dict] | None:
    """Raw files whose content repeats another file's (`duplicate_of`), when the manifest says so."""
    if "duplicate_of" not in stage.column_names:
        return None
    marked = pc.and_(pc.is_valid(stage["duplicate_of"]), pc.not_equal(pc.cast(stage["duplicate_of"], pa.string()), ""))
    return stage.filter(pc.fill_null(marked, False)).select(["source_file", "duplicate_of", "status"]).to_pylist()


def figure_path(figures_root: str, day: str) -> str:
    return f"{figures_root}/month={day[:7]}/date={day}.png"


def chip_medians(rows: list[dict]) -> dict[object, float]:
    """{chip: median of its runs' largest |I|} over a day's runs table: what an outlier is measured against."""
    peaks: dict[object, list[float]] = {}
    for row in rows:
        if htmltable.finite(row.get("max_abs_i_A")) and row["max_abs_i_A"]:
            peaks.setdefault(row.get("chip"), []).append(row["max_abs_i_A"])
    return {chip: statistics.median(values) for chip, values in peaks.items()}


def why(flag: str, run: dict, segmentation: dict, chip_median: float | None = None) -> str:
    """What makes a flagged run stand out, in the words of the figure's caption."""
    if flag == "outlier":
        peak = run.get("max_abs_i_A")
        if htmltable.finite(peak) and chip_median and not 0.1 <= peak / chip_median <= 10:
            ratio = peak / chip_median
            side = f"{ratio:.3g}× above" if ratio > 1 else f"{1 / ratio:.3g}× below"
            return f"outlier: largest |I| {htmltable.si(peak, 'A')}, {side} its chip's median ({htmltable.si(chip_median, 'A')})"
        return f"outlier: a spike, largest |I| {htmltable.si(peak, 'A')} over ten times the run's own 95th percentile"
    if flag == "incomplete":
        types = segmentation.get("segment_types") or []
        return f"incomplete: {len(types)} of the 4 segment types ({', '.join(types) or 'none'}); usually a sweep stopped early"
    if flag == "not segmented":
        return f"not segmented: {segmentation.get('reason') or segmentation.get('status') or 'no segments'}"
    return flag


def flagged_runs(segments: pa.Table, day_runs: dict[str, list[dict]] | None) -> list[dict]:
    """The runs the day figures mark (their runs tables' `flag`), or without figures the runs the
    segmentation flags (not segmented, or not the four segment types)."""
    by_run = {row["run_id"]: row for row in segments.to_pylist()}
    found = []
    if day_runs is not None:
        for day, rows in sorted(day_runs.items()):
            medians = chip_medians(rows)
            for run in rows:
                if run.get("flag"):
                    reason = why(run["flag"], run, by_run.get(run.get("run_id"), {}), medians.get(run.get("chip")))
                    found.append({"date": day, "run": run.get("run"), "source_file": run.get("source_file"), "chip": run.get("chip"), "why": reason})
        return found
    for row in manifest.flagged_runs(segments).to_pylist():  # the Segmentation QC table's runs
        flag = "not segmented" if row["status"] != "ok" else "incomplete"
        found.append({"date": row["date"], "run": None, "source_file": row["source_file"], "chip": None, "why": why(flag, {}, by_run[row["run_id"]])})
    return found


def count(stage: pa.Table, segments: pa.Table, flagged: list[dict]) -> Counts:
    status = Counter(stage["status"].to_pylist())
    found_duplicates = duplicates(stage)
    return Counts(
        raw_files=stage.num_rows,
        staged=status["ok"],
        rejected=status["reject"],
        skipped=status["skipped"],
        damaged=len(damaged(stage)),
        duplicates=None if found_duplicates is None else len(found_duplicates),
        iv_runs=segments.num_rows,
        segmented=sum(1 for s in segments["status"].to_pylist() if s == "ok"),
        flagged=len(flagged),
        days=len(staged_days(stage)),
        iv_days=len({d for d in segments["date"].to_pylist() if d}),
    )


def staged_days(stage: pa.Table) -> list[str]:
    """Measurement days: days with a staged file (a reject's date makes no day)."""
    ok = stage.filter(pc.equal(stage["status"], "ok"))
    return sorted({d for d in ok["date"].to_pylist() if d})


def staged_only(stage: pa.Table) -> dict[str, int]:
    """{procedure: files staged} of the procedures nothing analyses or draws yet."""
    ok = stage.filter(pc.equal(stage["status"], "ok"))
    return dict(sorted(Counter(p for p in ok["proc"].to_pylist() if p and p not in procedures.used()).items()))


def workflow_version(workflow_dir: Path) -> str:
    """`git describe` of the workflow's checkout when it is one, else the package version; with the
    fingerprint of the package's code either way (what the reuse records compare)."""
    code = hashlib.blake2b(json.dumps(codehash.module_hashes(), sort_keys=True).encode(), digest_size=6).hexdigest()
    try:
        described = subprocess.run(
            ["git", "-C", str(workflow_dir), "describe", "--always", "--dirty", "--tags"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    try:
        package = f"nanolab {importlib.metadata.version('nanolab')}"
    except importlib.metadata.PackageNotFoundError:
        package = "nanolab"
    return f"{described or 'not a git checkout'} · {package} · code {code}"


def built_at(timezone: str, now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.UTC)
    local = now.astimezone(zoneinfo.ZoneInfo(timezone))
    return f"{local:%Y-%m-%d %H:%M} {timezone} ({now:%H:%M} UTC)"


def day_link(day: str, figures_root: str | None) -> str:
    """The day, linked to its figure in the report (the report's own app shows it)."""
    if not day or figures_root is None:
        return html.escape(day or "no date")
    path = figure_path(figures_root, day)
    script = f"javascript:void(app.setView({{navbarMode:'resultinfo',resultPath:'{path}',content:'img',contentPath:results['{path}'].data_uri}}))"
    return f'<a href="{html.escape(script)}" title="show the figure of {day}">{day}</a>'


def first_rows(title: str, columns: list[htmltable.Column], rows: list[dict], where: str) -> str:
    if not rows:
        return f"<h3>{html.escape(title)}: none</h3>"
    more = f"<p>The first {SHOWN} of {len(rows)}; all of them in {where}.</p>" if len(rows) > SHOWN else ""
    return f"<h3>{html.escape(title)} ({len(rows)})</h3>{more}" + htmltable.table(columns, rows[:SHOWN], css_class="landing")


LANDING_STYLE = """
.prose:has(.nanolab-landing) { max-width: 72rem; }
.nanolab-landing table.landing, .nanolab-landing table.counts { font-size: 0.85rem; margin: 0.4rem 0 1rem; }
.nanolab-landing td, .nanolab-landing th { padding: 0.15rem 0.5rem; vertical-align: top; white-space: nowrap; }
.nanolab-landing td:last-child { white-space: normal; }
.nanolab-landing td.num, .nanolab-landing th.num { text-align: right; font-variant-numeric: tabular-nums; }
.nanolab-landing dl { display: grid; grid-template-columns: max-content auto; gap: 0.1rem 1rem; margin: 0; }
.nanolab-landing dt { font-weight: 600; margin: 0; } .nanolab-landing dd { margin: 0; }
.nanolab-landing table.counts { width: auto; min-width: 24rem; }
.nanolab-landing code::before, .nanolab-landing code::after { content: none; }
"""


def landing_html(facts: dict[str, str], counts: Counts, tables: dict[str, list[dict]], figures_root: str | None, only_staged: dict[str, int]) -> str:
    """The first page: what results/ holds and from what, the counts, then what needs a look."""
    dl = "".join(f'<dt>{html.escape(k)}</dt><dd data-fact="{key}">{html.escape(v)}</dd>' for key, (k, v) in facts.items())
    labels = {
        "raw_files": "raw files found",
        "staged": "staged",
        "rejected": "rejected",
        "damaged": "staged with damage (skipped rows or null cells)",
        "duplicates": "duplicates (same bytes as another raw file)",
        "skipped": "skipped (macOS ._ files)",
        "iv_runs": "IV runs",
        "segmented": "IV runs segmented",
        "flagged": "IV runs flagged" + (" in the day figures" if figures_root else " by the segmentation (figures are off)"),
        "days": "measurement days",
        "iv_days": "days with IV runs",
    }
    values = asdict(counts)
    rows = "".join(
        f'<tr><td>{html.escape(label)}</td><td class="num" data-count="{key}">{"not checked" if values[key] is None else values[key]}</td></tr>'
        for key, label in labels.items()
    )
    flagged = [dict(row, _link=day_link(row["date"], figures_root)) for row in tables["flagged"]]
    staged_text = ", ".join(f"{proc} {n}" for proc, n in only_staged.items())
    parts = [
        '<div class="nanolab-landing">',
        f"<style>{LANDING_STYLE}</style>",
        "<h2>What results/ holds</h2>",
        f"<dl>{dl}</dl>",
        f'<table class="counts"><tbody>{rows}</tbody></table>',
        f"<p><strong>Staged only</strong> (in <code>results/02_stage</code>, not analysed or drawn yet): {html.escape(staged_text)}.</p>"
        if only_staged
        else "",
        first_rows(
            "Flagged IV runs",
            FLAGGED_COLUMNS,
            flagged,
            "the day's runs table (IV days)",
        ),
        first_rows("Rejected raw files", columns_of(tables["rejects"], ["source_file", "date", "status", "reason"]), tables["rejects"], "Staging"),
        first_rows(
            "Staged with damage",
            columns_of(tables["damaged"], ["source_file", "date", "skipped_rows", "null_cells"]),
            tables["damaged"],
            "the stage manifest",
        ),
    ]
    if tables.get("duplicates"):
        parts.append(
            first_rows(
                "Duplicates", columns_of(tables["duplicates"], ["source_file", "duplicate_of", "status"]), tables["duplicates"], "the stage manifest"
            )
        )
    parts.append("</div>")
    return "\n".join(part for part in parts if part) + "\n"


def table_page(title: str, intro: str, rows: list[dict], keys: Sequence[str] | None = None) -> str:
    keys = list(keys or (rows[0].keys() if rows else []))
    return htmltable.page(title, intro, htmltable.table(columns_of(rows, keys), rows) if rows else "<p>None.</p>")


RUNS_KEYS = ("run", "source_file", "chip", "v_max_V", "max_abs_i_A", "n_segments", "flag")


def write_tables(
    rejects_page: Path, fits_dir: Path, runs_dir: Path, fits: dict[str, list[dict]], day_runs: dict[str, list[dict]] | None, rejected: list[dict]
) -> None:
    """The sortable tables: the rejects, each month's fits, each day's runs. The month and day pages are
    kept beside the folders (`_tables_kept/`, which Snakemake does not empty) and linked into them, so a
    page whose content is unchanged keeps its mtime: a run that redoes one day rewrites that day's page only."""
    write_text_atomic(rejects_page, table_page("Rejected raw files", "Raw files that were not staged, with the reason.", rejected))
    kept, pages = fits_dir.parent / "_tables_kept", []
    fits_dir.mkdir(parents=True, exist_ok=True)
    for month, rows in fits.items():
        intro = f"Linear fit of the mean return current per day, chip and V_max group ({month}): resistance (1/slope), R², R² of each polynomial."
        keys = [k for k in (rows[0] if rows else {}) if not k.startswith("poly")]
        pages.append((fits_dir / f"month={month}.html", table_page(f"IV fits, {month}", intro, rows, keys)))
    runs_dir.mkdir(parents=True, exist_ok=True)
    for day, rows in (day_runs or {}).items():
        present = rows[0] if rows else {}
        keys = [k for k in RUNS_KEYS if k in present] + [k for k in present if k not in RUNS_KEYS and k != "run_id"]
        intro = f"The IV runs of {day}, numbered as in the day's figure; click a column header to sort."
        pages.append((runs_dir / f"date={day}.html", table_page(f"IV runs, {day}", intro, rows, keys)))
    for page, text in pages:
        write_kept(text.encode("utf-8"), kept / page.parent.name / page.name, page)
    for stale in set(kept.glob("*/*.html")) - {kept / page.parent.name / page.name for page, _ in pages}:
        stale.unlink()  # a month or day no longer in the results


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw-root", required=True)
    parser.add_argument("--timezone", required=True)
    parser.add_argument("--workflow-dir", type=Path, required=True)
    parser.add_argument("--stage-manifest", type=Path, required=True)
    parser.add_argument("--segment-manifest", type=Path, required=True)
    parser.add_argument("--fits-root", type=Path, required=True, help="results/04_report/iv_fits")
    parser.add_argument("--runs-root", type=Path, help="results/04_report/iv_day_runs; without it (figures off) no day is drawn")
    parser.add_argument("--figures-root", help="the day figures' folder as the report names it")
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--rejects-table", type=Path, required=True)
    parser.add_argument("--fits-tables", type=Path, required=True, help="folder: one sortable page per month")
    parser.add_argument("--runs-tables", type=Path, required=True, help="folder: one sortable page per day drawn")


def run_job(args: argparse.Namespace) -> None:
    stage, segments = read_parquet(args.stage_manifest), read_parquet(args.segment_manifest)
    day_runs = day_runs_tables(args.runs_root) if args.runs_root else None
    flagged = flagged_runs(segments, day_runs)
    counts = count(stage, segments, flagged)
    dates = staged_days(stage)
    facts = {
        "built": ("Built", built_at(args.timezone)),
        "raw_root": ("Raw tree", args.raw_root),
        "version": ("Workflow version", workflow_version(args.workflow_dir)),
        "days_covered": ("Days covered", f"{dates[0]} to {dates[-1]} ({len(dates)} days)" if dates else "none"),
    }
    tables = {"flagged": flagged, "rejects": rejects(stage), "damaged": damaged(stage), "duplicates": duplicates(stage) or []}
    figures_root = args.figures_root if day_runs is not None else None
    write_text_atomic(args.landing, landing_html(facts, counts, tables, figures_root, staged_only(stage)))
    write_tables(args.rejects_table, args.fits_tables, args.runs_tables, month_fits_tables(args.fits_root), day_runs, tables["rejects"])
    log.info("landing page: %s", counts)


def main(argv: list[str] | None = None) -> None:
    job.main("python -m nanolab.landing", __doc__, arguments, run_job, argv)


if __name__ == "__main__":
    main()
