"""Report figures: one PNG per measurement day and a table of its runs, drawn by one job per month.

Why a month per job: importing matplotlib costs ~1 s CPU, a day's figure ~0.25 s (docs/figures.md);
a job per day made the lab's figures cost 106 s. Within a month, a day is redrawn only when a file it
is drawn from or the code changed: one edited raw file costs one day's drawing, not a month's.

A day's figure: top, every IV run (I and |I| on a log scale against Vsd), coloured by chip, returns
dashed; runs that stand out (outliers, sweeps without the four segment types) are drawn bold in red and
labelled with their number in the day's runs table, in a strip beside the curves. Below, one row per
chip: the mean forward and return traces per V_max group with the fitted return curve, and the
hysteresis with its peaks marked, one colour per V_max, each group labelled. Currents carry SI prefixes
chosen per panel. Runs are numbered in measurement order (start time), in the figure and the table.
"""

from __future__ import annotations

import argparse
import io
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # files only, no display; before any other matplotlib import

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402

from . import job, outputs, reuse  # noqa: E402
from .analysis import AnalysisSettings, output_schema  # noqa: E402
from .analysis_job import points_by_day, read_points  # noqa: E402
from .atomic import Written, link_or_copy, write_bytes_atomic  # noqa: E402
from .chips import NO_CHIP_NUMBER, chip_label  # noqa: E402
from .io import read_parquet  # noqa: E402
from .iv_segments import MANIFEST_SCHEMA as SEGMENT_MANIFEST  # noqa: E402
from .manifest import csv_bytes  # noqa: E402

log = logging.getLogger("nanolab")

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
CHIP_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FLAG_COLOUR = "#D00000"
VMAX_COLOURS = colormaps["viridis"]  # V_max groups: an ordered quantity, an ordered palette (its dark ~85 %)
# A run stands out when its largest |I| is this many times its chip's median (or a 1/this fraction),
# or this many times its own 95th percentile of |I| (a spike in an otherwise ordinary sweep).
OUTLIER_FACTOR = 10.0
# Sizes: text of FONT_PT at DPI is 12.5 px, readable at 100 % zoom; the figure is 900 px wide (Agg's
# and the PNG encoder's work grow with the pixels).
DPI = 100
FONT_PT = 9.0
WIDTH_IN = 9.0
OVERVIEW_IN, CHIP_ROW_IN, TOP_IN, BOTTOM_IN = 3.0, 2.1, 0.7, 0.5
TRACE_POINTS = 60  # points drawn per segment at most (plus its extremes): ~3 px apart at this size
LABEL_STRIP = 0.1  # share of the voltage range left free on each side for the labels of flagged runs
# No value in a figure is larger than this in its SI unit (A, V, V/cm, A/cm², W): the extremes of damaged
# files (1e308, an instrument's 9.9e37 overflow reading) would break matplotlib's tick locator or flatten
# the panel. The same limits in the tables' other units: UNIT_LIMITS, by a column name's unit suffix.
PLOTTABLE_LIMIT = 1e6
UNIT_LIMITS = {"nA": 1e15, "MOhm": 1e9}  # 1e6 A; 1e15 Ω (beyond any meter)
# A title's place fixed (axes.titley), not found from the tick labels below it at every drawing; text
# unhinted (FreeType's hinting was ~25 % of a day's drawing; at 12 px the glyphs look the same).
matplotlib.rcParams.update(
    {"font.size": FONT_PT, "axes.titlesize": FONT_PT + 0.5, "figure.titlesize": FONT_PT + 2, "axes.titley": 1.0, "text.hinting": "no_hinting"}
)
SI_PREFIXES = ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""))


# What the figure draws of the day's analysis tables (None: every column; iv_stats holds the fits).
DRAWN_COLUMNS = {
    "iv_stats": None,
    "hysteresis": ["chip", "v_max_V", "vsd_V", "i_hysteresis_raw_A"],
    "hysteresis_peaks": ["chip", "v_max_V", "method", "v_max_positive_V", "i_max_positive_A", "v_max_negative_V", "i_max_negative_A"],
}


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
    start: datetime | None = None


