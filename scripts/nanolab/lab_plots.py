"""Report figures of the lab's further analysis, one job for all of them (matplotlib's import, ~1 s CPU,
is paid once): per day the backward-subtracted J(E) curves of each chip's V_max groups; per chip its
coercive field against V_max and against the effective laser power, and its history (resistance and
hysteresis against date). Small figures with few text artists, read like the day figures: their text
size (FONT_PT at DPI), SI-prefixed units chosen per panel and never an offset text, chips named by
chips.chip_label; a figure whose data are unchanged is not redrawn (`_lab_drawn/` keeps it with a reuse
record, as plots.py does for the day figures).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.collections import LineCollection
from matplotlib.dates import DateFormatter, DayLocator
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import AutoLocator, ScalarFormatter

from . import job, reuse
from .atomic import Written, link_or_copy
from .chips import NO_CHIP_NUMBER, POOLED, chip_label
from .io import read_parquet
from .lab_analysis_job import HISTORY
from .plots import (  # plots selects Agg first
    CHIP_COLOURS,
    DPI,
    DayCanvas,
    column_limit,
    current_scale,
    plottable,
    remove_drawn,
    save_png,
    si_unit,
    vmax_colours,
)
from .subtraction import COERCIVE, SUBTRACTED, key_columns
from .subtraction import chip_label as chip_key

log = logging.getLogger("nanolab")


def chip_file_name(label: str) -> str:
    """A chip label as a file name: letters, digits, '-' and '_' only ('Alisson 67' -> 'Alisson_67')."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_") or "no_chip"


def _chips(table: pa.Table) -> dict[str, pa.Table]:
    """{chip key ("Alisson 67", the config's and the file names' spelling): its rows} (keys other than
    v_max_V name the chip)."""
    keys = [k for k in key_columns(table) if k != "v_max_V"]
    label_of: dict[tuple, str] = {}  # one label per distinct key, not per row (~0.15 s a lab-scale job)
    labels = [
        label_of.get(values) or label_of.setdefault(values, chip_key(dict(zip(keys, values))) or (NO_CHIP_NUMBER if keys else POOLED))
        for values in zip(*(table[k].to_pylist() for k in keys))
    ]
    column = pa.array(labels, pa.string())
    return {label: table.filter(pc.equal(column, label)) for label in sorted(set(labels))}


def chip_title(rows: pa.Table) -> str:
    """A chip's name as every other figure and table has it ("Alisson67"), from its rows' key."""
    names = rows.column_names
    if rows.num_rows == 0 or not {"chip_group", "chip_number"} & set(names):
        return POOLED
    value = {name: rows[name][0].as_py() if name in names else None for name in ("chip_group", "chip_number")}
    return chip_label(value["chip_group"], value["chip_number"])


def _plain(*axes) -> None:
    """Ticks as plain numbers: units carry the SI prefix, never an offset text ("1e-8") on an axis
    (date and fixed tick labels have none)."""
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(formatter := axis.get_major_formatter(), ScalarFormatter):
                formatter.set_useOffset(False)
                formatter.set_scientific(False)


def _order_text(table: pa.Table, column: str) -> str:
    """ ", order 3": the polynomial order a panel draws, when its rows say."""
    orders = sorted(set(table[column].to_pylist()) - {None}) if column in table.column_names else []
    return f", order {', '.join(map(str, orders))}" if orders else ""


def _values(table: pa.Table, name: str) -> np.ndarray:
    """A column as float64, null, non-finite and out-of-range values a gap (plots.plottable, as every figure)."""
    if not table.num_rows:
        return np.zeros(0)
    return plottable(pc.fill_null(table[name], np.nan).to_numpy(zero_copy_only=False), column_limit(name))


class Reused:
    """A figure built once per job and redrawn for each day or chip: building the axes and their ticks
    cost ~1/3 of the lab figures' job (docs/figures.md). `clear` leaves the axes as built, with the
    default locators and formatters (a test compares the pixels with a fresh figure's)."""

    def __init__(self, figsize: tuple[float, float], rows: int, cols: int) -> None:
        self.figure = Figure(figsize=figsize, dpi=DPI)
        DayCanvas(self.figure)
        self.axes = list(np.atleast_1d(self.figure.subplots(rows, cols)).flat)

    def clear(self) -> list:
        remove_drawn(self.axes)
        for ax in self.axes:
            ax.xaxis.set_major_locator(AutoLocator())
            ax.yaxis.set_major_locator(AutoLocator())
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.relim()
            ax.autoscale(True)
        self.figure.suptitle("")
        return self.axes


