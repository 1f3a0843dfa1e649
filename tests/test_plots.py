"""IV figures: one line per run and segment, coloured by segment type, both panels, real PNGs."""

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pyarrow as pa
from nanolab.manifest import flagged_runs
from nanolab.plots import SEGMENT_COLOURS, day_overview, run_figure, save_png
from nanolab.segment import find_segments
from nanolab.synthetic import iv_voltages


def segments_frame(run_id: str, voltages: np.ndarray) -> pd.DataFrame:
    """Rows the way load_segments returns them, segmented by the real algorithm."""
    parts = []
    for s in find_segments(voltages):
        v = voltages[s.start : s.stop]
        parts.append(pd.DataFrame({"run_id": run_id, "segment_id": s.segment_id, "segment_type": s.segment_type, "vsd_V": v, "i_A": v * 1e-7}))
    return pd.concat(parts, ignore_index=True)


def colours_of(axes) -> list[str]:
    return [mcolors.to_hex(line.get_color()) for line in axes.get_lines()]


def test_day_overview_draws_each_segment_in_its_colour_on_both_panels():
    frame = pd.concat([segments_frame("a", iv_voltages(1.0, 0.05)), segments_frame("b", iv_voltages(1.0, 0.05, abort_after=50))])
    figure = day_overview(frame, "2025-09-12")
    linear, logarithmic = figure.axes
    expected = [SEGMENT_COLOURS[t].lower() for t in ["forward_positive", "return_positive", "forward_negative", "return_negative"] * 1]
    expected += [SEGMENT_COLOURS[t].lower() for t in ["forward_positive", "return_positive", "forward_negative"]]
    assert colours_of(linear) == expected and colours_of(logarithmic) == expected
    assert [t.get_text() for t in linear.get_legend().get_texts()] == [
        "forward positive",
        "return positive",
        "forward negative",
        "return negative",
    ]
    assert (linear.get_xlabel(), linear.get_ylabel(), logarithmic.get_ylabel()) == ("Vsd (V)", "I (A)", "log10 |I| (A)")
    assert "2025-09-12: 2 runs" in figure.get_suptitle()
    log_y = np.concatenate([line.get_ydata() for line in logarithmic.get_lines()])
    assert np.nanmax(log_y) == np.log10(1e-7)  # |I| at |V| = 1 V; the 0 A points are left out, not -inf
    assert not np.isinf(log_y).any()


def test_a_day_without_iv_runs_still_gets_a_figure(tmp_path):
    empty = pd.DataFrame(columns=["run_id", "segment_id", "segment_type", "vsd_V", "i_A"])
    path = save_png(day_overview(empty, "2025-09-13"), tmp_path / "day.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 10_000
    assert not list(tmp_path.glob(".*.tmp"))


def test_run_figure_and_flagged_runs():
    frame = segments_frame("b", iv_voltages(1.0, 0.05, abort_after=50))
    figure = run_figure(frame, "aborted")
    assert len(figure.axes[0].get_lines()) == 3
    manifest = pa.table({
        "run_id": ["ok", "aborted", "odd", "failed"], "date": ["d"] * 4, "source_file": ["a", "b", "c", "d"],
        "status": ["ok", "ok", "ok", "reject"], "reason": [None, None, None, "no voltage column"],
        "n_segments": [4, 3, 5, None], "complete": [True, False, True, None],
        "segment_types": [["x"] * 4, ["x"] * 3, ["x"] * 5, None], "segment_points": [[5] * 4, [5] * 3, [5] * 5, None],
    })  # fmt: skip
    assert flagged_runs(manifest)["run_id"].to_pylist() == ["aborted", "odd", "failed"]
