"""Backward subtraction, coercive field and laser power on hand-made day tables: the old scripts' defects
(lab-analysis-2.md §8) give rows with nulls and a reason, never a crash or an arbitrary value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from nanolab.analysis import AnalysisSettings, output_schema
from nanolab.laser import Calibration, PowerFinder, choose
from nanolab.subtraction import Geometry, coercive_day, groups_by_chip, key_columns, subtract_day

T0 = datetime(2025, 9, 11, 15, tzinfo=UTC)


def hysteresis(groups: dict[tuple, np.ndarray], orders=(1, 3), chip_label: bool = False) -> pa.Table:
    """A hysteresis table: per (chip, V_max) the given voltages, I_f = V·1e-7 + 1e-9·V_max, I_r = V·1e-7,
    the order-n fit of the return = I_r + n·1e-10 (so baselines differ by order)."""
    rows = []
    for (chip, vmax), voltages in groups.items():
        for v in voltages:
            row = {"chip_group": "Alisson", "chip_number": chip} | ({"chip_label": f"chip {chip}"} if chip_label else {})
            row |= {"v_max_V": vmax, "vsd_V": float(v), "i_forward_A": v * 1e-7 + 1e-9 * vmax, "i_return_A": v * 1e-7}
            row |= {f"i_hysteresis_poly{n}_A": v * 1e-7 + 1e-9 * vmax - (v * 1e-7 + n * 1e-10) for n in orders}
            rows.append(row)
    return pa.Table.from_pylist(rows)


def sweep(vmax: float, step: float) -> np.ndarray:
    half = np.round(np.arange(step, vmax, step), 2)  # V = 0 and ±V_max are never in the hysteresis table
    return np.concatenate([-half[::-1], half])


def test_the_largest_group_is_the_reference_and_its_own_subtraction_is_its_hysteresis():
    table = hysteresis({(67, 2.0): sweep(2, 0.1), (67, 1.0): sweep(1, 0.05)})
    out = subtract_day(table, None, Geometry()).to_pylist()
    two = [r for r in out if r["v_max_V"] == 2.0]
    for row, source in zip(two, table.to_pylist()):
        assert row["i_forward_sub_poly3_A"] == pytest.approx(source["i_hysteresis_poly3_A"], rel=1e-9)
        assert row["e_field_V_cm"] == pytest.approx(row["vsd_V"] * 100, rel=1e-12)
        assert row["reference_v_max_V"] == 2.0 and row["reason"] is None
    one = [r for r in out if r["v_max_V"] == 1.0]
    matched = [r["vsd_V"] for r in one if r["reason"] is None]
    assert matched == pytest.approx([v for v in sweep(1, 0.1)])  # every 0.1 V the reference has
    assert all(r["i_forward_sub_poly3_A"] is None and "no point at this voltage" in r["reason"] for r in one if r["vsd_V"] not in matched)


def test_a_requested_reference_missing_on_a_day_gives_nulls_and_a_reason_for_that_chip_only():
    table = hysteresis({(67, 1.0): sweep(1, 0.1), (67, 2.0): sweep(2, 0.1), (68, 3.0): sweep(3, 0.1)})
    out = subtract_day(table, 3.0, Geometry())
    rows = out.to_pylist()
    assert all(r["i_forward_sub_poly1_A"] is None and "3 V was not measured" in r["reason"] for r in rows if r["chip_number"] == 67)
    assert all(r["reason"] is None for r in rows if r["chip_number"] == 68)
    coercive = coercive_day(out, Geometry()).to_pylist()
    assert len(coercive) == 3 * 2
    assert all(r["e_coercive_pos_V_cm"] is None and "not measured" in r["reason"] for r in coercive if r["chip_number"] == 67)


def test_a_side_without_shared_voltage_and_a_day_with_one_group():
    table = hysteresis({(67, 2.0): sweep(2, 0.1)[20:], (67, 1.0): sweep(1, 0.1)})  # the reference has no negative voltages
    coercive = coercive_day(subtract_day(table, None, Geometry()), Geometry()).to_pylist()
    one = [r for r in coercive if r["v_max_V"] == 1.0]
    assert all(r["e_coercive_neg_V_cm"] is None and r["reason"] == "no voltage shared with the reference on the negative side" for r in one)
    assert all(r["e_coercive_pos_V_cm"] is not None for r in one)
    single = coercive_day(subtract_day(hysteresis({(70, 1.0): sweep(1, 0.1)}), None, Geometry()), Geometry()).to_pylist()
    assert [r["reason"] for r in single] == [None, None] and single[0]["e_max_V_cm"] == 100.0


def test_many_groups_noisy_voltages_and_extra_key_columns():
    rng = np.random.default_rng(3)
    groups = {(67, float(v)): np.round(np.sort(sweep(v, 0.01) + rng.normal(0, 0.002, sweep(v, 0.01).size)), 2) for v in range(1, 10)}
    table = hysteresis({k: np.unique(v) for k, v in groups.items()}, chip_label=True)
    out = subtract_day(table, None, Geometry())
    assert key_columns(out)[:4] == ["chip_group", "chip_number", "chip_label", "v_max_V"]
    assert pc_count(out, "reason") < out.num_rows  # rounded keys meet although the read-back voltages are noisy
    coercive = coercive_day(out, Geometry())
    assert coercive.num_rows == 9 * 2 and coercive["chip_label"].to_pylist()[0] == "chip 67"


def pc_count(table: pa.Table, name: str) -> int:
    return table.num_rows - table[name].null_count


def test_a_day_without_groups_gives_empty_tables():
    empty = output_schema("hysteresis", AnalysisSettings()).empty_table()
    out = subtract_day(empty, None, Geometry())
    assert out.num_rows == 0 and "j_backward_sub_poly7_A_cm2" in out.column_names
    assert coercive_day(out, Geometry()).num_rows == 0


def calibration(run_id: str, hours: float, wavelength: float = 455, day: str = "2025-09-11") -> Calibration:
    return Calibration(run_id, day, T0 + timedelta(hours=hours), wavelength, f"{run_id}.parquet", 1)


def test_the_calibration_is_the_latest_of_the_wavelength_before_the_run():
    calibrations = [calibration("old", -30, day="2025-09-10"), calibration("a", -2), calibration("uv", -1, 365), calibration("after", 2)]
    assert choose(calibrations, 455, T0).run_id == "a"
    assert choose(calibrations, 365, T0).run_id == "uv"
    assert choose(calibrations, 455, T0 - timedelta(hours=10)).run_id == "old"
    assert choose(calibrations, 455, T0 - timedelta(hours=40)) is None
    assert choose(calibrations, 530, T0) is None


class Curves(PowerFinder):
    def curve(self, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
        return np.array([0.0, 1.0, 2.0, 3.0]), np.array([-1e-9, -1e-9, 1e-5, 2e-5])


def run(hours: float, toggle=True, voltage=2.5, wavelength=455.0) -> dict:
    return {"start_dt": T0 + timedelta(hours=hours), "laser_toggle": toggle, "laser_voltage_V": voltage, "wavelength_nm": wavelength}


def test_power_dark_lit_clamped_below_threshold_and_mixed_groups():
    finder = Curves([calibration("a", -2)], 5.7)
    lit = finder.of_group([run(0), run(1)], "2025-09-11")
    assert lit.incident_power_W == pytest.approx(1.5e-5) and lit.effective_power_W == pytest.approx(1.5e-5 / 5.7)
    assert lit.calibration_run_id == "a" and lit.power_note == "calibrated the same day"
    assert finder.of_group([run(0, voltage=9)], "2025-09-11").incident_power_W == pytest.approx(2e-5)  # clamped at the end
    below = finder.of_group([run(0, voltage=0.5)], "2025-09-11")
    assert below.incident_power_W < 0 and below.effective_power_W == 0.0
    for dark in (run(0, toggle=False), run(0, voltage=0.0), run(0, toggle=None, voltage=None)):
        got = finder.of_group([dark], "2025-09-11")
        assert (got.incident_power_W, got.effective_power_W, got.power_note) == (0.0, 0.0, "dark")
    mixed = finder.of_group([run(0), run(1, voltage=3.0)], "2025-09-11")
    assert mixed.effective_power_W is None and "runs differ in laser settings" in mixed.power_note
    none = finder.of_group([run(-5)], "2025-09-11")
    assert none.effective_power_W is None and none.power_note == "no calibration at 455 nm started before the run"


def test_a_lit_run_without_a_wavelength_gets_a_note_not_a_crash():
    """A header's wavelength missing or damaged (stored as null) once stopped the lab analysis job (None:g)."""
    finder = Curves([calibration("a", -2)], 5.7)
    unknown = finder.of_group([run(0, wavelength=None)], "2025-09-11")
    assert unknown.effective_power_W is None and unknown.power_note == "no calibration at an unknown wavelength started before the run"
    mixed = finder.of_group([run(0, wavelength=None), run(1)], "2025-09-11")
    assert mixed.effective_power_W is None and "2.5 V at an unknown wavelength (1 runs)" in mixed.power_note