def day_figure() -> Reused:
    figure = Reused((7.0, 3.4), 1, 1)
    figure.figure.subplots_adjust(left=0.11, right=0.8, top=0.9, bottom=0.15)
    (ax,) = figure.axes
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("E (V/cm)")
    return figure


def chip_figure() -> Reused:
    figure = Reused((9.0, 5.4), 2, 2)
    figure.figure.subplots_adjust(left=0.08, right=0.96, top=0.9, bottom=0.09, wspace=0.24, hspace=0.42)  # room for the last date
    for ax in figure.axes:
        ax.grid(True, alpha=0.3)
    return figure


def draw_day(day: str, subtracted: pa.Table, order: int, reused: Reused | None = None) -> Figure:
    """One panel: J_forward_sub (solid) and J_backward_sub (dashed) against E of every group, a colour
    per chip (each group spans its own ±E_max), J in the SI unit of its largest value. One axes and a
    legend of chips: a panel costs ~0.04 s CPU with its PNG, mostly its text; one panel per chip cost 0.2-0.3 s a day.
    Drawn into `reused` (a `day_figure()`) when given."""
    reused = reused or day_figure()
    (ax,) = reused.clear()
    forward, backward = f"j_forward_sub_poly{order}_A_cm2", f"j_backward_sub_poly{order}_A_cm2"
    curves = []  # (colour, chip name or None, E, J forward, J backward)
    for k, rows in enumerate(_chips(subtracted).values()):
        colour, name = CHIP_COLOURS[k % len(CHIP_COLOURS)], chip_title(rows)
        for n, v_max in enumerate(sorted(set(rows["v_max_V"].to_pylist()) - {None})):
            group = rows.filter(pc.equal(rows["v_max_V"], v_max))
            if forward not in group.column_names:
                continue
            e, j_forward, j_backward = _values(group, "e_field_V_cm"), _values(group, forward), _values(group, backward)
            shared = ~np.isnan(j_forward)  # voltages the reference also has: the curve joins those
            curves.append((colour, name if n == 0 else None, e[shared], j_forward[shared], j_backward[shared]))
    scale, unit = current_scale(*(j for curve in curves for j in curve[3:]))
    legend = {}  # chip name: its legend line
    for colour in dict.fromkeys(curve[0] for curve in curves):  # one collection per chip and style: ~8x fewer artists than a line per curve
        ours = [curve for curve in curves if curve[0] == colour]
        for column, style in ((3, "-"), (4, "--")):
            pieces = [np.column_stack((c[2], c[column] / scale)) for c in ours]
            ax.add_collection(LineCollection(pieces, colors=colour, linewidths=0.8, linestyles=style))
        legend |= {c[1]: Line2D([], [], color=colour, lw=0.8) for c in ours if c[1] is not None}
    title = f"{day}: backward-subtracted J(E), order {order}, backward dashed" if curves else f"{day}: no V_max group"
    ax.set_title(title, loc="left")
    ax.locator_params(nbins=6)  # tick labels are most of the drawing time
    _plain(ax)
    ax.set_ylabel(f"J ({unit}/cm²)")
    if curves:
        ax.legend(legend.values(), legend.keys(), frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the curves, not on them
    else:  # no axis to read (and a reused axes keeps its last limits)
        ax.set_xticks([])
        ax.set_yticks([])
    return reused.figure


def draw_chip(label: str, coercive: pa.Table, history: pa.Table, reused: Reused | None = None) -> Figure:
    """E_c against V_max and against effective power (both sides, |E_c|), resistance and hysteresis against
    date; the title is the chip's name as chips.chip_label gives it (`label` is the file names' key).
    Drawn into `reused` (a `chip_figure()`) when given."""
    reused = reused or chip_figure()
    by_vmax, by_power, resistance, hysteresis = reused.clear()
    v_max, power = _values(coercive, "v_max_V"), _values(coercive, "effective_power_W")
    known = power[np.isfinite(power)]
    power_scale, power_unit = si_unit(float(known.max()), "W") if known.size and known.max() > 0 else (1.0, "W")
    for side, marker in (("pos", "o"), ("neg", "s")) if v_max.size else ():  # no rows: no empty legend entries
        e_c = np.abs(_values(coercive, f"e_coercive_{side}_V_cm"))
        by_vmax.plot(v_max, e_c, marker, ms=4, mfc="none" if side == "neg" else None, color=CHIP_COLOURS[0], ls="none", label=f"{side} side")
        if known.size and known.max() > 0:
            by_power.plot(power / power_scale, e_c, marker, ms=4, mfc="none" if side == "neg" else None, color=CHIP_COLOURS[1], ls="none")
    groups = sorted(set(v_max[np.isfinite(v_max)].tolist()))
    if 0 < len(groups) <= 6:  # the groups themselves as ticks, not a range around one of them
        by_vmax.set_xticks(groups, [f"{g:g}" for g in groups])
    by_vmax.set_xlabel("V_max (V)")
    by_vmax.set_ylabel("|E_c| (V/cm)")
    by_vmax.set_title(f"coercive field{_order_text(coercive, 'poly_order')}", loc="left")
    by_power.set_title("coercive field against laser power", loc="left")
    if by_vmax.lines:
        by_vmax.legend(frameon=False)
    else:  # no axis to read (and a reused axes keeps its last limits)
        by_vmax.text(0.5, 0.5, "no coercive field", ha="center", va="center", transform=by_vmax.transAxes)
        by_vmax.set_xticks([])
        by_vmax.set_yticks([])
    by_power.set_xlabel(f"effective laser power ({power_unit})")
    if not by_power.lines:  # no axis to read: say why instead of a meaningless range
        unknown = int(np.isnan(power).sum())
        why = ["dark runs only (effective power 0)"] if known.size else []
        why += [f"{unknown} group{'s' if unknown != 1 else ''} without a known laser power"] if unknown else []
        by_power.text(0.5, 0.5, "\n".join(why) or "no coercive field", ha="center", va="center", transform=by_power.transAxes)
        by_power.set_xticks([])
        by_power.set_yticks([])
    dates = np.array(history["date"].to_pylist(), dtype="datetime64[D]") if history.num_rows else np.zeros(0, "datetime64[D]")
    hysteresis_A = _values(history, "hysteresis_mean_nA") * 1e-9
    h_scale, h_unit = current_scale(hysteresis_A)
    for group, colour in vmax_colours(history).items():  # as in the day figures: ordered, distinct for any number of groups
        at = np.flatnonzero(_values(history, "v_max_V") == group)
        resistance.plot(dates[at], _values(history, "resistance_MOhm")[at], "o-", ms=3, lw=0.8, color=colour, label=f"{group:g} V")
        hysteresis.plot(dates[at], hysteresis_A[at] / h_scale, "o-", ms=3, lw=0.8, color=colour)
    resistance.set_ylabel("R (MΩ)")
    resistance.set_title("resistance per V_max group", loc="left")
    hysteresis.set_ylabel(f"hysteresis mean ({h_unit})")
    hysteresis.set_title(f"hysteresis mean{_order_text(history, 'hysteresis_order')}", loc="left")
    if resistance.lines:
        resistance.legend(ncol=3, frameon=False)
    for ax in (by_vmax, by_power, resistance, hysteresis):
        ax.locator_params(axis="y", nbins=4)  # tick labels are most of the drawing time
    _plain(by_vmax, by_power, resistance, hysteresis)
    for ax in (resistance, hysteresis):
        span = 1
        if dates.size:  # a day's margin: one date alone is no range
            ax.set_xlim(dates.min() - np.timedelta64(1, "D"), dates.max() + np.timedelta64(1, "D"))
            span = int((dates.max() - dates.min()).astype(int)) + 2
        ax.xaxis.set_major_locator(DayLocator(interval=max(1, span // 4)))
        ax.xaxis.set_major_formatter(DateFormatter("%d %b"))  # day and month at each tick, the year in the label
        ax.set_xlabel(f"date ({'–'.join(sorted({str(d)[:4] for d in dates}))})" if dates.size else "date")
    reused.figure.suptitle(chip_title(history if history.num_rows else coercive))
    return reused.figure


def _digest(*tables: pa.Table) -> str:
    """What a chip figure is drawn from (its rows' values), as a short hash."""
    text = "\x00".join(repr(t.to_pydict()) for t in tables)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def plot_all(manifest: Path, day_dir: Path, chip_dir: Path, drawn_dir: Path, order: int, engine: reuse.Engine = reuse.IN_PROCESS) -> tuple[int, int]:
    """Every day and chip figure, drawn into `drawn_dir` unless unchanged (`engine`: the same data and code,
    not forced), then linked into the folders."""
    outputs: dict[str, dict[str, str]] = {}
    for row in read_parquet(manifest).to_pylist():
        outputs.setdefault(row["kind"], {})[row["date"]] = row["output"]
    day_dir.mkdir(parents=True, exist_ok=True)
    chip_dir.mkdir(parents=True, exist_ok=True)
    drawn_dir.mkdir(parents=True, exist_ok=True)
    drawn, keep, records = 0, set(), reuse.Folder(drawn_dir)
    day_canvas, chip_canvas = cache(day_figure), cache(chip_figure)  # built on first use: a rerun may redraw none
    for day, path in sorted(outputs.get(SUBTRACTED, {}).items()):
        name = f"date={day}"
        record_key = engine.key("lab day figure", reuse.library_key("matplotlib"), str(order), reuse.content_id(Path(path)))
        make = partial(day_png, drawn_dir / f"{name}.png", day, Path(path), order, day_canvas)
        drawn += engine.reuse_or_make(records, name, record_key, make, day)[1]
        link_or_copy(drawn_dir / f"{name}.png", day_dir / f"{name}.png")
        keep.add(name)
    coercive, history = (_all_days(outputs.get(kind, {})) for kind in (COERCIVE, HISTORY))
    coercive = coercive.filter(pc.equal(coercive["poly_order"], order)) if coercive.num_rows else coercive
    coercive_of, history_of = _chips(coercive) if coercive.num_rows else {}, _chips(history) if history.num_rows else {}
    for label, rows in history_of.items():
        name = f"chip={chip_file_name(label)}"
        chip_coercive = coercive_of.get(label, coercive.slice(0, 0))
        record_key = engine.key("lab chip figure", reuse.library_key("matplotlib"), label, _digest(chip_coercive, rows))
        make = partial(chip_png, drawn_dir / f"{name}.png", label, chip_coercive, rows, chip_canvas)
        drawn += engine.reuse_or_make(records, name, record_key, make)[1]
        link_or_copy(drawn_dir / f"{name}.png", chip_dir / f"{name}.png")
        keep.add(name)
    for path in drawn_dir.iterdir():  # days and chips no longer in the results
        if path.name.rsplit(".", 1)[0] not in keep:
            path.unlink()
    return len(keep), drawn


def day_png(png: Path, day: str, subtracted: Path, order: int, canvas: Callable[[], Reused]) -> tuple[dict, list[Written]]:
    """A day's figure drawn into `png`: what its reuse record vouches for."""
    return {}, [save_png(draw_day(day, read_parquet(subtracted), order, canvas()), png)]


def chip_png(png: Path, label: str, coercive: pa.Table, rows: pa.Table, canvas: Callable[[], Reused]) -> tuple[dict, list[Written]]:
    """A chip's figure drawn into `png`: what its reuse record vouches for."""
    return {}, [save_png(draw_chip(label, coercive, rows, canvas()), png)]


def _all_days(paths: dict[str, str]) -> pa.Table:
    """One kind's rows of every day, with the day (the coercive table has none of its own)."""
    tables = []
    for day, path in sorted(paths.items()):
        table = read_parquet(path)
        if table.num_rows:
            tables.append(table if "date" in table.column_names else table.append_column("date", pa.array([day] * table.num_rows, pa.string())))
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({"date": pa.array([], pa.string())})


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lab-manifest", type=Path, required=True, help="the lab_analysis job's manifest")
    parser.add_argument("--day-dir", type=Path, required=True)
    parser.add_argument("--chip-dir", type=Path, required=True)
    parser.add_argument("--drawn-dir", type=Path, required=True, help="where figures are drawn and kept while their data are unchanged")
    parser.add_argument("--order", type=int, required=True, help="the polynomial order drawn")


def run_job(args: argparse.Namespace) -> None:
    engine = job.engine(args, "lab_figures")
    figures, drawn = plot_all(args.lab_manifest, args.day_dir, args.chip_dir, args.drawn_dir, args.order, engine)
    log.info("%d figures: %d drawn, %d unchanged since drawn", figures, drawn, figures - drawn)


def main(argv: list[str] | None = None) -> None:
    job.main("python -m nanolab.lab_plots", __doc__, arguments, run_job, argv, reuses=True)


if __name__ == "__main__":
    main()
