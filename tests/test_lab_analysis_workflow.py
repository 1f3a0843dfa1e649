"""The lab's further analysis as the workflow runs it (lab-analysis-2.md §3-§5): PyMeasure-written IV and
laser-calibration files in, backward-subtracted hysteresis, coercive fields with laser power and the chip
history out, equal to §3/§4 computed here from the raw text (numpy.loadtxt; §2 by test_analysis.reference).
Settings changes rerun only this analysis; an edited raw file recomputes only its day."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nanolab.analysis import AnalysisSettings
from nanolab.lab_plots import plot_all
from nanolab.layout import records_folder
from nanolab.read import load_analysis
from nanolab.synthetic import iv_voltages
from pymeasure_raw import write_calibration_with_pymeasure, write_iv_with_pymeasure
from test_analysis import reference
from test_analysis_workflow import lab_segment_types
from workflow_runner import Workdir

NOON = 1757602800.0  # 2025-09-11 12:00 in Santiago
DAY1, DAY2 = "2025-09-11", "2025-09-12"
LIT = {"laser_toggle": True, "laser_voltage": 2.5, "laser_wavelength": 455}
DARK = {"laser_toggle": False, "laser_voltage": 2.5}  # toggle off: dark whatever the voltage says
# file, day, start offset (s), chip, V_max, step, laser settings
RUNS = [
    ("IV2025-09-11_1.csv", DAY1, 0, 67, 1.0, 0.05, LIT),
    ("IV2025-09-11_2.csv", DAY1, 600, 67, 1.0, 0.05, LIT),
    ("IV2025-09-11_3.csv", DAY1, 1200, 67, 1.0, 0.05, LIT),
    ("IV2025-09-11_4.csv", DAY1, 1800, 67, 2.0, 0.1, LIT),  # the reference: 0.1 V steps against 0.05 V
    ("IV2025-09-11_5.csv", DAY1, 2400, 68, 1.0, 0.05, DARK),
    ("IV2025-09-12_1.csv", DAY2, 86400, 67, 1.0, 0.05, LIT),  # calibrated the day before only
    ("IV2025-09-12_2.csv", DAY2, 87000, 69, 1.0, 0.05, LIT),
    ("IV2025-09-12_3.csv", DAY2, 87600, 69, 1.0, 0.05, {"laser_toggle": False, "laser_voltage": 0.0}),
]
CAL_V = np.round(np.arange(0, 5.01, 0.1), 10)
# file, day, start offset, wavelength, power scale: the 455 nm run at 13:00 starts after every day-1 IV run
CALIBRATIONS = [
    ("LaserCalibration2025-09-11_1.csv", DAY1, -3600, 455, 1e-5),
    ("LaserCalibration2025-09-11_2.csv", DAY1, -600, 365, 3e-5),  # nearer, other wavelength
    ("LaserCalibration2025-09-11_3.csv", DAY1, 3600, 455, 2e-5),
]


def currents(voltages: np.ndarray) -> np.ndarray:
    """A linear channel with a drift in time, so forward and return differ."""
    return 1e-7 * voltages + 2e-9 * np.arange(voltages.size) / voltages.size


def read_data(path) -> np.ndarray:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return np.loadtxt(lines[1:], delimiter=",", usecols=(0, 1), ndmin=2)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab_analysis")
    wd = Workdir(tmp / "work", tmp / "raw")
    wd.path.mkdir()
    for name, day, offset, chip, vmax, step, laser in RUNS:
        path = wd.raw_root / day / name
        path.parent.mkdir(parents=True, exist_ok=True)
        v = iv_voltages(vmax, step)
        write_iv_with_pymeasure(path, v, NOON + offset, currents(v), chip_number=chip, vsd_start=vmax, vsd_end=-vmax, vsd_step=step, **laser)
    for name, day, offset, wavelength, scale in CALIBRATIONS:
        path = wd.raw_root / day / name
        write_calibration_with_pymeasure(path, CAL_V, np.clip(CAL_V - 1.6, 0, None) * scale, NOON + offset, laser_wavelength=wavelength)
    wd.write_config(figures=False)
    wd.snakemake()
    return wd


def raw_rows(wd: Workdir) -> dict[str, list[tuple]]:
    """Per day, (run, chip group, chip, type, V, I) of every IV file, parsed from the raw text."""
    rows: dict[str, list[tuple]] = {}
    for name, day, _, chip, vmax, step, _ in RUNS:
        data = read_data(wd.raw_root / day / name)
        types = lab_segment_types(int(round(vmax / step)))
        rows.setdefault(day, []).extend((name, "Alisson", chip, t, float(v), float(i)) for (v, i), t in zip(data, types) if t)
    return rows


def expected_subtraction(hysteresis: list[dict], orders: tuple[int, ...]) -> list[dict]:
    """§3 with the lab's defaults: per chip the largest V_max is M; E = V·100, J = I·2e4 term by term."""
    out = []
    for row in hysteresis:
        chip = (row["chip_group"], row["chip_number"])
        m = max(r["v_max_V"] for r in hysteresis if (r["chip_group"], r["chip_number"]) == chip)
        ref = {r["vsd_V"]: r for r in hysteresis if (r["chip_group"], r["chip_number"], r["v_max_V"]) == (*chip, m)}
        new = {"chip_number": row["chip_number"], "v_max_V": row["v_max_V"], "vsd_V": row["vsd_V"], "e_field_V_cm": row["vsd_V"] * 100}
        for n in orders:
            base = ref[row["vsd_V"]]["i_forward_A"] - ref[row["vsd_V"]][f"i_hysteresis_poly{n}_A"] if row["vsd_V"] in ref else None
            for branch, current in (("forward", row["i_forward_A"]), ("backward", row["i_return_A"])):
                new[f"i_{branch}_sub_poly{n}_A"] = None if base is None else current - base
                new[f"j_{branch}_sub_poly{n}_A_cm2"] = None if base is None else current * 2e4 - base * 2e4
        out.append(new)
    return out


