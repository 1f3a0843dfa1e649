"""Report figures: one PNG per measurement day and a table of its runs, drawn by one job per month.

Why a month per job: importing matplotlib costs ~1 s CPU, a day's figure ~0.6 s (measured at lab scale:
Agg rendering ~0.3 s, building the artists ~0.15 s); a job per day made the lab's figures cost 106 s,
a job per month ~25 s for the whole archive on 2 cores. Within a month, a day is redrawn only when a
file it is drawn from or the code changed: one edited raw file costs one day's drawing, not a month's.

A day's figure: top, every IV run (I and log10 |I| against Vsd), coloured by chip, returns dashed;
runs that stand out (outliers, sweeps without the four segment types) are drawn bold and labelled with
their number in the day's runs table. Below, one row per chip: the mean forward and return traces per
V_max group with the fitted return curve, and the hysteresis with its peaks marked.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; before any other matplotlib import

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from . import outputs, reuse  # noqa: E402
from .analysis import KINDS, AnalysisSettings, output_schema  # noqa: E402
from .analysis_job import points_by_day, read_points  # noqa: E402
from .atomic import Written, temporary_for, write_bytes_atomic  # noqa: E402
from .io import read_parquet  # noqa: E402
from .iv_segments import MANIFEST_SCHEMA as SEGMENT_MANIFEST  # noqa: E402
from .jobargs import JobArgumentParser  # noqa: E402
from .manifest import csv_bytes  # noqa: E402

log = logging.getLogger("nanolab")

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
CHIP_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FLAG_COLOUR = "#D00000"
# A run stands out when its largest |I| is this many times its chip's median (or a 1/this fraction),
# or this many times its own 95th percentile of |I| (a spike in an otherwise ordinary sweep).
OUTLIER_FACTOR = 10.0
DPI = 72
TRACE_POINTS = 120  # points drawn per segment at most (plus its extremes)


@dataclass(frozen=True)
class RunInfo:
    """One IV run of the day as the runs table lists it; `number` is its label in the figure."""

    number: int
    run_id: str
    source_file: str
    chip: str
    v_max_V: float | None
    max_abs_i_A: float | None
    n_segments: int
    flag: str  # "" | "outlier" | "incomplete" | "not segmented"


def chip_label(chip_group: object, chip_number: object) -> str:
    if chip_group is None and chip_number is None:
        return "all chips"
    return f"{chip_group or ''}{'' if chip_number is None else chip_number}" or "unknown chip"


def run_infos(points: pa.Table, runs: pa.Table) -> list[RunInfo]:
    """The day's IV runs in the order of `runs` (segment manifest rows), numbered from 1, with flags."""
    per_run = {r["run_id"]: r for r in run_extremes(points)}
    chips = {run_id: chip_label(r["chip_group"], r["chip_number"]) for run_id, r in per_run.items()}
    largest = {run_id: r["max_abs_i_A"] for run_id, r in per_run.items()}
    chip_median = {
        chip: float(np.median([largest[r] for r, c in chips.items() if c == chip and largest[r]] or [np.nan])) for chip in set(chips.values())
    }
    infos = []
    for number, row in enumerate(runs.to_pylist(), start=1):
        run_id = row["run_id"]
        extremes = per_run.get(run_id, {})
        chip, peak, flag = chips.get(run_id, "unknown chip"), extremes.get("max_abs_i_A"), ""
        if row["status"] != "ok":
            flag = "not segmented"
        elif not row["complete"] or row["n_segments"] != 4:
            flag = "incomplete"
        elif peak and (_off_by(peak, chip_median.get(chip)) or _off_by(peak, extremes.get("p95_abs_i_A"), below=False)):
            flag = "outlier"
        infos.append(RunInfo(number, run_id, row["source_file"], chip, extremes.get("v_max_V"), peak, row["n_segments"] or 0, flag))
    return infos


def run_extremes(points: pa.Table) -> list[dict]:
    """Per run: its chip, largest |V|, largest |I| and 95th percentile of |I| (one vectorised group-by)."""
    table = points.select(["run_id", "chip_group", "chip_number"]).append_column("abs_i", pc.abs(points["i_A"]))
    table = table.append_column("abs_v", pc.abs(points["vsd_V"]))
    aggregated = table.group_by("run_id", use_threads=False).aggregate(
        [
            ("chip_group", "first"),
            ("chip_number", "first"),
            ("abs_v", "max"),
            ("abs_i", "max"),
            ("abs_i", "tdigest", pc.TDigestOptions(q=0.95)),
        ]
    )
    names = ["run_id", "chip_group", "chip_number", "v_max_V", "max_abs_i_A", "p95_abs_i_A"]
    rows = aggregated.rename_columns(names).to_pylist()
    for row in rows:
        row["p95_abs_i_A"] = (row["p95_abs_i_A"] or [None])[0]
    return rows