def plottable(values: np.ndarray, limit: float = PLOTTABLE_LIMIT) -> np.ndarray:
    """float64 values with NaN (a gap) where a value is not finite or beyond `limit`: what crosses from
    the data into matplotlib's axes, in every figure (one rule: the day, lab day and chip figures)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(values) <= limit, values, np.nan)


def column_limit(name: str) -> float:
    """The plottable limit of a table column, by its unit suffix (`resistance_MOhm`: 1e9)."""
    return UNIT_LIMITS.get(name.rsplit("_", 1)[-1], PLOTTABLE_LIMIT)


def si_unit(largest: float, unit: str = "A") -> tuple[float, str]:
    """The scale and unit ("µA") in which `largest` (> 0) reads as 1 to 999."""
    scale, prefix = next(((s, p) for s, p in reversed(SI_PREFIXES) if largest >= s * 0.9995), SI_PREFIXES[0])
    return scale, f"{prefix}{unit}"


def si_text(value: float, unit: str = "A") -> str:
    """3 significant digits with an SI prefix: 3.16e-7 -> "316 nA"."""
    if not np.isfinite(value) or value == 0:
        return f"0 {unit}" if value == 0 else "–"
    scale, name = si_unit(abs(value), unit)
    return f"{value / scale:.3g} {name}"


def run_infos(points: pa.Table, runs: pa.Table) -> list[RunInfo]:
    """The day's IV runs (segment manifest rows) in measurement order, numbered from 1, with flags."""
    if "start_dt" in runs.column_names:
        runs = runs.sort_by([("start_dt", "ascending"), ("source_file", "ascending")])  # no start time: last
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
        chip, peak, flag = chips.get(run_id, "not segmented"), extremes.get("max_abs_i_A"), ""
        if row["status"] != "ok":
            flag = "not segmented"
        elif not row["complete"] or row["n_segments"] != 4:
            flag = "incomplete"
        elif peak and (_off_by(peak, chip_median.get(chip)) or _off_by(peak, extremes.get("p95_abs_i_A"), below=False)):
            flag = "outlier"
        infos.append(
            RunInfo(number, run_id, row["source_file"], chip, extremes.get("v_max_V"), peak, row["n_segments"] or 0, flag, row.get("start_dt"))
        )
    return infos


def run_extremes(points: pa.Table) -> list[dict]:
    """Per run: its chip, largest |V|, largest |I| and 95th percentile of |I|, as Arrow's group-by gives
    them (max skips nulls and NaN, first skips nulls), from one sort of the day's rows by run: Arrow's
    group-by and a percentile per run cost ~30 ms a day."""
    if points.num_rows == 0:
        return []
    codes = pc.dictionary_encode(points["run_id"].combine_chunks(), null_encoding="encode")
    order = np.argsort(codes.indices.to_numpy(zero_copy_only=False), kind="stable")
    run = codes.indices.to_numpy(zero_copy_only=False)[order]
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    rows = [{"run_id": run_id} for run_id in codes.dictionary.take(pa.array(run[starts])).to_pylist()]
    for name in ("chip_group", "chip_number"):
        for row, value in zip(rows, first_valid(points[name].take(pa.array(order)), starts)):
            row[name] = value
    for name, column in (("v_max_V", "vsd_V"), ("max_abs_i_A", "i_A")):
        values = pc.abs(points[column]).take(pa.array(order))
        for row, value in zip(rows, largest(values, starts)):
            row[name] = value
    abs_i = np.abs(points["i_A"].fill_null(np.nan).to_numpy(zero_copy_only=False).astype(np.float64))[order]
    for row, value in zip(rows, percentile_of_runs(abs_i, starts, 95)):
        row["p95_abs_i_A"] = value
    return rows


def first_valid(values: pa.ChunkedArray, starts: np.ndarray) -> list:
    """Per run of rows (from each of `starts` to the next): its first non-null value, else None."""
    n = len(values)
    position = np.where(values.is_valid().to_numpy(zero_copy_only=False), np.arange(n), n)
    first = np.minimum.reduceat(position, starts)
    taken = values.take(pa.array(np.minimum(first, n - 1))).to_pylist()
    return [value if at < n else None for value, at in zip(taken, first)]


def largest(values: pa.ChunkedArray, starts: np.ndarray) -> list[float | None]:
    """Per run of rows: the largest value ignoring NaN (NaN when all are NaN), None when all are null."""
    x = values.fill_null(np.nan).to_numpy(zero_copy_only=False).astype(np.float64)
    valid = np.add.reduceat(values.is_valid().to_numpy(zero_copy_only=False).astype(np.int64), starts)
    with np.errstate(invalid="ignore"):
        peaks = np.fmax.reduceat(x, starts)
    return [float(peak) if count else None for peak, count in zip(peaks, valid)]


def percentile_of_runs(x: np.ndarray, starts: np.ndarray, q: float) -> list[float | None]:
    """Per run of rows: np.percentile(q) of its non-NaN values (the same linear interpolation, to the
    bit), None when it has none; one sort for the day instead of a numpy call per run."""
    n = x.size
    lengths = np.diff(np.r_[starts, n])
    run = np.repeat(np.arange(starts.size), lengths)
    x = x[np.lexsort((x, run))]  # ascending within each run, NaN last
    count = np.add.reduceat((~np.isnan(x)).astype(np.int64), starts)
    virtual = (count - 1) * (q / 100)
    previous = np.floor(virtual).astype(np.int64)
    following = np.minimum(previous + 1, count - 1)
    low, high = x[starts + np.maximum(previous, 0)], x[starts + np.maximum(following, 0)]
    gamma = virtual - previous
    with np.errstate(invalid="ignore"):
        difference = high - low
        value = np.where(gamma >= 0.5, high - difference * (1 - gamma), low + difference * gamma)  # numpy's _lerp
    return [float(v) if c else None for v, c in zip(value, count)]


