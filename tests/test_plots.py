"""Day figures: every run drawn and traceable to its run and chip, stand-out runs flagged and numbered,
the analysis panels per chip, one figure object reused for many days without leftovers."""

import matplotlib.colors as mcolors
import numpy as np
import pyarrow as pa
import pytest
from nanolab.analysis import AnalysisSettings, analyse_day
from nanolab.plots import CHIP_COLOURS, FLAG_COLOUR, PLOT_LIMIT, DayFigure, drawn_rows, plottable, run_infos, runs_table, save_png
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


def test_runs_are_numbered_in_file_order_and_the_odd_ones_flagged():
    points, runs = lab_day()
    infos = run_infos(points, runs)
    assert [(i.number, i.run_id) for i in infos] == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f"), (7, "g")]
    assert {i.run_id: i.flag for i in infos if i.flag} == {"c": "outlier", "e": "incomplete", "g": "not segmented"}
    assert [i.chip for i in infos[:6]] == ["Alisson67", "Alisson68"] * 3
    c = infos[2]
    assert c.max_abs_i_A == 1e-2 and c.v_max_V == 1.0
    table = runs_table(infos)
    assert table.column_names == ["run", "source_file", "chip", "v_max_V", "max_abs_i_A", "n_segments", "flag", "run_id"]
    assert table["source_file"].to_pylist()[2] == "2025-09-11/c.csv"


def test_a_day_figure_traces_runs_to_chips_and_numbers_the_stand_outs(tmp_path):
    points, runs = lab_day()
    infos = run_infos(points, runs)
    analysis = analyse_day(points.drop_columns(["segment_id"]), AnalysisSettings())
    figure = DayFigure().draw("2025-09-11", points, infos, analysis)
    (overview, magnitude), (traces, loops) = figure.axes[:2], figure.axes[2:]
    ordinary, bold = overview.collections  # ordinary runs, then the stand-out ones on top
    chip_colours = {mcolors.to_hex(c) for c in ordinary.get_colors()}
    assert chip_colours == {CHIP_COLOURS[0].lower(), CHIP_COLOURS[1].lower()}
    assert {mcolors.to_hex(c) for c in bold.get_colors()} == {FLAG_COLOUR.lower()}
    assert len(bold.get_paths()) == 4 + 3  # c: four segments, e: three
    assert len(ordinary.get_paths()) == 4 * 4
    assert sorted(t.get_text() for t in overview.texts) == ["#3", "#5"]  # g was never segmented: nothing to draw
    legend = [t.get_text() for t in overview.get_legend().get_texts()]
    assert legend == ["Alisson67 (3 runs)", "Alisson68 (3 runs)", "stand out: #3, #5, #7"]
    assert len(magnitude.collections) == 2 and not np.isinf(np.concatenate([p.vertices[:, 1] for p in magnitude.collections[0].get_paths()])).any()
    # per chip and V_max group: forward, return and fitted return; hysteresis plus its two peaks
    groups = analysis["iv_fits"].num_rows
    assert groups == 2
    assert sum(len(c.get_paths()) for c in traces.collections) == 3 * groups
    assert sum(len(c.get_paths()) for c in loops.collections) == groups
    peaks = loops.get_lines()  # per chip: one line of ▲ (largest) and one of ▼ (smallest) markers
    assert sorted(line.get_marker() for line in peaks) == ["^", "^", "v", "v"]
    assert sum(len(line.get_xdata()) for line in peaks) == 2 * groups
    for axes in (traces, loops):
        assert [t.get_text() for t in axes.get_legend().get_texts()] == ["Alisson67", "Alisson68"]
    assert "2025-09-11: 7 runs" in figure.get_suptitle()
    written = save_png(figure, tmp_path / "day.png")
    assert written.path.read_bytes()[:4] == b"\x89PNG" and written.size == written.path.stat().st_size
    assert not list(tmp_path.glob(".*.tmp"))


def test_one_figure_redrawn_for_another_day_keeps_nothing_of_the_first():
    canvas = DayFigure()
    points, runs = lab_day()
    canvas.draw("2025-09-11", points, run_infos(points, runs), analyse_day(points.drop_columns(["segment_id"]), AnalysisSettings()))
    small = day_points([("z", 70, iv_voltages(2.0, 0.1), iv_voltages(2.0, 0.1) * 1e-6)])
    figure = canvas.draw(
        "2025-09-12", small, run_infos(small, manifest_rows(small)), analyse_day(small.drop_columns(["segment_id"]), AnalysisSettings())
    )
    overview = figure.axes[0]
    assert len(overview.collections) == 1 and not overview.texts
    assert [t.get_text() for t in overview.get_legend().get_texts()] == ["Alisson70 (1 run)"]
    assert overview.get_xlim()[1] >= 2.0 and overview.get_ylim()[1] < 1e-3  # limits follow the new day, not the 1e-2 A glitch
    assert "2025-09-12: 1 run" in figure.get_suptitle()


def test_a_day_without_segmented_runs_still_gets_a_figure(tmp_path):
    empty = day_points([])
    runs = pa.Table.from_pylist([{"run_id": "x", "source_file": "x.csv", "status": "no_segments", "n_segments": 0, "complete": False}])
    infos = run_infos(empty, runs)
    assert [i.flag for i in infos] == ["not segmented"]
    figure = DayFigure().draw("2025-09-13", empty, infos, analyse_day(empty.drop_columns(["segment_id"]), AnalysisSettings()))
    assert save_png(figure, tmp_path / "d.png").path.stat().st_size > 10_000


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
    values = plottable([1e-9, -8.0, None, np.nan, np.inf, -np.inf, 9.9e37, -1e308, PLOT_LIMIT])
    assert values.dtype == np.float64
    assert values[:2].tolist() == [1e-9, -8.0] and values[-1] == PLOT_LIMIT
    assert np.isnan(values[2:-1]).all()


@pytest.mark.parametrize("bad", [1.7e308, -1.7e308, 1e308, np.inf, -np.inf, np.nan, 9.9e37])
def test_a_day_with_an_absurd_current_or_voltage_is_drawn_on_the_other_readings_scale(tmp_path, bad):
    """A current of 1.7e308 made matplotlib's tick locator fail (ValueError: arange: cannot compute length)
    and so the month's figure job; an overflow reading 9.9e37 flattened its panel."""
    points, runs = lab_day()
    for column in ("i_A", "vsd_V"):
        values = points[column].to_numpy().copy()
        values[[15, 40]] = bad  # inside run "a": a forward and a return segment
        damaged = points.set_column(points.column_names.index(column), column, pa.array(values))
        analysis = analyse_day(damaged.drop_columns(["segment_id"]), AnalysisSettings())
        figure = DayFigure().draw("2025-09-11", damaged, run_infos(damaged, runs), analysis)
        assert save_png(figure, tmp_path / f"{column}.png").size > 10_000
        (overview, magnitude), (traces, loops) = figure.axes[:2], figure.axes[2:]
        assert max(np.abs(overview.get_ylim())) < 1  # the 1e-2 A glitch of run "c" is the largest drawn
        assert max(np.abs(overview.get_xlim())) < 2 and max(np.abs(traces.get_xlim())) < 2
        assert all(np.isfinite(axes.get_ylim()).all() and max(np.abs(axes.get_ylim())) < 1e3 for axes in (magnitude, traces, loops))