def _off_by(value: float, reference: float | None, below: bool = True) -> bool:
    if not reference or np.isnan(reference):
        return False
    return value > OUTLIER_FACTOR * reference or (below and value < reference / OUTLIER_FACTOR)


def runs_table(infos: list[RunInfo]) -> pa.Table:
    """The table shown beside the day's figure: each run's number, file, chip and why it stands out."""
    return pa.table(
        {
            "run": [i.number for i in infos],
            "source_file": [i.source_file for i in infos],
            "chip": [i.chip for i in infos],
            "v_max_V": pa.array([i.v_max_V for i in infos], pa.float64()),
            "max_abs_i_A": pa.array([i.max_abs_i_A for i in infos], pa.float64()),
            "n_segments": [i.n_segments for i in infos],
            "flag": [i.flag for i in infos],
            "run_id": [i.run_id for i in infos],
        }
    )


def trace_pieces(points: pa.Table) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """(V, I) and (V, log10 |I|) polylines, one per run and segment in sweep order, thinned for drawing,
    with each piece's run_id and whether it returns. Vectorised over the day's rows: a Python call per
    piece (~5,000 a day) cost more than drawing them."""
    v = points["vsd_V"].fill_null(np.nan).to_numpy(zero_copy_only=False)
    i = points["i_A"].fill_null(np.nan).to_numpy(zero_copy_only=False)
    run = points["run_id"].to_numpy(zero_copy_only=False)
    segment = points["segment_id"].to_numpy(zero_copy_only=False)
    if v.size == 0:
        return [], [], np.array([], dtype=object), np.array([], dtype=bool)
    starts = np.flatnonzero(np.r_[True, (run[1:] != run[:-1]) | (segment[1:] != segment[:-1])])
    keep = drawn_rows(np.nan_to_num(i, nan=0.0), starts)
    kept_starts = np.cumsum(np.add.reduceat(keep.astype(np.int64), starts))[:-1]  # every piece keeps its first row
    v, i = v[keep], i[keep]
    magnitude = np.abs(i)
    with np.errstate(invalid="ignore"):
        log_i = np.log10(np.where(magnitude > 0, magnitude, np.nan))  # log of 0 is not a point
    linear = np.split(np.column_stack([v, i]), kept_starts)
    logarithmic = np.split(np.column_stack([v, log_i]), kept_starts)
    returning = pc.match_substring(points["segment_type"], "return").to_numpy(zero_copy_only=False)[starts]
    return linear, logarithmic, run[starts], returning