def _off_by(value: float, reference: float | None, below: bool = True) -> bool:
    if not reference or np.isnan(reference):
        return False
    return value > OUTLIER_FACTOR * reference or (below and value < reference / OUTLIER_FACTOR)


def significant(value: float | None, digits: int = 4) -> float | None:
    """`value` rounded to `digits` significant digits (the CSV then prints 1.055, not 1.0554462436912685)."""
    return None if value is None else float(f"{value:.{digits}g}")


def runs_table(infos: list[RunInfo], zone: ZoneInfo | None = None) -> pa.Table:
    """The table shown beside the day's figure: each run's number (as in the figure), start time in
    the lab's timezone, file, chip and why it stands out; numbers to 4 significant digits."""
    return pa.table(
        {
            "run": [i.number for i in infos],
            "start_time": [i.start.astimezone(zone).isoformat(timespec="seconds") if i.start else None for i in infos],
            "source_file": [i.source_file for i in infos],
            "chip": [i.chip for i in infos],
            "v_max_V": pa.array([significant(i.v_max_V) for i in infos], pa.float64()),
            "max_abs_i_uA": pa.array([significant(None if i.max_abs_i_A is None else i.max_abs_i_A * 1e6) for i in infos], pa.float64()),
            "n_segments": [i.n_segments for i in infos],
            "flag": [i.flag for i in infos],
            "run_id": [i.run_id for i in infos],
        },
        schema=RUNS_SCHEMA,
    )


RUNS_SCHEMA = pa.schema(
    [
        ("run", pa.int64()),
        ("start_time", pa.string()),
        ("source_file", pa.string()),
        ("chip", pa.string()),
        ("v_max_V", pa.float64()),
        ("max_abs_i_uA", pa.float64()),
        ("n_segments", pa.int64()),
        ("flag", pa.string()),
        ("run_id", pa.string()),
    ]
)


def trace_pieces(points: pa.Table) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """(V, I) and (V, log10 |I|) polylines, one per run and segment in sweep order, thinned for drawing,
    with each piece's run_id and whether it returns. Vectorised over the day's rows: a Python call per
    piece (~5,000 a day) cost more than drawing them."""
    v = plottable(points["vsd_V"].fill_null(np.nan).to_numpy(zero_copy_only=False))
    i = plottable(points["i_A"].fill_null(np.nan).to_numpy(zero_copy_only=False))
    runs = pc.dictionary_encode(points["run_id"].combine_chunks(), null_encoding="encode")  # ints: 100,000 str compares cost ~10 ms
    run = runs.indices.to_numpy(zero_copy_only=False)
    segment = points["segment_id"].to_numpy(zero_copy_only=False)
    if v.size == 0:
        return [], [], np.array([], dtype=object), np.array([], dtype=bool)
    starts = np.flatnonzero(np.r_[True, (run[1:] != run[:-1]) | (segment[1:] != segment[:-1])])
    keep = drawn_rows(np.nan_to_num(i, nan=0.0), starts)
    kept_starts = np.cumsum(np.add.reduceat(keep.astype(np.int64), starts))[:-1]  # every piece keeps its first row
    v, i = v[keep], i[keep]
    magnitude = np.abs(i)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_i = np.log10(np.where(magnitude > 0, magnitude, np.nan))  # log of 0 is not a point
    linear = np.split(np.column_stack([v, i]), kept_starts)
    logarithmic = np.split(np.column_stack([v, log_i]), kept_starts)
    returning = pc.match_substring(points["segment_type"], "return").to_numpy(zero_copy_only=False)[starts]
    return linear, logarithmic, runs.dictionary.take(pa.array(run[starts])).to_numpy(zero_copy_only=False), returning


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


def chip_colours(chips: list[str]) -> dict[str, str]:
    return {chip: CHIP_COLOURS[k % len(CHIP_COLOURS)] for k, chip in enumerate(sorted(set(chips)))}


def current_scale(*arrays: np.ndarray) -> tuple[float, str]:
    """The SI scale of a panel: its largest finite |I| reads as 1 to 999."""
    largest = max((float(np.nanmax(np.abs(a))) for a in arrays if a.size and np.isfinite(a).any()), default=0.0)
    return si_unit(largest) if largest > 0 else (1.0, "A")


