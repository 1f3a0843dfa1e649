"""The analysis as the workflow runs it: PyMeasure-written raw files in, 04_analysis tables out, equal
to the lab's §2 computed in the test from the raw text (numpy.loadtxt, segment types by construction);
a changed analysis setting reruns only the analysis."""

from __future__ import annotations

import numpy as np
import pytest
from nanolab.analysis import KINDS, AnalysisSettings
from nanolab.read import load_analysis
from nanolab.synthetic import iv_voltages
from pymeasure_raw import write_iv_with_pymeasure
from test_analysis import assert_rows_match, reference
from workflow_runner import Workdir

NOON = 1757602800.0  # 2025-09-11 12:00 in Santiago
RUNS = [  # file, chip, V_max, step: chip 67 has a 1 V group of three runs and a single-run 2 V group
    ("IV2025-09-11_1.csv", 67, 1.0, 0.05),
    ("IV2025-09-11_2.csv", 67, 1.0, 0.05),
    ("IV2025-09-11_3.csv", 67, 1.0, 0.05),
    ("IV2025-09-11_4.csv", 67, 2.0, 0.1),
    ("IV2025-09-11_5.csv", 68, 1.0, 0.05),
]


def lab_segment_types(n: int) -> list[str | None]:
    """Types of the rows of a 0 → +V → 0 → −V → 0 sweep of n steps per quarter in the lab's convention
    (lab-analysis.md §1): 0..+V forward, the return stops before 0 V, 0..−V forward, last 0 V row dropped."""
    return ["forward_positive"] * (n + 1) + ["return_positive"] * (n - 1) + ["forward_negative"] * (n + 1) + ["return_negative"] * (n - 1) + [None]


def raw_rows(raw, name: str, chip: int, n: int) -> list[tuple]:
    """(run, chip group, chip, type, V, I) of a raw file, parsed here: header and label row skipped."""
    lines = [line for line in (raw / "2025-09-11" / name).read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    data = np.loadtxt(lines[1:], delimiter=",", usecols=(0, 1), ndmin=2)
    types = lab_segment_types(n)
    assert len(types) == len(data)
    return [(name, "Alisson", chip, kind, float(v), float(i)) for (v, i), kind in zip(data, types) if kind]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analysis")
    wd = Workdir(tmp / "work", tmp / "raw")
    wd.path.mkdir()
    for k, (name, chip, vmax, step) in enumerate(RUNS):
        path = wd.raw_root / "2025-09-11" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_iv_with_pymeasure(path, iv_voltages(vmax, step), NOON + 600 * k, chip_number=chip, vsd_start=vmax, vsd_end=-vmax, vsd_step=step)
    wd.write_config(figures=False)
    wd.snakemake()
    return wd


@pytest.mark.parametrize("kind", KINDS)
def test_workflow_tables_equal_the_lab_analysis_of_the_raw_files(analysed, kind):
    rows = []
    for name, chip, vmax, step in RUNS:
        rows += raw_rows(analysed.raw_root, name, chip, int(round(vmax / step)))
    expected = reference(rows, AnalysisSettings())[kind]
    got = load_analysis(analysed.results, kind, date="2025-09-11")
    assert len(got) == len(expected) > 0
    records = got.drop(columns=["date"]).astype(object).to_dict("records")
    assert_rows_match([{k: (None if v is None or v != v else v) for k, v in r.items()} for r in records], expected)


def test_single_run_group_and_both_chips_are_there(analysed):
    fits = load_analysis(analysed.results, "iv_fits", date="2025-09-11")
    assert [tuple(r) for r in fits[["chip_number", "v_max_V", "n_runs"]].itertuples(index=False)] == [(67, 1.0, 3), (67, 2.0, 1), (68, 1.0, 1)]


def test_a_changed_analysis_setting_reruns_only_the_analysis(analysed):
    analysed.write_config(figures=False, analysis={"poly_orders": [1, 2]})
    assert analysed.planned_jobs() == {"analyse_iv": 1, "lab_analysis": 1, "landing_page": 1, "all": 1}
    # the chip history's order (3) is no longer fitted: the dry run says so, and how to choose
    dry = analysed.snakemake("-n")
    assert "lab_analysis.history_order 3 is not among analysis.poly_orders [1, 2]" in dry.stdout + dry.stderr
    assert "--config 'lab_analysis={history_order: 2}'" in dry.stdout + dry.stderr
    analysed.write_config(figures=False)
    assert analysed.planned_jobs() == {}