def drawn_rows(current: np.ndarray, starts: np.ndarray, most: int = TRACE_POINTS) -> np.ndarray:
    """Which rows of each piece (rows starts[k] up to the next start) are drawn: every n-th row so that
    at most ~`most` remain, the last row, and the first row of the largest and of the smallest I, so a
    one-point spike stays visible. A 1,000-point segment is ~3 pixels per point at this size, and
    Agg's cost is per point."""
    n = current.size
    lengths = np.diff(np.r_[starts, n])
    piece = np.repeat(np.arange(starts.size), lengths)
    position = np.arange(n) - starts[piece]
    stride = -(-lengths // most)  # ceil: 1 for pieces of `most` rows or fewer
    keep = (position % stride[piece] == 0) | (position == lengths[piece] - 1)
    for extreme in (np.maximum, np.minimum):
        hits = np.flatnonzero(current == extreme.reduceat(current, starts)[piece])
        keep[hits[np.r_[True, piece[hits][1:] != piece[hits][:-1]]]] = True  # the first hit of each piece
    return keep


def chip_colours(infos: list[RunInfo], chips: list[str]) -> dict[str, str]:
    names = sorted({i.chip for i in infos} | set(chips))
    return {chip: CHIP_COLOURS[k % len(CHIP_COLOURS)] for k, chip in enumerate(names)}


def draw_overview(points: pa.Table, infos: list[RunInfo], colour: dict[str, str], linear, logarithmic) -> None:
    """Every run and segment as one line collection per panel; stand-out runs bold, red and numbered."""
    pieces, log_pieces, piece_runs, returning = trace_pieces(points)
    by_run = {i.run_id: i for i in infos}
    many = len(infos) >= 10
    for axes, drawn_pieces in ((linear, pieces), (logarithmic, log_pieces)):
        for bold in (False, True):  # stand-out runs on top
            chosen = [k for k, r in enumerate(piece_runs) if bool(by_run.get(r) and by_run[r].flag) == bold]
            if chosen:
                axes.add_collection(
                    LineCollection(
                        [drawn_pieces[k] for k in chosen],
                        colors=[FLAG_COLOUR if bold else colour.get(by_run[piece_runs[k]].chip, "grey") for k in chosen],
                        linestyles=["--" if returning[k] else "-" for k in chosen],
                        linewidths=1.6 if bold else (0.6 if many else 1.2),
                        alpha=1.0 if bold else (0.35 if many else 0.9),
                        antialiaseds=False,  # a day's ~500 traces draw 3x faster; thin lines look the same
                    )
                )
    drawn = set(piece_runs)
    for info in infos:  # number the stand-out runs at their largest |I|
        if info.flag and info.run_id in drawn:
            run_points = np.concatenate([pieces[k] for k, r in enumerate(piece_runs) if r == info.run_id])
            k = int(np.nanargmax(np.abs(run_points[:, 1]))) if np.isfinite(run_points[:, 1]).any() else 0
            linear.annotate(f"#{info.number}", run_points[k], color=FLAG_COLOUR, fontsize=8, fontweight="bold")
    counts = Counter(i.chip for i in infos if i.run_id in drawn)
    handles = [Line2D([], [], color=colour[c], label=f"{c} ({n} run{'s' if n != 1 else ''})") for c, n in sorted(counts.items())]
    flagged = [i for i in infos if i.flag]
    if flagged:
        numbers = ", ".join(f"#{i.number}" for i in flagged[:12]) + (" …" if len(flagged) > 12 else "")
        handles.append(Line2D([], [], color=FLAG_COLOUR, linewidth=1.6, label=f"stand out: {numbers}"))
    if handles:
        linear.legend(handles=handles, loc="upper left", fontsize="small")  # "best" searched the data: 60 ms a day
    if not infos:
        linear.text(0.5, 0.5, "no IV runs", ha="center", va="center", transform=linear.transAxes)


def draw_analysis(analysis: dict[str, pa.Table], colour: dict[str, str], fit_column: str | None, traces, loops) -> None:
    """Per chip and V_max group: mean forward (solid) and return (dashed) traces with the fitted return
    curve (dotted), and the hysteresis with its raw peaks marked (▲ largest, ▼ smallest). One artist per
    chip and line style, not per group: a day's ~100 separate lines were most of its drawing time."""
    stats, hysteresis, peaks = analysis["iv_stats"], analysis["hysteresis"], analysis["hysteresis_peaks"]
    drawn = []
    for group, number in chip_keys(stats):
        chip = chip_label(group, number)
        chip_stats, chip_loops, chip_peaks = (of_chip(t, group, number) for t in (stats, hysteresis, peaks))
        lines: dict[str, list[np.ndarray]] = {"forward": [], "return": [], "fit": [], "loop": []}
        for v_max in np.unique(chip_stats["v_max_V"].to_numpy(zero_copy_only=False)):
            group_stats = chip_stats.filter(pc.equal(chip_stats["v_max_V"], v_max))
            for branch in ("forward", "return"):
                rows = group_stats.filter(pc.equal(group_stats["branch"], branch))
                lines[branch].append(xy(rows["vsd_V"], rows["i_mean_A"]))
                if branch == "return" and fit_column:
                    lines["fit"].append(xy(rows["vsd_V"], rows[fit_column]))
            loop = chip_loops.filter(pc.equal(chip_loops["v_max_V"], v_max))
            lines["loop"].append(xy(loop["vsd_V"], loop["i_hysteresis_raw_A"]))
        for axes, key, style, line_colour, width in (
            (traces, "forward", "-", colour[chip], 1.0),
            (traces, "return", "--", colour[chip], 1.0),
            (traces, "fit", ":", "black", 0.8),
            (loops, "loop", "-", colour[chip], 1.0),
        ):
            if lines[key]:
                axes.add_collection(LineCollection(lines[key], colors=line_colour, linestyles=style, linewidths=width))
        raw = chip_peaks.filter(pc.equal(chip_peaks["method"], "raw"))
        for side, marker in (("positive", "^"), ("negative", "v")):
            loops.plot(raw[f"v_max_{side}_V"], raw[f"i_max_{side}_A"], marker, linestyle="none", color=colour[chip], markersize=6)
        drawn.append(chip)
    for axes in (traces, loops):
        if drawn:  # one legend entry per chip: its V_max groups share its colour
            axes.legend(handles=[Line2D([], [], color=colour[chip], label=chip) for chip in drawn], fontsize="x-small", loc="upper left")
        else:
            axes.text(0.5, 0.5, "no groups with forward and return sweeps", ha="center", va="center", transform=axes.transAxes)


def xy(x: pa.ChunkedArray, y: pa.ChunkedArray) -> np.ndarray:
    """A polyline's points; nulls are gaps (NaN), as a plotted line shows them."""
    return np.column_stack([column.fill_null(np.nan).to_numpy(zero_copy_only=False) for column in (x, y)]).astype(np.float64)


def chip_keys(stats: pa.Table) -> list[tuple[object, object]]:
    keys = stats.select(["chip_group", "chip_number"]).group_by(["chip_group", "chip_number"], use_threads=False).aggregate([])
    return sorted(((r["chip_group"], r["chip_number"]) for r in keys.to_pylist()), key=lambda k: (str(k[0]), -1 if k[1] is None else k[1]))


def of_chip(table: pa.Table, group: object, number: object) -> pa.Table:
    def same(column: str, value: object) -> pa.ChunkedArray:
        return pc.is_null(table[column]) if value is None else pc.fill_null(pc.equal(table[column], value), False)

    return table.filter(pc.and_(same("chip_group", group), same("chip_number", number)))


class DayFigure:
    """One figure redrawn for every day of a job: building the axes and their ticks costs as much as
    drawing a day's data, so it is done once per job."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=(12, 8.5))
        FigureCanvasAgg(self.figure)
        self.axes = self.figure.subplots(2, 2)
        self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.07, top=0.91, wspace=0.2, hspace=0.32)
        for axes in self.axes.flat:
            axes.locator_params(nbins=5)  # tick labels are most of the drawing time
        (overview, magnitude), (traces, loops) = self.axes
        overview.set(xlabel="Vsd (V)", ylabel="I (A)", title="every run: I vs Vsd (returns dashed)")
        magnitude.set(xlabel="Vsd (V)", ylabel="log10 |I| (A)", title="every run: log |I| vs Vsd")
        traces.set(xlabel="Vsd (V)", ylabel="mean I (A)")
        loops.set(xlabel="Vsd (V)", ylabel="I forward − I return (A)", title="hysteresis per chip and V_max, raw peaks ▲ max ▼ min")

    def draw(self, day: str, points: pa.Table, infos: list[RunInfo], analysis: dict[str, pa.Table]) -> Figure:
        for axes in self.axes.flat:
            for artist in [*axes.lines, *axes.collections, *axes.texts]:
                artist.remove()
            if axes.get_legend():
                axes.get_legend().remove()
            axes.relim()  # forget the previous day's data limits
            axes.grid(True, alpha=0.3)
        stats = analysis["iv_stats"]
        colour = chip_colours(infos, [chip_label(g, n) for g, n in chip_keys(stats)])
        (overview, magnitude), (traces, loops) = self.axes
        draw_overview(points, infos, colour, overview, magnitude)
        fits = [name for name in stats.column_names if name.startswith("i_fit_poly")]
        fit_column = max(fits, key=lambda name: int(name.removeprefix("i_fit_poly").removesuffix("_A")), default=None)
        draw_analysis(analysis, colour, fit_column, traces, loops)
        fit_name = fit_column.removeprefix("i_fit_").removesuffix("_A") if fit_column else "no"
        traces.set_title(f"mean traces per chip and V_max, {fit_name} fit of the return (dotted)")
        for axes in self.axes.flat:
            axes.autoscale_view()
        self.figure.suptitle(f"IV sweeps on {day}: {len(infos)} run{'s' if len(infos) != 1 else ''}")
        return self.figure


def save_png(figure: Figure, path: Path) -> Written:
    """Rendered in memory, written whole or not at all: a report never picks up half an image."""
    image = io.BytesIO()
    figure.savefig(image, dpi=DPI, format="png", pil_kwargs={"compress_level": 1})  # zlib level 6 took longer than drawing
    return write_bytes_atomic(image.getvalue(), path)


def link_or_copy(source: Path, target: Path) -> Path:
    """`target` with the bytes of `source`: a hard link (no copy), or a copy where links are not allowed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_for(target)
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)
    return target