def spread_labels(wanted: np.ndarray, low: float, high: float, gap: float) -> np.ndarray:
    """Positions near `wanted` (sorted ascending) at least `gap` apart, kept inside [low, high]."""
    placed = np.maximum.accumulate(np.maximum(wanted, low + np.arange(wanted.size) * gap) - np.arange(wanted.size) * gap)
    placed = placed + np.arange(wanted.size) * gap
    overflow = placed[-1] - high if placed.size else 0.0
    if overflow > 0:  # pushed past the top: shift down, keeping the gaps
        placed = np.minimum(placed, high - (placed.size - 1 - np.arange(placed.size)) * gap)
    return placed


def draw_overview(points: pa.Table, infos: list[RunInfo], colour: dict[str, str], linear, logarithmic) -> None:
    """Every run and segment as one line collection per panel; stand-out runs bold and red, numbered in
    strips beside the curves (left of the voltage range for tips at negative V, right for positive)."""
    pieces, log_pieces, piece_runs, returning = trace_pieces(points)
    by_run = {i.run_id: i for i in infos}
    many = len(infos) >= 10
    scale, unit = current_scale(*(p[:, 1] for p in pieces))
    pieces = [p * (1.0, 1.0 / scale) for p in pieces]
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
                    ),
                    autolim=False,
                )
    linear.set_ylabel(f"I ({unit})")
    drawn = set(piece_runs)
    voltages = np.concatenate([p[:, 0] for p in pieces]) if pieces else np.zeros(0)
    finite_v = voltages[np.isfinite(voltages)]
    v_low, v_high = (float(finite_v.min()), float(finite_v.max())) if finite_v.size else (-1.0, 1.0)
    span = max(v_high - v_low, 1e-9)
    x_limits = (v_low - LABEL_STRIP * span, v_high + LABEL_STRIP * span)
    for axes, drawn_pieces in ((linear, pieces), (logarithmic, log_pieces)):
        ys = np.concatenate([p[:, 1] for p in drawn_pieces]) if drawn_pieces else np.zeros(0)
        ys = ys[np.isfinite(ys)]
        low, high = (float(ys.min()), float(ys.max())) if ys.size else (-1.0, 1.0)
        pad = 0.05 * (high - low) or max(abs(high) * 0.05, 1.0 if axes is logarithmic else 1e-3)
        axes.set_ylim(low - pad, high + pad)
    linear.set_xlim(*x_limits)
    flagged = [i for i in infos if i.flag and i.run_id in drawn]
    label_flagged(linear, flagged, pieces, piece_runs, x_limits)
    counts = Counter(i.chip for i in infos if i.run_id in drawn)
    handles = [Line2D([], [], color=colour[c], label=f"{c} ({n} run{'s' if n != 1 else ''})") for c, n in sorted(counts.items())]
    stand_out = sum(bool(i.flag) for i in infos if i.run_id in drawn)
    if stand_out:  # their numbers are beside the curves
        handles.append(Line2D([], [], color=FLAG_COLOUR, linewidth=1.6, label=f"stand out ({stand_out}): #n beside"))
    if handles:  # "best" searched the data: 60 ms a day; IV curves leave the upper left quadrant empty
        linear.legend(handles=handles, loc="upper left", handlelength=1.5, borderaxespad=0.3, labelspacing=0.3)
    if not infos:
        linear.text(0.5, 0.5, "no IV runs", ha="center", va="center", transform=linear.transAxes)


def label_flagged(axes, flagged: list[RunInfo], pieces: list[np.ndarray], piece_runs: np.ndarray, x_limits: tuple[float, float]) -> None:
    """ "#n" of each flagged run in the strip on the side of its largest |I|, at that height (spread so
    that no two labels overlap), joined to that point by a thin line: beside the curves, not on them."""
    if not flagged:
        return
    tips = []
    for info in flagged:
        run_points = np.concatenate([pieces[k] for k in np.flatnonzero(piece_runs == info.run_id)])
        finite = np.isfinite(run_points).all(axis=1)
        if finite.any():
            candidates = run_points[finite]
            tips.append((info.number, candidates[int(np.argmax(np.abs(candidates[:, 1])))]))
    low, high = axes.get_ylim()
    figure = axes.figure
    box = axes.get_position()
    px_per_pt = figure.dpi / 72
    line = (high - low) * 1.3 * FONT_PT * px_per_pt / max(box.height * figure.get_figheight() * figure.dpi, 1.0)
    per_char = (x_limits[1] - x_limits[0]) * 0.62 * FONT_PT * px_per_pt / max(box.width * figure.get_figwidth() * figure.dpi, 1.0)
    leaders = []
    for right in (False, True):
        side = sorted(((tip[1], number, tip) for number, tip in tips if (tip[0] >= 0) == right), key=lambda t: t[0])
        if not side:
            continue
        heights = spread_labels(np.array([t[0] for t in side]), low + line / 2, high - line / 2, line)
        x_label = x_limits[1] if right else x_limits[0]
        for (_, number, tip), y in zip(side, heights):
            text = f"#{number}"
            axes.text(x_label, y, text, color=FLAG_COLOUR, ha="right" if right else "left", va="center", fontweight="bold")
            end = x_label - (1 if right else -1) * (len(text) + 0.5) * per_char
            leaders.append([(tip[0], tip[1]), (end, y)])
    axes.add_collection(LineCollection(leaders, colors=FLAG_COLOUR, linewidths=0.6, alpha=0.7), autolim=False)


