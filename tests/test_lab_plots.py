"""The lab-analysis figures read like the day figures (issue 22 item 3, issue 20 item 6): SI-prefixed units
and no offset text on any axis, text of at least 8 pt at the saved DPI, chips named by chips.chip_label,
a dark chip's power panel saying so, whole dates on the history axis. Drawn from small tables here."""

from __future__ import annotations

import io
import re

import numpy as np
import pyarrow as pa
import pytest
from matplotlib.colors import to_rgba
from matplotlib.text import Text
from nanolab.chips import chip_label
from nanolab.lab_plots import chip_figure, day_figure, draw_chip, draw_day
from nanolab.plots import DPI, save_png

E = np.linspace(-200.0, 200.0, 41)


def subtracted(scale: float) -> pa.Table:
    """Two chips, one with two V_max groups, J of about `scale` A/cm²."""
    rows = []
    for chip, v_max in ((67, 1.0), (67, 2.0), (68, 1.0)):
        for k, e in enumerate(E * v_max):
            j = scale * np.sin(k / 3.0 + chip)
            rows.append(
                {
                    "chip_group": "Alisson",
                    "chip_number": chip,
                    "v_max_V": v_max,
                    "e_field_V_cm": e,
                    "j_forward_sub_poly3_A_cm2": j,
                    "j_backward_sub_poly3_A_cm2": -j,
                }
            )
    return pa.Table.from_pylist(rows)


def coercive(power_W: list[float | None]) -> pa.Table:
    """Chip 67's coercive fields of one V_max group per given effective power (None: not known)."""
    n = len(power_W)
    return pa.table(
        {
            "chip_group": ["Alisson"] * n,
            "chip_number": [67] * n,
            "v_max_V": [1.0 + k for k in range(n)],
            "poly_order": [3] * n,
            "e_coercive_pos_V_cm": [40.0 + k for k in range(n)],
            "e_coercive_neg_V_cm": [-50.0 - k for k in range(n)],
            "effective_power_W": pa.array(power_W, pa.float64()),
        }
    )


def history() -> pa.Table:
    """Chip 67 on four days over two months, two V_max groups, hysteresis of a few pA."""
    rows = [(d, v, k) for k, d in enumerate(["2025-09-11", "2025-09-12", "2025-09-15", "2025-10-02"]) for v in (1.0, 2.0)]
    return pa.table(
        {
            "date": [d for d, _, _ in rows],
            "chip_group": ["Alisson"] * len(rows),
            "chip_number": [67] * len(rows),
            "v_max_V": [v for _, v, _ in rows],
            "resistance_MOhm": [12.0 + k for _, _, k in rows],
            "hysteresis_mean_nA": [2e-3 * (k + 1) for _, _, k in rows],
            "hysteresis_order": [3] * len(rows),
        }
    )


def drawn(figure, tmp_path):
    """The figure saved as the job saves it (text is laid out then), and its visible texts."""
    save_png(figure, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]


def assert_readable(figure, texts) -> None:
    assert figure.dpi == DPI
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 8]
    assert not small, small
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            assert axis.get_offset_text().get_text() == "", (ax.get_title(), axis.get_offset_text().get_text())


def tick_numbers(axis) -> list[float]:
    return [float(t.get_text().replace("\u2212", "-")) for t in axis.get_ticklabels() if t.get_text()]


@pytest.mark.parametrize(("scale", "unit"), [(3e-8, "nA/cm²"), (4e-5, "µA/cm²"), (2e-2, "mA/cm²")])
def test_the_day_figure_has_j_in_an_si_unit_and_no_offset(tmp_path, scale, unit):
    figure = draw_day("2025-09-11", subtracted(scale), 3)
    texts = drawn(figure, tmp_path)
    assert_readable(figure, texts)
    (ax,) = figure.axes
    assert ax.get_ylabel() == f"J ({unit})"
    assert ax.get_xlabel() == "E (V/cm)"
    assert 1 <= max(abs(v) for v in tick_numbers(ax.yaxis)) < 1000  # the prefix makes the ticks 1 to 999
    assert sum(len(c.get_segments()) for c in ax.collections) == 3 * 2  # forward and backward of each group
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [chip_label("Alisson", 67), chip_label("Alisson", 68)] == ["Alisson67", "Alisson68"]


def test_a_day_without_groups_says_so(tmp_path):
    figure = draw_day("2025-09-11", subtracted(1e-8).slice(0, 0), 3)
    texts = drawn(figure, tmp_path)
    assert_readable(figure, texts)
    assert "no V_max group" in figure.axes[0].get_title(loc="left")


def test_the_chip_figure_names_the_chip_by_chip_label_and_has_readable_axes(tmp_path):
    figure = draw_chip("Alisson 67", coercive([2e-7, 5e-7]), history())
    texts = drawn(figure, tmp_path)
    assert_readable(figure, texts)
    assert figure.get_suptitle() == chip_label("Alisson", 67) == "Alisson67"
    by_vmax, by_power, resistance, hysteresis = figure.axes
    assert by_power.get_xlabel() == "effective laser power (nW)"
    assert sorted(tick_numbers(by_vmax.xaxis)) == [1.0, 2.0]  # the groups, not a range around them
    assert hysteresis.get_ylabel() == "hysteresis mean (pA)"  # 2e-3 nA reads as pA
    assert max(abs(v) for v in tick_numbers(hysteresis.yaxis)) < 1000
    for ax in (resistance, hysteresis):  # whole dates, the year in the label: no "2025-Sep" far right
        labels = [t.get_text() for t in ax.xaxis.get_ticklabels() if t.get_text()]
        assert labels and all(re.fullmatch(r"\d\d (Sep|Oct)", text) for text in labels), labels
        assert ax.get_xlabel() == "date (2025)"