def assert_close(got: dict, expected: dict, rtol: float = 1e-9) -> None:
    for name, value in expected.items():
        actual = got[name]
        if value is None:
            assert actual is None or actual != actual, (name, actual)
        else:
            assert actual == pytest.approx(value, rel=rtol, abs=1e-30), (name, got, expected)


def records(frame) -> list[dict]:
    return [{k: (None if v is None or v != v else v) for k, v in r.items()} for r in frame.astype(object).to_dict("records")]


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_backward_subtraction_equals_the_lab_steps_on_the_raw_files(lab, day):
    settings = AnalysisSettings()
    expected = expected_subtraction(reference(raw_rows(lab)[day], settings)["hysteresis"], settings.poly_orders)
    got = records(load_analysis(lab.results, "hysteresis_subtracted", date=day))
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected):
        assert_close(g, e)
        assert (g["reason"] is None) == (e["i_forward_sub_poly3_A"] is not None)
    if day == DAY1:  # the 0.05 V group meets the 0.1 V reference at every 0.1 V, and only there
        one_volt = [g for g in got if (g["chip_number"], g["v_max_V"]) == (67, 1.0)]
        shared = [g["vsd_V"] for g in one_volt if g["i_forward_sub_poly3_A"] is not None]
        assert shared == pytest.approx([v for v in np.round(np.arange(-0.9, 0.91, 0.1), 2) if v != 0])


def test_coercive_field_and_laser_power_follow_the_calibration_rule(lab):
    coercive = records(load_analysis(lab.results, "coercive_field"))
    settings = AnalysisSettings()
    by_key = {(r["date"], r["chip_number"], r["v_max_V"], r["poly_order"]): r for r in coercive}
    assert len(coercive) == 5 * len(settings.poly_orders)
    # E_c from the raw hysteresis |I_f - I_r| among the voltages M also has, every order the same (§4)
    for day in (DAY1, DAY2):
        hysteresis = reference(raw_rows(lab)[day], settings)["hysteresis"]
        for chip, vmax in {(r["chip_number"], r["v_max_V"]) for r in hysteresis}:
            m = max(r["v_max_V"] for r in hysteresis if r["chip_number"] == chip)
            shared = {r["vsd_V"] for r in hysteresis if (r["chip_number"], r["v_max_V"]) == (chip, m)}
            rows = [r for r in hysteresis if (r["chip_number"], r["v_max_V"]) == (chip, vmax) and r["vsd_V"] in shared]
            for side, keep in (("pos", lambda v: v >= 0), ("neg", lambda v: v < 0)):
                best = max((r for r in rows if keep(r["vsd_V"])), key=lambda r: abs(r["i_forward_A"] - r["i_return_A"]))
                for n in settings.poly_orders:
                    got = by_key[(day, chip, vmax, n)]
                    assert got[f"e_coercive_{side}_V_cm"] == pytest.approx(best["vsd_V"] * 100, rel=1e-12)
                    assert got[f"j_max_{side}_A_cm2"] == pytest.approx(abs(best["i_forward_A"] - best["i_return_A"]) * 2e4, rel=1e-6)
    calibration = read_data(lab.raw_root / DAY1 / "LaserCalibration2025-09-11_1.csv")
    later = read_data(lab.raw_root / DAY1 / "LaserCalibration2025-09-11_3.csv")
    lit_day1 = by_key[(DAY1, 67, 2.0, 3)]
    assert lit_day1["incident_power_W"] == pytest.approx(np.interp(2.5, *calibration.T), rel=1e-12)
    assert lit_day1["effective_power_W"] == pytest.approx(np.interp(2.5, *calibration.T) / 5.7, rel=1e-12)
    assert lit_day1["power_note"] == "calibrated the same day" and lit_day1["calibration_run_id"]
    lit_day2 = by_key[(DAY2, 67, 1.0, 3)]  # no calibration on its own day: the latest earlier one
    assert lit_day2["incident_power_W"] == pytest.approx(np.interp(2.5, *later.T), rel=1e-12)
    assert lit_day2["power_note"] == f"calibrated on {DAY1}"
    assert lit_day2["calibration_run_id"] != lit_day1["calibration_run_id"]
    dark = by_key[(DAY1, 68, 1.0, 3)]
    assert (dark["incident_power_W"], dark["effective_power_W"], dark["laser_voltage_V"], dark["power_note"]) == (0.0, 0.0, 0.0, "dark")
    mixed = by_key[(DAY2, 69, 1.0, 3)]
    assert mixed["effective_power_W"] is None and mixed["laser_voltage_V"] is None
    assert mixed["power_note"].startswith("runs differ in laser settings")


