"""IV figures for the report: one overview per measurement day, one figure per flagged run.

    python -m nanolab.plots day --results results --date 2025-09-12 \\
        --segment-manifests results/03_intermediate/_batches/date=2025-09-12/*.parquet \\
        --overview overview.png --flagged-dir flagged/
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .io import read_parquet  # noqa: E402
from .iv_segments import MANIFEST_SCHEMA  # noqa: E402
from .manifest import flagged_runs  # noqa: E402
from .read import load_segments  # noqa: E402
from .segment import SEGMENT_TYPES  # noqa: E402

# Okabe-Ito: distinguishable with the common colour-vision deficiencies; blue/orange = polarity.
SEGMENT_COLOURS = dict(zip(SEGMENT_TYPES, ("#0072B2", "#56B4E9", "#D55E00", "#E69F00")))
# Returns dashed, so a return sweep without hysteresis does not hide its forward sweep.
LINESTYLES = {kind: "--" if kind.startswith("return") else "-" for kind in SEGMENT_TYPES}
COLUMNS = ["run_id", "segment_id", "segment_type", "vsd_V", "i_A"]


def draw_iv(segments: pd.DataFrame, linear: plt.Axes, logarithmic: plt.Axes, width: float, alpha: float) -> None:
    """I vs Vsd and log10|I| vs Vsd, one line per run and segment, coloured by segment type."""
    for (_, _), part in segments.groupby(["run_id", "segment_id"], sort=False):
        kind = part["segment_type"].iat[0]
        style = {"color": SEGMENT_COLOURS[kind], "linewidth": width, "alpha": alpha, "linestyle": LINESTYLES[kind]}
        current = part["i_A"].to_numpy()
        linear.plot(part["vsd_V"], current, **style)
        magnitude = np.where(np.abs(current) > 0, np.abs(current), np.nan)  # log of 0 is not a point
        logarithmic.plot(part["vsd_V"], np.log10(magnitude), **style)
    linear.set(xlabel="Vsd (V)", ylabel="I (A)", title="I vs Vsd")
    logarithmic.set(xlabel="Vsd (V)", ylabel="log10 |I| (A)", title="log |I| vs Vsd")
    present = [t for t in SEGMENT_TYPES if t in set(segments["segment_type"])]
    handles = [Line2D([], [], color=SEGMENT_COLOURS[t], linestyle=LINESTYLES[t], label=t.replace("_", " ")) for t in present]
    if handles:
        linear.legend(handles=handles, loc="best", fontsize="small")
    for axes in (linear, logarithmic):
        axes.grid(True, alpha=0.3)


def day_overview(segments: pd.DataFrame, day: str) -> Figure:
    """All IV runs of one day; lines get thinner and lighter as runs get more numerous."""
    figure, (linear, logarithmic) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    runs = segments["run_id"].nunique() if len(segments) else 0
    if runs:
        draw_iv(segments, linear, logarithmic, width=1.2 if runs < 10 else 0.6, alpha=0.9 if runs < 10 else 0.35)
    else:
        for axes in (linear, logarithmic):
            axes.text(0.5, 0.5, "no IV runs", ha="center", va="center", transform=axes.transAxes)
    figure.suptitle(f"IV sweeps on {day}: {runs} run{'s' if runs != 1 else ''}")
    return figure


def run_figure(run: pd.DataFrame, title: str) -> Figure:
    """One flagged run, larger, with its segments labelled by type."""
    figure, (linear, logarithmic) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    draw_iv(run, linear, logarithmic, width=1.6, alpha=1.0)
    figure.suptitle(title)
    return figure


def save_png(figure: Figure, path: Path) -> Path:
    """Write beside the target and rename, so a report never picks up half an image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)
    os.replace(temporary, path)
    return path


def plot_day(results: Path, day: str, segment_manifests: list[Path], overview: Path, flagged_dir: Path) -> list[Path]:
    """The day's overview and a figure per flagged run (a run without exactly four segment types)."""
    manifests = [read_parquet(path).cast(MANIFEST_SCHEMA) for path in segment_manifests]
    runs = pa.concat_tables(manifests) if manifests else MANIFEST_SCHEMA.empty_table()
    # only the runs the day's manifests list: a deleted run's files may wait for the cleanup job
    segments = load_segments(results, date=day, columns=COLUMNS, run_id=runs["run_id"].to_pylist())
    save_png(day_overview(segments, day), overview)
    flagged = flagged_runs(runs)
    flagged_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for row in flagged.to_pylist():
        run = segments[segments["run_id"] == row["run_id"]]
        title = f"{row['source_file']}: {row['n_segments'] or 0} segments ({row['segment_types'] or row['reason']})"
        written.append(save_png(run_figure(run, title), flagged_dir / f"{row['run_id']}.png"))
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nanolab.plots", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    day = commands.add_parser("day", help="overview and flagged-run figures of one measurement day")
    day.add_argument("--results", type=Path, required=True)
    day.add_argument("--date", required=True)
    day.add_argument("--overview", type=Path, required=True)
    day.add_argument("--flagged-dir", type=Path, required=True)
    day.add_argument("--segment-manifests", type=Path, nargs="*", default=[])
    args = parser.parse_args(argv)
    plot_day(args.results, args.date, args.segment_manifests, args.overview, args.flagged_dir)


if __name__ == "__main__":
    main()