def test_every_v_max_group_of_the_history_has_its_own_colour_in_both_panels(tmp_path):
    """Nine groups (0-8 V, as the lab's V_max sweeps give): the palette of the chips has eight colours, so
    0 V and 8 V shared one; the history uses the day figures' ordered V_max colours instead."""
    base = history()
    days = base["date"].to_pylist()[:2]
    rows = [(d, float(v)) for d in days for v in range(9)]
    table = pa.table(
        {
            "date": [d for d, _ in rows], "chip_group": ["Alisson"] * len(rows), "chip_number": [67] * len(rows),
            "v_max_V": [v for _, v in rows], "resistance_MOhm": [10.0 + v for _, v in rows],
            "hysteresis_mean_nA": [1e-3 * (v + 1) for _, v in rows], "hysteresis_order": [3] * len(rows),
        }
    )  # fmt: skip
    figure = draw_chip("Alisson 67", coercive([2e-7, 5e-7]), table)
    drawn(figure, tmp_path)
    _, _, resistance, hysteresis = figure.axes
    colours = [to_rgba(line.get_color()) for line in resistance.lines]
    assert len(set(colours)) == len(colours) == 9
    assert [to_rgba(line.get_color()) for line in hysteresis.lines] == colours
    assert [t.get_text() for t in resistance.get_legend().get_texts()] == [f"{v} V" for v in range(9)]


@pytest.mark.parametrize(
    ("power_W", "says"),
    [([0.0, 0.0], "dark runs only"), ([None, None], "2 groups without a known laser power"), ([0.0, None], "1 group without a known laser power")],
)
def test_a_chip_without_laser_power_says_why_instead_of_a_range(tmp_path, power_W, says):
    figure = draw_chip("Alisson 67", coercive(power_W), history())
    texts = drawn(figure, tmp_path)
    assert_readable(figure, texts)
    by_power = figure.axes[1]
    assert not by_power.lines
    assert any(says in t.get_text() for t in by_power.texts)
    assert not [t.get_text() for t in by_power.xaxis.get_ticklabels() + by_power.yaxis.get_ticklabels() if t.get_text()]


def pixels(figure) -> bytes:
    image = io.BytesIO()
    figure.savefig(image, format="raw", dpi=DPI)
    return image.getvalue()


def test_a_reused_figure_draws_the_pixels_of_a_fresh_one():
    """The job draws every day (and every chip) into one figure: nothing of the one before may remain,
    whatever it held (another unit, more groups, no groups, fixed ticks, no laser power)."""
    day_canvas, chip_canvas = day_figure(), chip_figure()
    days = [subtracted(3e-8), subtracted(2e-2).slice(0, 0), subtracted(4e-5), subtracted(2e-2).slice(0, 41)]
    for table in days + days[::-1]:
        assert pixels(draw_day("2025-09-11", table, 3, day_canvas)) == pixels(draw_day("2025-09-11", table, 3))
    chips = [(coercive([2e-7, 5e-7]), history()), (coercive([]), history().slice(0, 2)), (coercive([None] * 8), history())]
    for coercive_rows, history_rows in chips + chips[::-1]:
        fresh = pixels(draw_chip("Alisson 67", coercive_rows, history_rows))
        assert pixels(draw_chip("Alisson 67", coercive_rows, history_rows, chip_canvas)) == fresh


def with_damage(table: pa.Table, rows: int = 4) -> pa.Table:
    """The table with its first `rows` rows' float values replaced by inf, nan, 1e308 and -1e308 in turn
    (v_max_V, the group key, kept: a damaged key is its own group)."""
    damaged = {}
    for name in table.column_names:
        values = table[name].to_pylist()
        if pa.types.is_floating(table[name].type) and name != "v_max_V":
            for k in range(min(rows, len(values))):
                values[k] = (np.inf, np.nan, 1e308, -1e308)[k % 4]
        damaged[name] = pa.array(values, table[name].type)
    return pa.table(damaged)


def finite_limits(figure) -> bool:
    return all(np.isfinite(ax.get_xlim()).all() and np.isfinite(ax.get_ylim()).all() for ax in figure.axes)


def test_every_lab_figure_kind_draws_tables_holding_inf_nan_and_1e308(tmp_path):
    """Damage stays in its file: the lab figures drop non-finite and out-of-range values by the day figures'
    rule (plots.plottable), so matplotlib's tick locator never sees 1e308 (it raised ValueError before)."""
    day = draw_day("2025-09-11", with_damage(subtracted(4e-5), rows=8), 3)
    assert_readable(day, drawn(day, tmp_path))
    assert finite_limits(day) and max(abs(v) for v in tick_numbers(day.axes[0].yaxis)) < 1000  # not flattened by 1e308
    chip = draw_chip("Alisson 67", with_damage(coercive([2e-7, 5e-7, 1e-6, 3e-6, 4e-6])), with_damage(history()))
    assert_readable(chip, drawn(chip, tmp_path))
    assert finite_limits(chip)
    by_vmax, by_power, resistance, hysteresis = chip.axes
    assert max(abs(v) for v in tick_numbers(resistance.yaxis)) < 1e3  # the good rows' 12-19 MΩ, not 1e308
