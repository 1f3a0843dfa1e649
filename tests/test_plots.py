"""Day figures: every run drawn and traceable to its run and chip, stand-out runs flagged and numbered
beside the curves, currents with SI prefixes, one row of analysis panels per chip with its V_max groups
labelled, runs without a chip number named so, figures reused for many days without leftovers, and
damaged values that never break a figure."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import matplotlib.colors as mcolors
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.text import Text
from nanolab.analysis import AnalysisSettings, analyse_day
from nanolab.manifest import csv_bytes
from nanolab.plots import CHIP_COLOURS, FLAG_COLOUR, PLOTTABLE_LIMIT, DayCanvas, DayFigure, drawn_rows, plottable, run_infos, runs_table, save_png
from nanolab.segment import find_segments
from nanolab.synthetic import iv_voltages


def day_points(runs: list[tuple[str, int, np.ndarray, np.ndarray]]) -> pa.Table:
    """iv_points rows (run, chip, V, I) segmented by the real algorithm."""
    columns: dict[str, list] = {name: [] for name in ("run_id", "chip_group", "chip_number", "segment_id", "segment_type", "vsd_V", "i_A")}
    for run_id, chip, voltage, current in runs:
        for s in find_segments(voltage):
            n = s.stop - s.start
            columns["run_id"] += [run_id] * n
            columns["chip_group"] += ["Alisson"] * n
            columns["chip_number"] += [chip] * n
            columns["segment_id"] += [s.segment_id] * n
            columns["segment_type"] += [s.segment_type] * n
            columns["vsd_V"] += voltage[s.start : s.stop].tolist()
            columns["i_A"] += current[s.start : s.stop].tolist()
    return pa.table(
        columns,
        schema=pa.schema(
            [(k, pa.int64() if k in ("chip_number", "segment_id") else pa.float64() if k in ("vsd_V", "i_A") else pa.string()) for k in columns]
        ),
    )


def manifest_rows(points: pa.Table, extra: list[dict] = ()) -> pa.Table:
    """Segment manifest rows the way the figure job reads them (sorted by source file)."""
    rows = []
    for run_id in sorted(set(points["run_id"].to_pylist())):
        kinds = {t for r, t in zip(points["run_id"].to_pylist(), points["segment_type"].to_pylist()) if r == run_id}
        rows.append(
            {"run_id": run_id, "source_file": f"2025-09-11/{run_id}.csv", "status": "ok", "n_segments": len(kinds), "complete": len(kinds) == 4}
        )
    return pa.Table.from_pylist(rows + list(extra))


def lab_day() -> tuple[pa.Table, pa.Table]:
    """Six runs on two chips; run 'c' has a 1e-2 A glitch, run 'e' was stopped early."""
    full, aborted = iv_voltages(1.0, 0.05), iv_voltages(1.0, 0.05, abort_after=50)
    runs = []
    for k, name in enumerate("abcdef"):
        voltage = aborted if name == "e" else full
        current = voltage / (1e7 * (1 + 0.05 * k))
        if name == "c":
            current = current.copy()
            current[12] = 1e-2
        runs.append((name, 67 if k % 2 == 0 else 68, voltage, current))
    points = day_points(runs)
    missing = {"run_id": "g", "source_file": "2025-09-11/g.csv", "status": "reject", "n_segments": None, "complete": None}
    return points, manifest_rows(points, [missing])


def test_runs_are_numbered_in_measurement_order_and_the_odd_ones_flagged():
    points, runs = lab_day()
    # started in the order g, f, e, …, a (file order is the other way round); c has no start time: last
    starts = {name: datetime(2025, 9, 11, 20 - k, tzinfo=UTC) for k, name in enumerate("abcdefg")}
    runs = runs.append_column(
        "start_dt", pa.array([None if r == "c" else starts[r] for r in runs["run_id"].to_pylist()], pa.timestamp("us", tz="UTC"))
    )
    infos = run_infos(points, runs)
    assert [(i.number, i.run_id) for i in infos] == [(1, "g"), (2, "f"), (3, "e"), (4, "d"), (5, "b"), (6, "a"), (7, "c")]
    assert {i.run_id: i.flag for i in infos if i.flag} == {"c": "outlier", "e": "incomplete", "g": "not segmented"}
    assert {i.run_id: i.chip for i in infos if i.run_id != "g"} == {r: f"Alisson{67 + k % 2}" for k, r in enumerate("abcdef")}
    c = infos[-1]
    assert c.max_abs_i_A == 1e-2 and c.v_max_V == 1.0
    table = runs_table(infos, ZoneInfo("America/Santiago"))
    assert table.column_names == ["run", "start_time", "source_file", "chip", "v_max_V", "max_abs_i_uA", "n_segments", "flag", "run_id"]
    assert table["source_file"].to_pylist()[-1] == "2025-09-11/c.csv" and table["start_time"].to_pylist()[-1] is None
    assert table["start_time"].to_pylist()[0] == "2025-09-11T11:00:00-03:00"  # g: 14:00 UTC, the lab's local time
    text = csv_bytes(table).to_pybytes().decode()
    assert ",10000," in text  # c's 1e-2 A glitch in µA
    b = text.splitlines()[5].split(",")
    assert b[0] == "5" and b[5] == "0.09524"  # b: 1 V / 1.05e7 Ω = 0.095238095… µA, to 4 significant digits


def overview_data_range(overview) -> tuple[float, float]:
    voltages = np.concatenate([path.vertices[:, 0] for c in overview.collections[:2] for path in c.get_paths()])
    return float(np.nanmin(voltages)), float(np.nanmax(voltages))


def test_a_day_figure_traces_runs_to_chips_and_labels_the_stand_outs_beside_the_curves(tmp_path):
    points, runs = lab_day()
    infos = run_infos(points, runs)
    analysis = analyse_day(points.drop_columns(["segment_id"]), AnalysisSettings())
    figure = DayFigure().draw("2025-09-11", points, infos, analysis)
    figure.canvas.draw()
    (overview, magnitude), *chip_rows = np.reshape(figure.axes, (-1, 2))
    ordinary, bold, leaders = overview.collections  # ordinary runs, the stand-out ones on top, their labels' leader lines
    chip_colours = {mcolors.to_hex(c) for c in ordinary.get_colors()}
    assert chip_colours == {CHIP_COLOURS[0].lower(), CHIP_COLOURS[1].lower()}
    assert {mcolors.to_hex(c) for c in bold.get_colors()} == {FLAG_COLOUR.lower()}
    assert len(bold.get_paths()) == 4 + 3  # c: four segments, e: three
    assert len(ordinary.get_paths()) == 4 * 4
    labels = {t.get_text(): t.get_position() for t in overview.texts}
    assert sorted(labels) == ["#3", "#5"]  # g was never segmented: nothing to draw
    low, high = overview_data_range(overview)
    assert all(x < low or x > high for x, _ in labels.values())  # beside the curves, in a strip no curve reaches
    assert len(leaders.get_paths()) == 2
    legend = [t.get_text() for t in overview.get_legend().get_texts()]
    assert legend == ["Alisson67 (3 runs)", "Alisson68 (3 runs)", "stand out (2): #n beside"]
    # currents with SI prefixes chosen per panel, never an offset or a power of ten on the axis
    assert overview.get_ylabel() == "I (mA)"  # the 1e-2 A glitch
    decades = [t.get_text() for t in magnitude.get_yticklabels() if t.get_text()]
    assert decades and all(re.fullmatch(r"(1|10|100) [fpnµm]?A", text) for text in decades), decades  # "100 nA", "10 mA"
    for axes in figure.axes:
        assert axes.yaxis.get_offset_text().get_text() == ""
    assert len(magnitude.collections) == 2 and not np.isinf(np.concatenate([p.vertices[:, 1] for p in magnitude.collections[0].get_paths()])).any()
    # one row per chip: mean forward, return and fitted return per V_max, hysteresis plus its two peaks
    assert len(chip_rows) == 2
    for chip, unit, (traces, loops) in zip(("Alisson67", "Alisson68"), ("mA", "nA"), chip_rows):  # 67's mean holds c's glitch
        assert traces.get_title("left").startswith(f"{chip}: ") and loops.get_title("left").startswith(f"{chip}: ")
        assert traces.get_ylabel() == f"mean I ({unit})" and loops.get_ylabel().endswith("A)")
        assert sum(len(c.get_paths()) for c in traces.collections) == 3  # one V_max group
        assert sum(len(c.get_paths()) for c in loops.collections if isinstance(c, LineCollection)) == 1
        assert sorted(len(c.get_offsets()) for c in loops.collections if isinstance(c, PathCollection)) == [1, 1]  # ▲ and ▼
        assert [t.get_text() for t in traces.texts] == ["1 V"] and [t.get_text() for t in loops.texts] == ["1 V"]
    assert "2025-09-11: 7 runs on 2 chips, 1 not segmented" in figure.get_suptitle()
    # readable at 100 % zoom: no text under 8 pt, at 100 dpi (8 pt = 11 px)
    assert figure.dpi >= 96
    assert min(t.get_fontsize() for t in figure.findobj(Text) if t.get_text() and t.get_visible()) >= 8
    written = save_png(figure, tmp_path / "day.png")
    assert written.path.read_bytes()[:4] == b"\x89PNG" and written.size == written.path.stat().st_size
    assert not list(tmp_path.glob(".*.tmp"))


def chipless(points: pa.Table, runs: set[str]) -> pa.Table:
    """The runs' rows without chip metadata, as a header without 'Chip group name'/'Chip number' gives."""
    mask = pa.array([r in runs for r in points["run_id"].to_pylist()])
    for k, name in ((1, "chip_group"), (2, "chip_number")):
        points = points.set_column(k, name, pc.if_else(mask, pa.scalar(None, points.schema.field(name).type), points[name]))
    return points


