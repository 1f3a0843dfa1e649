"""The IVg run analysis (nanolab.ivg, lab-analysis-3.md §1.1-1.3 and §1.6) on sweeps of known shape, and the
facts the page states about the real sample files (tests/data/real)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
from nanolab.ivg import analyse_run, cnp, legs, sweep_range

REAL = Path(__file__).parent / "data" / "real"
STEP = 0.05


def sweep(*turns: float, step: float = STEP) -> np.ndarray:
    """0 → turns[0] → turns[1] → … in steps of `step`, each turning sample once."""
    points = [0.0]
    for end in turns:
        count = round(abs(end - points[-1]) / step)
        points += list(np.linspace(points[-1], end, count + 1)[1:])
    return np.array(points)


def transfer_curve(vg: np.ndarray, cnp_forward: float, cnp_backward: float, a: float = 2e-6, i_min: float = 1e-6) -> np.ndarray:
    """A parabola I = a (Vg - CNP)² + I_min whose vertex is `cnp_forward` where Vg rises, `cnp_backward` where it falls."""
    rising = np.concatenate([[True], np.diff(vg) > 0])
    vertex = np.where(rising, cnp_forward, cnp_backward)
    return a * (vg - vertex) ** 2 + i_min


def test_the_lab_sweep_has_two_half_legs_and_a_full_leg_each_way():
    vg = sweep(-5, 5, -5, 0)
    found = legs(vg, sweep_range(vg, -5, 5))
    assert [(leg.forward, leg.full) for leg in found] == [(False, False), (True, True), (False, True), (True, False)]
    forward = found[1]
    assert vg[forward.start] == -5 and vg[forward.stop - 1] == 5  # the turning samples belong to both legs
    assert found[2].start == forward.stop - 1


def test_cnp_current_at_it_and_hysteresis_of_a_known_parabola_to_floating_point():
    vg = sweep(-5, 5, -5, 0)
    result = analyse_run(vg, transfer_curve(vg, 0.3, 0.1), -5, 5)
    values = result.values
    assert values["cnp_forward_V"] == pytest.approx(0.3, abs=1e-9) and values["cnp_backward_V"] == pytest.approx(0.1, abs=1e-9)
    assert values["i_cnp_forward_A"] == pytest.approx(1e-6, rel=1e-9) and values["i_cnp_backward_A"] == pytest.approx(1e-6, rel=1e-9)
    assert values["cnp_hysteresis_V"] == pytest.approx(-0.2, abs=1e-9)
    # min |I| at the CNP itself (a grid point); max |I| at -4.95 V, the first rising sample (the turning
    # sample at -5 V was measured on the way down: its current is the backward parabola's, 5.1 V from 0.1 V)
    assert values["on_off_forward"] == pytest.approx((2e-6 * 5.25**2 + 1e-6) / 1e-6, rel=1e-12)
    assert result.flags == [] and result.reasons == []


def test_a_vertex_between_samples_is_found_by_the_fit_not_the_grid():
    vg = sweep(-5, 5, -5, 0)
    values = analyse_run(vg, transfer_curve(vg, 0.1234, -0.0421), -5, 5).values
    assert values["cnp_forward_V"] == pytest.approx(0.1234, abs=1e-9) and values["cnp_backward_V"] == pytest.approx(-0.0421, abs=1e-9)


def test_one_full_leg_only_has_no_backward_cnp_and_no_hysteresis():
    vg = sweep(-5, 5, 0)  # 0 -> -5 -> +5 -> 0: no return leg
    result = analyse_run(vg, transfer_curve(vg, 0.3, 0.1), -5, 5)
    assert result.values["cnp_forward_V"] == pytest.approx(0.3, abs=1e-9)
    assert result.values["cnp_backward_V"] is None and "cnp_backward_V:NO_FULL_RANGE_LEG" in result.reasons
    assert result.values["cnp_hysteresis_V"] is None and "cnp_hysteresis_V:NEEDS_BOTH_CNPS" in result.reasons
    assert "ONE_FULL_LEG_ONLY" in result.flags


def test_a_run_stopped_inside_its_first_full_leg_has_no_full_leg():
    """§4.7: the lab's range is the data's own, so a run stopped at +2.9 V of a ±5 V sweep had one 'full' leg."""
    vg = sweep(-5, 2.9)
    result = analyse_run(vg, transfer_curve(vg, 0.3, 0.1), -5, 5)
    assert result.values["cnp_forward_V"] is None and "cnp_forward_V:NO_FULL_RANGE_LEG" in result.reasons


def test_the_minimum_at_a_leg_end_is_no_cnp():
    vg = sweep(-5, 5, -5, 0)
    monotonic = 1e-6 * np.exp(vg)  # smallest |I| at -5 V, the legs' ends
    result = analyse_run(vg, monotonic, -5, 5)
    assert result.values["cnp_forward_V"] is None and "cnp_forward_V:MIN_AT_LEG_EDGE" in result.reasons


def test_a_parabola_that_is_a_maximum_of_abs_i_is_no_cnp():
    vg = np.linspace(-1, 1, 201)
    # I crosses zero at 0 V with its vertex inside the 3-sample window: |I| has a cusp there, no parabola minimum
    assert cnp(vg, 1e-6 * (vg + 60 * vg**2)) == "PARABOLA_NOT_A_MINIMUM_OF_ABS_I"
    assert cnp(vg, -(vg**2) - 1e-6) == pytest.approx((0.0, -1e-6), abs=1e-12)  # negative I: its |I| minimum is one


def test_a_dead_run_has_no_cnp_whatever_its_shape():
    """§4.7: the lab emits CNPs for DEAD_* runs; here they are null with the flag as reason."""
    vg = sweep(-5, 5, -5, 0)
    flat = 1e-6 * (1 + 0.01 * transfer_curve(vg, 0.3, 0.1) / 1e-6 / 60)  # modulation far below 15 %
    result = analyse_run(vg, flat, -5, 5)
    assert "DEAD_FLAT_IVG" in result.flags and result.values["cnp_forward_V"] is None and "cnp_forward_V:DEAD_FLAT_IVG" in result.reasons
    result = analyse_run(vg, np.full(vg.size, 1e-13), -5, 5)
    assert result.flags == ["DEAD_OPEN_CIRCUIT"] and result.values["on_off_forward"] is None


def test_high_hysteresis_and_a_cnp_near_the_sweep_end_are_flagged():
    vg = sweep(-5, 5, -5, 0)
    assert "HIGH_HYSTERESIS" in analyse_run(vg, transfer_curve(vg, -0.7, 0.6), -5, 5).flags
    assert "CNP_NEAR_SWEEP_END" in analyse_run(vg, transfer_curve(vg, 4.8, 4.7), -5, 5).flags


def test_non_finite_rows_are_dropped_and_said():
    vg = sweep(-5, 5, -5, 0)
    i = transfer_curve(vg, 0.3, 0.1)
    i[7] = np.nan
    result = analyse_run(vg, i, -5, 5)
    assert "NONFINITE_ROWS_DROPPED" in result.flags and result.values["cnp_forward_V"] == pytest.approx(0.3, abs=1e-9)


def real_run(name: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    path = next(REAL.rglob(name))
    text = path.read_text()
    table = pacsv.read_csv(io.BytesIO(text.split("#Data:\n", 1)[1].encode()))
    start, end = (float(re.search(rf"{key}: ([-\d.]+)", text)[1]) for key in ("VG start", "VG end"))
    return table["Vg (V)"].to_numpy(), table["I (A)"].to_numpy(), start, end


def test_the_real_sweep_without_a_return_leg_has_one_full_leg_only():
    """lab-analysis-3.md §1.1: IVg2025-09-04_12 goes 0 -> -5 -> +5 -> 0, no return leg."""
    result = analyse_run(*real_run("IVg2025-09-04_12.csv"))
    assert "ONE_FULL_LEG_ONLY" in result.flags and result.values["cnp_forward_V"] is not None
    assert result.values["cnp_backward_V"] is None and result.values["cnp_hysteresis_V"] is None


def test_the_real_typical_sweeps_have_both_cnps_inside_the_sweep_and_a_small_hysteresis():
    """§6: on hBN the hysteresis is a fraction of a volt (a reading lag of a step or two), far from the ends."""
    for name in ("IVg2025-10-10_1.csv", "IVg2025-10-13_12.csv"):
        result = analyse_run(*real_run(name))
        assert result.reasons == [] and "CNP_NEAR_SWEEP_END" not in result.flags, name
        assert abs(result.values["cnp_hysteresis_V"]) < 0.2 and result.values["on_off_forward"] > 1, name


def test_transconductance_of_a_known_parabola_and_its_peaks_on_both_branches():
    """dI/dVg of I = a (Vg - 0.3)² + I_min is 2a (Vg - 0.3): largest on the hole branch at -5 V, on the
    electron branch at +5 V; a cubic fitted to 9 samples of a parabola has its slope exactly."""
    vg = sweep(-5, 5, -5, 0)
    result = analyse_run(vg, transfer_curve(vg, 0.3, 0.3), -5, 5, vds=0.1)
    assert result.values["gm_max_hole_S"] == pytest.approx(2 * 2e-6 * 5.3, rel=1e-9)
    assert result.values["gm_max_electron_S"] == pytest.approx(2 * 2e-6 * 4.7, rel=1e-9)
    assert "GM_SIGN_UNEXPECTED" not in result.flags  # negative on holes, positive on electrons at VDS > 0
    assert "GM_SIGN_UNEXPECTED" in analyse_run(vg, transfer_curve(vg, 0.3, 0.3), -5, 5, vds=-0.1).flags


def test_a_branch_of_fewer_than_5_samples_has_no_peak():
    vg = sweep(-5, 5, -5, 0)
    result = analyse_run(vg, transfer_curve(vg, 4.9, 4.9), -5, 5, vds=0.1)  # two samples above the CNP
    assert result.values["gm_max_electron_S"] is None and "gm_max_electron_S:BRANCH_HAS_FEWER_THAN_5_POINTS" in result.reasons
    assert result.values["gm_max_hole_S"] == pytest.approx(2 * 2e-6 * 9.9, rel=1e-9)


def test_a_current_jump_is_flagged_and_a_smooth_sweep_is_not():
    vg = sweep(-5, 5, -5, 0)
    smooth = transfer_curve(vg, 0.3, 0.1)
    assert "CURRENT_JUMP" not in analyse_run(vg, smooth, -5, 5).flags
    jumped = smooth.copy()
    jumped[150:] += 0.1 * (smooth.max() - smooth.min())  # one step of 10 % of the range in the forward leg
    assert "CURRENT_JUMP" in analyse_run(vg, jumped, -5, 5).flags