def chip_rows(stats: pa.Table) -> list[str]:
    """The chips (groups of the analysis) in the analysis tables' order: one figure row each."""
    return list(dict.fromkeys(stats["chip"].to_pylist()))


def vmax_colours(stats: pa.Table) -> dict[float, tuple]:
    """One colour per V_max of the day, the same in every chip's row."""
    values = sorted(set(stats["v_max_V"].drop_null().to_pylist()))
    return {v: VMAX_COLOURS(0.85 * k / max(len(values) - 1, 1)) for k, v in enumerate(values)}


def columns(table: pa.Table, *names: str) -> list[np.ndarray]:
    """Float columns as float64 arrays, NaN for null."""
    return [table[name].fill_null(np.nan).to_numpy(zero_copy_only=False).astype(np.float64) for name in names]


def draw_chip_row(chip: str, analysis: dict[str, pa.Table], colours: dict[float, tuple], fit_column: str | None, traces, loops, first: bool) -> None:
    """One chip's V_max groups: mean forward (solid) and return (dashed) traces with the fitted return
    (dotted), and the hysteresis with its raw peaks (▲ largest, ▼ smallest), one colour per V_max,
    each group labelled with its V_max at the end of its forward trace and atop the hysteresis panel."""
    stats, hysteresis, peaks = (
        t.filter(pc.equal(t["chip"], chip)) for t in (analysis["iv_stats"], analysis["hysteresis"], analysis["hysteresis_peaks"])
    )
    vmax, v, mean = columns(stats, "v_max_V", "vsd_V", "i_mean_A")
    forward = pc.equal(stats["branch"], "forward").to_numpy(zero_copy_only=False)
    fit = columns(stats, fit_column)[0] if fit_column else np.full(v.size, np.nan)
    loop_vmax, loop_v, loop_i = columns(hysteresis, "v_max_V", "vsd_V", "i_hysteresis_raw_A")
    v, mean, fit, loop_v, loop_i = (plottable(a) for a in (v, mean, fit, loop_v, loop_i))
    scale, unit = current_scale(mean, fit)
    loop_scale, loop_unit = current_scale(loop_i)
    lines: dict[str, list[np.ndarray]] = {"forward": [], "return": [], "fit": [], "loop": []}
    line_colours: dict[str, list] = defaultdict(list)
    groups = sorted(set(vmax[~np.isnan(vmax)].tolist()))
    for group in groups:
        colour = colours[group]
        for name, rows in (("forward", (vmax == group) & forward), ("return", (vmax == group) & ~forward)):
            lines[name].append(np.column_stack([v[rows], mean[rows] / scale]))
            line_colours[name].append(colour)
            if name == "return" and fit_column:
                lines["fit"].append(np.column_stack([v[rows], fit[rows] / scale]))
                line_colours["fit"].append(colour)
        rows = loop_vmax == group
        lines["loop"].append(np.column_stack([loop_v[rows], loop_i[rows] / loop_scale]))
        line_colours["loop"].append(colour)
    label_groups(traces, lines["forward"], groups, colours, largest_v=True)
    label_groups(loops, lines["loop"], groups, colours, largest_v=False)
    for axes, key, style, width in (
        (traces, "forward", "-", 1.2),
        (traces, "return", "--", 1.2),
        (traces, "fit", ":", 1.0),
        (loops, "loop", "-", 1.0),
    ):
        if lines[key]:
            axes.add_collection(
                LineCollection(lines[key], colors=line_colours[key], linestyles=style, linewidths=width, alpha=0.6 if key == "fit" else 1.0),
                autolim=False,  # the limits are set below
            )
    raw = peaks.filter(pc.equal(peaks["method"], "raw"))
    peak_vmax = columns(raw, "v_max_V")[0]
    for side, marker in (("positive", "^"), ("negative", "v")):
        x, y = (plottable(a) for a in columns(raw, f"v_max_{side}_V", f"i_max_{side}_A"))
        if x.size:
            loops.scatter(x, y / loop_scale, marker=marker, c=[colours.get(g, "grey") for g in peak_vmax], s=30, zorder=3)
    traces.set_ylabel(f"mean I ({unit})")
    loops.set_ylabel(f"I fwd − I ret ({loop_unit})")
    fit_name = fit_column.removeprefix("i_fit_").removesuffix("_A") if fit_column else "no"
    traces.set_title(f"{chip}: mean per V_max" + (f", fwd —, ret - -, {fit_name} fit ···" if first else ""), loc="left")
    loops.set_title(f"{chip}: hysteresis per V_max" + (", peaks ▲▼" if first else ""), loc="left")
    for axes, arrays in ((traces, (mean / scale, fit / scale)), (loops, (loop_i / loop_scale,))):
        ys = np.concatenate(arrays)
        ys = ys[np.isfinite(ys)]
        if ys.size:
            pad = 0.08 * (ys.max() - ys.min()) or 1.0
            axes.set_ylim(ys.min() - pad, ys.max() + 2 * pad)  # room atop for the V_max labels
        else:
            axes.set_ylim(-1.0, 1.0)
    if not groups:
        for axes in (traces, loops):
            axes.text(0.5, 0.5, "no V_max group with forward and return sweeps", ha="center", va="center", transform=axes.transAxes)