def test_runs_without_a_chip_number_are_labelled_so_everywhere():
    points, runs = lab_day()
    points = chipless(points, {"a", "b"})
    infos = run_infos(points, runs)
    assert [i.chip for i in infos[:2]] == ["no chip number", "no chip number"]
    table = runs_table(infos)
    assert table["chip"].to_pylist()[:2] == ["no chip number"] * 2 and table["source_file"].to_pylist()[:2] == [
        "2025-09-11/a.csv",
        "2025-09-11/b.csv",
    ]
    canvas = DayFigure()
    figure = canvas.draw("2025-09-11", points, infos, analyse_day(points.drop_columns(["segment_id"]), AnalysisSettings()))
    overview, *_ = figure.axes
    legend = [t.get_text() for t in overview.get_legend().get_texts()]
    assert "no chip number (2 runs)" in legend and not any("all chips" in text for text in legend)
    titles = [axes.get_title("left") for axes in figure.axes[2::2]]
    assert [title.split(":")[0] for title in titles] == ["Alisson67", "Alisson68", "no chip number"]
    assert "on 2 chips, 2 without chip number" in figure.get_suptitle()
    pooled = canvas.draw("2025-09-11", points, infos, analyse_day(points.drop_columns(["segment_id"]), AnalysisSettings(group_by="day")))
    assert [axes.get_title("left").split(":")[0] for axes in pooled.axes[2::2]] == ["all chips, pooled"]