def test_chip_history_has_a_row_per_day_and_group(lab):
    history = load_analysis(lab.results, "chip_history")
    fits = load_analysis(lab.results, "iv_fits")
    assert sorted(zip(history["date"], history["chip_number"], history["v_max_V"])) == sorted(zip(fits["date"], fits["chip_number"], fits["v_max_V"]))
    row = history[(history["date"] == DAY1) & (history["chip_number"] == 67) & (history["v_max_V"] == 1.0)].iloc[0]
    fit = fits[(fits["date"] == DAY1) & (fits["chip_number"] == 67) & (fits["v_max_V"] == 1.0)].iloc[0]
    assert row["resistance_MOhm"] == pytest.approx(fit["resistance_ohm"] / 1e6) and row["n_runs"] == 3
    summary = load_analysis(lab.results, "hysteresis_summary", date=DAY1, chip_number=67, method="poly3")
    assert row["hysteresis_mean_nA"] == pytest.approx(summary[summary["v_max_V"] == 1.0]["mean_A"].iloc[0] * 1e9)
    assert not math.isnan(row["e_coercive_pos_V_cm"])
    csv = (lab.results / "04_report" / "chip_history.csv").read_text().splitlines()
    assert len(csv) == len(history) + 1


def test_figures_per_day_and_chip_are_drawn_once(lab, tmp_path, monkeypatch):
    monkeypatch.chdir(lab.path)  # manifests list paths relative to the working folder, as the jobs run
    manifest = lab.results / "04_analysis" / "_batches" / "lab_analysis.parquet"
    days, chips, drawn = tmp_path / "days", tmp_path / "chips", tmp_path / "drawn"
    assert plot_all(manifest, days, chips, drawn, 3) == (5, 5)
    assert sorted(p.name for p in days.iterdir()) == [f"date={DAY1}.png", f"date={DAY2}.png"]
    assert sorted(p.name for p in chips.iterdir()) == ["chip=Alisson_67.png", "chip=Alisson_68.png", "chip=Alisson_69.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in [*days.iterdir(), *chips.iterdir()])
    assert plot_all(manifest, days, chips, drawn, 3) == (5, 0)  # unchanged data: nothing redrawn


def test_geometry_changes_rerun_only_the_lab_analysis(lab):
    lab.write_config(figures=False, lab_analysis={"chips": {"Alisson 67": {"channel_length_um": 96}}})
    assert lab.planned_jobs() == {"lab_analysis": 1, "all": 1}
    lab.snakemake()
    rows = load_analysis(lab.results, "hysteresis_subtracted", date=DAY1)
    for chip, length_cm in ((67, 96e-4), (68, 100e-4)):
        mine = rows[rows["chip_number"] == chip]
        assert np.allclose(mine["e_field_V_cm"], mine["vsd_V"] / length_cm, rtol=1e-12)
    lab.write_config(figures=False)
    lab.snakemake()
    assert lab.planned_jobs() == {}


def test_an_edited_raw_file_recomputes_only_its_day(lab):
    records_dir = lab.path / records_folder("lab_analysis")
    before = {p.name: p.stat().st_mtime_ns for p in records_dir.iterdir()}
    day1_table = lab.results / "04_analysis" / "coercive_field" / f"date={DAY1}" / "part-000.parquet"
    day1_mtime = day1_table.stat().st_mtime_ns
    path = lab.raw_root / DAY2 / "IV2025-09-12_1.csv"
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    data_at = next(k for k, line in enumerate(text) if line.startswith("Vsd"))
    v, i, *rest = text[data_at + 5].split(",")
    text[data_at + 5] = ",".join([v, repr(float(i) * 1.5), *rest])
    path.write_text("".join(text), encoding="utf-8")
    lab.snakemake()
    after = {p.name: p.stat().st_mtime_ns for p in records_dir.iterdir()}
    assert after[f"date={DAY1}.json"] == before[f"date={DAY1}.json"] and day1_table.stat().st_mtime_ns == day1_mtime
    assert after[f"date={DAY2}.json"] != before[f"date={DAY2}.json"]
    assert "2 days: 1 computed, 1 unchanged" in (lab.path / "logs/lab_analysis.log").read_text()


def test_a_deleted_lab_table_is_noticed_and_rebuilt(lab):
    table = lab.results / "04_analysis" / "hysteresis_subtracted" / f"date={DAY1}" / "part-000.parquet"
    before = table.read_bytes()
    table.unlink()
    assert lab.planned_jobs() == {"lab_analysis": 1, "all": 1}
    lab.snakemake()
    assert table.read_bytes() == before and lab.planned_jobs() == {}