def groups_by_row_loop(table: pa.Table, keys: list[str]) -> dict[tuple, list[tuple[dict, list[int]]]]:
    """The grouping's definition, one row at a time: equal key tuples in order of first appearance."""
    found: dict[tuple, list[int]] = {}
    for row, values in enumerate(zip(*(table[name].to_pylist() for name in keys))):
        found.setdefault(values, []).append(row)
    chips: dict[tuple, list] = {}
    v_at = keys.index("v_max_V")
    for values, rows in found.items():
        chips.setdefault(values[:v_at] + values[v_at + 1 :], []).append((dict(zip(keys, values)), rows))
    return chips


@pytest.mark.parametrize("seed", range(5))
def test_groups_are_those_of_a_row_loop_on_unsorted_tables_with_nulls(seed):
    rng = np.random.default_rng(seed)
    n = 400
    chips = rng.choice(np.array([67, 68, None], dtype=object), n)
    v_max = rng.choice(np.array([1.0, 2.0, None], dtype=object), n)
    runs = np.repeat(rng.integers(0, 4, n // 20), 20)  # runs of equal keys, then keys coming back
    table = pa.table(
        {
            "chip_group": pa.array(np.where(runs % 2 == 0, "Alisson", None).tolist(), pa.string()),
            "chip_number": pa.array(np.where(runs < 2, chips, 67).tolist(), pa.int64()),
            "v_max_V": pa.array(np.where(runs == 3, v_max, 2.0).tolist(), pa.float64()),
        }
    )
    keys = ["chip_group", "chip_number", "v_max_V"]
    expected = groups_by_row_loop(table, keys)
    got = groups_by_chip(table, keys)
    assert list(got) == list(expected)
    for chip, groups in got.items():
        assert [(g.keys, g.rows.tolist()) for g in groups] == expected[chip]