def test_one_figure_redrawn_for_another_day_keeps_nothing_of_the_first():
    canvas = DayFigure()
    points, runs = lab_day()
    canvas.draw("2025-09-11", points, run_infos(points, runs), analyse_day(points.drop_columns(["segment_id"]), AnalysisSettings()))
    small = day_points(
        [("z", 70, iv_voltages(2.0, 0.1), iv_voltages(2.0, 0.1) * 1e-6), ("y", 71, iv_voltages(1.0, 0.1), iv_voltages(1.0, 0.1) * 1e-7)]
    )
    figure = canvas.draw(
        "2025-09-12", small, run_infos(small, manifest_rows(small)), analyse_day(small.drop_columns(["segment_id"]), AnalysisSettings())
    )  # two chips again: the same layout, reused
    overview = figure.axes[0]
    assert len(overview.collections) == 1 and not overview.texts
    assert [t.get_text() for t in overview.get_legend().get_texts()] == ["Alisson70 (1 run)", "Alisson71 (1 run)"]
    assert overview.get_xlim()[1] >= 2.0 and overview.get_ylim()[1] < 3.0 and overview.get_ylabel() == "I (µA)"  # not the 1e-2 A glitch
    assert [t.get_text() for t in figure.axes[2].texts] == ["2 V"] and [t.get_text() for t in figure.axes[4].texts] == ["1 V"]
    assert "2025-09-12: 2 runs on 2 chips" in figure.get_suptitle()
    one = day_points([("x", 72, iv_voltages(1.0, 0.1), iv_voltages(1.0, 0.1) * 1e-9)])
    figure = canvas.draw("2025-09-13", one, run_infos(one, manifest_rows(one)), analyse_day(one.drop_columns(["segment_id"]), AnalysisSettings()))
    assert len(figure.axes) == 4 and figure.axes[0].get_ylabel() == "I (nA)" and "1 run on 1 chip" in figure.get_suptitle()


def test_a_day_without_segmented_runs_still_gets_a_figure(tmp_path):
    empty = day_points([])
    runs = pa.Table.from_pylist([{"run_id": "x", "source_file": "x.csv", "status": "no_segments", "n_segments": 0, "complete": False}])
    infos = run_infos(empty, runs)
    assert [i.flag for i in infos] == ["not segmented"]
    figure = DayFigure().draw("2025-09-13", empty, infos, analyse_day(empty.drop_columns(["segment_id"]), AnalysisSettings()))
    assert save_png(figure, tmp_path / "d.png").path.stat().st_size > 10_000