def plot_month(
    points_files: list[Path],
    segment_manifests: list[Path],
    analysis_manifest: Path,
    figure_dir: Path,
    runs_dir: Path,
    drawn_dir: Path,
    trusted: bool = True,
) -> list[Path]:
    """A figure and a runs table for every day of the month that has IV runs.

    Each day is drawn into `drawn_dir` with a reuse record of what it was drawn from, then linked into
    the job's declared folders (which Snakemake empties before the job). A day whose inputs and code
    are unchanged is linked, not redrawn: one edited raw file redraws one day (~0.6 s), not a month."""
    runs = pa.concat_tables([read_parquet(path).cast(SEGMENT_MANIFEST) for path in segment_manifests]) if segment_manifests else None
    tables_of: dict[str, list[dict]] = defaultdict(list)  # day -> its analysis tables (kind, output)
    for row in read_parquet(analysis_manifest).to_pylist():
        tables_of[row["date"]].append(row)
    points_of, runs_of = points_by_day(points_files), points_by_day(segment_manifests)
    canvas: DayFigure | None = None  # built on the first day that is drawn: its axes cost ~0.1 s
    days = outputs.iv_days(runs.select(["date"]).to_pydict()) if runs is not None else []
    written, redrawn = [], 0
    for day in days:
        record = drawn_dir / f"date={day}.json"
        inputs = [*points_of.get(day, []), *runs_of.get(day, []), *(Path(row["output"]) for row in tables_of[day])]
        record_key = reuse.key("day figure", reuse.library_key("matplotlib"), day, *(f"{path}:{reuse.content_id(path)}" for path in inputs))
        figure, table = drawn_dir / f"date={day}.png", drawn_dir / f"date={day}.csv"
        if not (trusted and reuse.load(record, record_key)):
            day_runs = runs.filter(pc.equal(runs["date"], day)).sort_by("source_file")
            points = read_points(points_of.get(day, []), with_segments=True)
            tables = {row["kind"]: read_parquet(row["output"]) for row in tables_of[day]}
            if not tables:
                tables = {kind: output_schema(kind, AnalysisSettings()).empty_table() for kind in KINDS}
            infos = run_infos(points, day_runs)
            canvas = canvas or DayFigure()
            drawn = [save_png(canvas.draw(day, points, infos, tables), figure), write_bytes_atomic(csv_bytes(runs_table(infos)), table)]
            reuse.save(record, record_key, {}, drawn)
            redrawn += 1
        written += [link_or_copy(figure, figure_dir / figure.name), link_or_copy(table, runs_dir / table.name)]
    figure_dir.mkdir(parents=True, exist_ok=True)
    runs_dir.mkdir(parents=True, exist_ok=True)
    drop_other_days(drawn_dir, set(days))
    log.info("%d days: %d drawn, %d unchanged since drawn", len(days), redrawn, len(days) - redrawn)
    return written


def drop_other_days(drawn_dir: Path, days: set[str]) -> None:
    """Drawings of days the month no longer has (their raw files were removed or moved)."""
    for path in drawn_dir.glob("date=*"):
        if path.name.removeprefix("date=").split(".")[0] not in days:
            path.unlink()


def main(argv: list[str] | None = None) -> None:
    parser = JobArgumentParser(prog="python -m nanolab.plots", description=__doc__)
    parser.add_argument("--points", type=Path, nargs="*", default=[], help="the month's iv_points batch files")
    parser.add_argument("--segment-manifests", type=Path, nargs="*", default=[], help="the month's segment batch manifests")
    parser.add_argument("--analysis-manifest", type=Path, required=True, help="the month's analysis manifest")
    parser.add_argument("--figure-dir", type=Path, required=True)
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--drawn-dir", type=Path, required=True, help="where each day is drawn and kept while its inputs are unchanged")
    parser.add_argument("--check", type=Path, nargs="*", help="the job's check files: a forced job redraws every day")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    plot_month(args.points, args.segment_manifests, args.analysis_manifest, args.figure_dir, args.runs_dir, args.drawn_dir, reuse.trusted(args.check))


if __name__ == "__main__":
    main()