def label_groups(axes, lines: list[np.ndarray], groups: list[float], colours: dict[float, tuple], largest_v: bool) -> None:
    """ "2 V" beside each group's line, in its colour: at the end of its forward trace (largest V), or
    at its largest |hysteresis|, where that line stands out of the others."""
    beside = offset_copy(axes.transData, axes.figure, x=4, y=0, units="points")  # one transform: an annotation each cost ~2 ms
    for line, group in zip(lines, groups):
        finite = line[np.isfinite(line).all(axis=1)]
        if finite.size:
            x, y = finite[int(np.argmax(finite[:, 0] if largest_v else np.abs(finite[:, 1])))]
            axes.text(x, y, f"{group:g} V", transform=beside, color=colours[group], va="center", fontsize=FONT_PT - 1)


def fit_column_of(stats: pa.Table) -> str | None:
    fits = [name for name in stats.column_names if name.startswith("i_fit_poly")]
    return max(fits, key=lambda name: int(name.removeprefix("i_fit_poly").removesuffix("_A")), default=None)


class StringRenderer(RendererAgg):
    """Agg drawing each plain, unrotated string as one bitmap, as matplotlib did up to 3.9, and keeping
    the bitmaps: 3.11 lays out and draws every glyph in Python (for text shaping the figures' labels
    do not need), half of a day's drawing time; tick labels, titles and units repeat from day to day.
    Rotated and math text are left to matplotlib's own path."""

    def __init__(self, width: float, height: float, dpi: float) -> None:
        super().__init__(width, height, dpi)
        self.strings: dict[tuple, tuple[np.ndarray, float, float]] = {}

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath or angle:
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        key = (s, prop, gc.get_antialiased())
        if (drawn := self.strings.get(key)) is None:
            font = self._prepare_font(prop)
            font.set_text(s, 0, flags=get_hinting_flag())
            font.draw_glyphs_to_bitmap(antialiased=gc.get_antialiased())
            left, top = font.get_bitmap_offset()
            drawn = (font.get_image().copy(), left / 64, top / 64 + font.get_descent() / 64)
            if len(self.strings) > 5000:  # a month's figures hold a few hundred distinct strings
                self.strings.clear()
            self.strings[key] = drawn
        image, dx, dy = drawn
        self._renderer.draw_text_image(image, round(x + dx), round(y + dy) + 1, 0, gc)
        return None


class DayCanvas(FigureCanvasAgg):
    """FigureCanvasAgg with the StringRenderer (the same renderer reuse as FigureCanvasAgg's)."""

    def get_renderer(self) -> RendererAgg:
        key = (*self.get_width_height(physical=True), self.figure.dpi)
        if self._lastKey != key:
            self.renderer = StringRenderer(*key)
            self._lastKey = key
        return self.renderer