@pytest.mark.parametrize("extreme", [np.inf, -np.inf, 1e308, 9.9e37, np.nan])
def test_a_damaged_current_never_breaks_or_flattens_the_figure(tmp_path, extreme):
    voltage = iv_voltages(1.0, 0.05)
    current = voltage / 1e7
    current[7] = extreme  # an overflow reading or a damaged cell mid-sweep
    points = day_points([("a", 67, voltage, current), ("b", 67, voltage, voltage / 1.1e7)])
    figure = DayFigure().draw(
        "2025-09-11", points, run_infos(points, manifest_rows(points)), analyse_day(points.drop_columns(["segment_id"]), AnalysisSettings())
    )
    assert save_png(figure, tmp_path / "d.png").path.stat().st_size > 10_000
    for axes in figure.axes:
        assert np.isfinite(axes.get_ylim()).all() and np.isfinite(axes.get_xlim()).all()
    assert figure.axes[0].get_ylabel() == "I (nA)" and figure.axes[0].get_ylim()[1] < 1000  # the other points still fill the panel
    assert plottable(np.array([extreme, 1e-7]))[1] == 1e-7 and np.isnan(plottable(np.array([extreme]))[0])


def test_long_traces_are_thinned_but_keep_their_ends_and_extremes():
    long = np.sin(np.linspace(0, 3, 1001)) * 1e-7  # drawn every 9th row: row 1000 is not one of them
    long[537], long[123] = 5e-6, -4e-6  # a one-point spike and a one-point dip
    short = np.arange(50, dtype=float)
    current = np.concatenate([long, short])
    keep = drawn_rows(current, np.array([0, 1001]), most=120)
    kept_long, kept_short = np.flatnonzero(keep[:1001]), np.flatnonzero(keep[1001:])
    assert {0, 123, 537, 1000} <= set(kept_long) and len(kept_long) <= 120 + 3
    assert len(kept_short) == 50  # a piece of at most `most` rows is drawn whole
    flat = drawn_rows(np.zeros(500), np.array([0]), most=100)  # every row is an extreme: the first one counts
    assert np.flatnonzero(flat).size <= 100 + 1


def test_plottable_keeps_readings_and_drops_what_no_instrument_reads():
    values = plottable([1e-9, -8.0, None, np.nan, np.inf, -np.inf, 9.9e37, -1e308, PLOTTABLE_LIMIT])
    assert values.dtype == np.float64
    assert values[:2].tolist() == [1e-9, -8.0] and values[-1] == PLOTTABLE_LIMIT
    assert np.isnan(values[2:-1]).all()


def test_strings_drawn_as_one_bitmap_look_as_matplotlib_draws_them():
    def drawn(canvas_class) -> np.ndarray:
        figure = Figure(figsize=(5, 3), dpi=100)
        canvas_class(figure)
        axes = figure.add_subplot()
        axes.plot([0, 1], [0, 1])
        axes.set_title("Alisson60: mean per V_max, fwd —, ret - -, ▲▼ µA", loc="left")
        axes.set_ylabel("mean I (nA)")  # rotated: matplotlib's own path
        axes.text(0.5, 0.5, "#12 gy", color="red", fontweight="bold")
        axes.text(0.1, 0.8, r"$\Delta I^2$")  # math text: matplotlib's own path
        figure.canvas.draw()
        return 765 - np.asarray(figure.canvas.buffer_rgba())[..., :3].astype(int).sum(axis=2)  # ink: 0 on white

    ours, theirs = drawn(DayCanvas), drawn(FigureCanvasAgg)
    assert abs(ours.sum() / theirs.sum() - 1) < 0.01  # the same glyphs: the same ink
    shifted = {(dy, dx): np.abs(np.roll(ours, (dy, dx), axis=(0, 1)) - theirs).sum() for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert min(shifted, key=shifted.get) == (0, 0)  # in place, not a pixel off

    def blocks(image: np.ndarray) -> np.ndarray:  # 4 x 4 pixel means: subpixel placement aside
        h, w = image.shape[0] // 4 * 4, image.shape[1] // 4 * 4
        return image[:h, :w].reshape(h // 4, 4, w // 4, 4).mean(axis=(1, 3))

    assert np.abs(blocks(ours) - blocks(theirs)).mean() < 5
    assert (drawn(DayCanvas) == ours).all()  # a kept bitmap draws the same