class Layout:
    """A figure of one overview row and `rows` chip rows, all panels on the same voltage range.

    Drawing time goes to matplotlib's layout of text and ticks, so the layout is fixed here once:
    titles and axis labels at set places (placing them by their neighbours' tick labels cost ~40 %
    of a day's drawing), the voltage range set on every panel rather than shared (a shared axis
    re-examines its siblings on every look-up), gridlines instead of tick marks, few ticks."""

    def __init__(self, rows: int) -> None:
        height = TOP_IN + OVERVIEW_IN + rows * CHIP_ROW_IN + BOTTOM_IN
        self.figure = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
        DayCanvas(self.figure)
        grid = self.figure.add_gridspec(1 + rows, 2, height_ratios=[OVERVIEW_IN] + [CHIP_ROW_IN] * rows)
        self.figure.subplots_adjust(left=0.08, right=0.985, bottom=BOTTOM_IN / height, top=1 - TOP_IN / height, wspace=0.28, hspace=0.25)
        self.axes = np.array([[self.figure.add_subplot(grid[r, c]) for c in range(2)] for r in range(1 + rows)])
        for axes in self.axes.flat:
            axes.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
            axes.yaxis.set_major_locator(MaxNLocator(nbins=5))
            axes.ticklabel_format(axis="y", useOffset=False, style="plain")
            axes.tick_params(bottom=False, left=False, labelbottom=False)
            axes.grid(True, alpha=0.3)
            axes.yaxis.set_label_coords(-0.13, 0.5)
        for axes in self.axes[-1]:
            axes.tick_params(labelbottom=True)
            axes.set_xlabel("Vsd (V)")
            axes.xaxis.set_label_coords(0.5, -0.16)
        overview, magnitude = self.axes[0]
        overview.set_title("every run, returns dashed", loc="left")
        magnitude.set_title("every run, |I| on a log scale", loc="left")
        magnitude.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        magnitude.yaxis.set_major_formatter(FuncFormatter(lambda decade, _: si_text(10.0**decade)))


def remove_drawn(axes: Iterable) -> None:
    """Take what a day put on reused axes off them (lines, collections, texts, legend); the axes stay."""
    for ax in axes:
        for artist in [*ax.lines, *ax.collections, *ax.texts]:
            artist.remove()
        if ax.get_legend():
            ax.get_legend().remove()


class DayFigure:
    """Draws days into figures reused across the days of a job, one per number of chip rows: building
    the axes and their ticks costs as much as drawing a day's data, so it is done once per layout."""

    def __init__(self) -> None:
        self.layouts: dict[int, Layout] = {}

    def draw(self, day: str, points: pa.Table, infos: list[RunInfo], analysis: dict[str, pa.Table]) -> Figure:
        stats = analysis["iv_stats"]
        chips = chip_rows(stats)
        layout = self.layouts.get(max(len(chips), 1)) or self.layouts.setdefault(max(len(chips), 1), Layout(max(len(chips), 1)))
        remove_drawn(layout.axes.flat)
        colour = chip_colours([i.chip for i in infos if i.flag != "not segmented"] + [c for c in chips if c in {i.chip for i in infos}])
        (overview, magnitude), *rows = layout.axes
        draw_overview(points, infos, colour, overview, magnitude)
        for axes in layout.axes.flat:
            axes.set_xlim(overview.get_xlim())
        colours, fit_column = vmax_colours(stats), fit_column_of(stats)
        for k, (traces, loops) in enumerate(rows):
            if chips:
                draw_chip_row(chips[k], analysis, colours, fit_column, traces, loops, first=k == 0)
                traces.title.set_color(colour.get(chips[k], "black"))
                loops.title.set_color(colour.get(chips[k], "black"))
            else:
                traces.set_title("mean per chip and V_max", loc="left", color="black")
                loops.set_title("hysteresis per chip and V_max", loc="left", color="black")
                for axes in (traces, loops):
                    axes.text(0.5, 0.5, "no V_max group with forward and return sweeps", ha="center", va="center", transform=axes.transAxes)
        n, drawn = len(infos), [i for i in infos if i.flag != "not segmented"]
        numbered = {i.chip for i in drawn if NO_CHIP_NUMBER not in i.chip}
        chipless = sum(NO_CHIP_NUMBER in i.chip for i in drawn)
        not_drawn = n - len(drawn)
        layout.figure.suptitle(
            f"IV sweeps on {day}: {n} run{'s' if n != 1 else ''}"
            + (f" on {len(numbered)} chip{'s' if len(numbered) != 1 else ''}" if numbered else "")
            + (f", {chipless} without chip number" if chipless else "")
            + (f", {not_drawn} not segmented (not drawn)" if not_drawn else ""),
            y=1 - 0.12 / layout.figure.get_figheight(), va="top",
        )  # fmt: skip
        return layout.figure


def save_png(figure: Figure, path: Path) -> Written:
    """Rendered in memory, written whole or not at all: a report never picks up half an image."""
    image = io.BytesIO()
    figure.savefig(image, dpi=DPI, format="png", pil_kwargs={"compress_level": 1})  # zlib level 6 took longer than drawing
    return write_bytes_atomic(image.getvalue(), path)


def plot_month(
    points_files: list[Path],
    segment_manifests: list[Path],
    analysis_manifest: Path,
    figure_dir: Path,
    runs_dir: Path,
    drawn_dir: Path,
    timezone: str = "UTC",
    engine: reuse.Engine = reuse.IN_PROCESS,
) -> list[Path]:
    """A figure and a runs table for every day of the month that has IV runs.

    Each day is drawn into `drawn_dir` with a reuse record of what it was drawn from, then linked into
    the job's declared folders (which Snakemake empties before the job). A day whose inputs and code
    are unchanged is linked, not redrawn: one edited raw file redraws one day (~0.25 s), not a month.
    Start times in the runs table are given in `timezone`, the lab's."""
    zone = ZoneInfo(timezone)
    runs = pa.concat_tables([read_parquet(path).cast(SEGMENT_MANIFEST) for path in segment_manifests]) if segment_manifests else None
    tables_of: dict[str, list[dict]] = defaultdict(list)  # day -> its analysis tables (kind, output)
    for row in read_parquet(analysis_manifest).to_pylist():
        tables_of[row["date"]].append(row)
    points_of, runs_of = points_by_day(points_files), points_by_day(segment_manifests)
    canvas = cache(DayFigure)  # built on the first day that is drawn: its axes cost ~0.1 s a layout
    days = outputs.iv_days(runs.select(["date"]).to_pydict()) if runs is not None else []
    written, redrawn = [], 0
    records = reuse.Folder(drawn_dir)
    for day in days:
        inputs = [*points_of.get(day, []), *runs_of.get(day, []), *(Path(row["output"]) for row in tables_of[day])]
        parts = (f"{path}:{reuse.content_id(path)}" for path in inputs)
        record_key = engine.key("day figure", reuse.library_key("matplotlib"), day, timezone, *parts)
        figure, table = drawn_dir / f"date={day}.png", drawn_dir / f"date={day}.csv"
        draw = partial(draw_day, canvas, day, runs, points_of.get(day, []), tables_of[day], zone, (figure, table))
        redrawn += engine.reuse_or_make(records, f"date={day}", record_key, draw, day)[1]
        written += [link_or_copy(figure, figure_dir / figure.name), link_or_copy(table, runs_dir / table.name)]
    figure_dir.mkdir(parents=True, exist_ok=True)
    runs_dir.mkdir(parents=True, exist_ok=True)
    drop_other_days(drawn_dir, set(days))
    log.info("%d days: %d drawn, %d unchanged since drawn", len(days), redrawn, len(days) - redrawn)
    return written


def draw_day(
    canvas: Callable[[], DayFigure],
    day: str,
    runs: pa.Table,
    points_files: list[Path],
    tables_of_day: list[dict],
    zone: ZoneInfo,
    paths: tuple[Path, Path],
) -> tuple[dict, list[Written]]:
    """Draw one day's figure and write its runs table (`paths`); what its reuse record vouches for."""
    figure, table = paths
    day_runs = runs.filter(pc.equal(runs["date"], day))
    points = read_points(points_files, with_segments=True)
    tables = {row["kind"]: read_parquet(row["output"], DRAWN_COLUMNS[row["kind"]]) for row in tables_of_day if row["kind"] in DRAWN_COLUMNS}
    if not tables:
        tables = {kind: output_schema(kind, AnalysisSettings()).empty_table() for kind in DRAWN_COLUMNS}
    infos = run_infos(points, day_runs)
    return {}, [save_png(canvas().draw(day, points, infos, tables), figure), write_bytes_atomic(csv_bytes(runs_table(infos, zone)), table)]


def drop_other_days(drawn_dir: Path, days: set[str]) -> None:
    """Drawings of days the month no longer has (their raw files were removed or moved)."""
    for path in drawn_dir.glob("date=*"):
        if path.name.removeprefix("date=").split(".")[0] not in days:
            path.unlink()


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--points", type=Path, nargs="*", default=[], help="the month's iv_points batch files")
    parser.add_argument("--segment-manifests", type=Path, nargs="*", default=[], help="the month's segment batch manifests")
    parser.add_argument("--analysis-manifest", type=Path, required=True, help="the month's analysis manifest")
    parser.add_argument("--figure-dir", type=Path, required=True)
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--drawn-dir", type=Path, required=True, help="where each day is drawn and kept while its inputs are unchanged")
    parser.add_argument("--timezone", default="UTC", help="the lab's timezone, for the runs' start times")


def run_job(args: argparse.Namespace) -> None:
    engine = job.engine(args, "figures")
    plot_month(args.points, args.segment_manifests, args.analysis_manifest, args.figure_dir, args.runs_dir, args.drawn_dir, args.timezone, engine)


def main(argv: list[str] | None = None) -> None:
    job.main("python -m nanolab.plots", __doc__, arguments, run_job, argv, reuses=True)


if __name__ == "__main__":
    main()
