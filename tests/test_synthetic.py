"""The synthetic writer used for example data and benchmarks writes exactly what PyMeasure writes."""

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from nanolab.header import split_raw
from nanolab.synthetic import iv_voltages, render_raw, write_example_tree, write_tree
from pymeasure_raw import write_iv_with_pymeasure


def test_render_raw_matches_pymeasure_results_writer(tmp_path):
    path = write_iv_with_pymeasure(tmp_path / "IV.csv", iv_voltages(1.0, 0.25), 1757584800.0, laser_voltage=2.5)
    written = path.read_text()
    header, _, offset = split_raw(written.encode())
    body = written.encode()[offset:].decode()
    labels = body.splitlines()[0].split(",")
    data = np.loadtxt(body.splitlines()[1:], delimiter=",", ndmin=2)
    ours = render_raw("IV", header.parameters, 1757584800.0, labels, data)
    assert ours.splitlines()[0] == "#Procedure: <laser_setup.procedures.IV.IV>"
    assert ours.splitlines()[1:] == written.splitlines()[1:]  # parameter order, metadata, labels, number format


def test_iv_voltages_shape():
    sweep = iv_voltages(2.0, 0.1)
    assert sweep[0] == 0.0 and sweep[-1] == 0.0 and sweep.max() == 2.0 and sweep.min() == -2.0
    assert sweep.size == 4 * 20 + 1
    assert np.argmax(sweep) < np.argmin(sweep)
    negative = iv_voltages(2.0, 0.1, start_negative=True)
    assert np.argmin(negative) < np.argmax(negative)
    assert iv_voltages(2.0, 0.1, abort_after=30).size == 30
    fine = iv_voltages(1.0, 0.1, fine_step=0.01, fine_window=0.1)
    steps = np.abs(np.diff(fine))
    assert steps[:10].max() < 0.011 and steps[12:18].min() > 0.09


def test_write_tree_is_deterministic_and_dated_in_santiago(tmp_path):
    args = dict(start_date="2025-06-30", days=2, iv_per_day=3, ivg_per_day=1, it_per_day=1)
    first = write_tree(tmp_path / "a", seed=1, **args)
    again = write_tree(tmp_path / "b", seed=1, **args)
    other = write_tree(tmp_path / "c", seed=2, **args)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other]
    assert len(first) == 10
    for path in first:
        header, _, _ = split_raw(path.read_bytes())
        local = datetime.fromtimestamp(float(header.start_time_text), ZoneInfo("America/Santiago"))
        assert local.date().isoformat() == path.parent.name
        assert path.name.startswith(header.procedure + path.parent.name)


def test_example_tree_has_every_special_case(tmp_path):
    paths = {p.relative_to(tmp_path).as_posix(): p for p in write_example_tree(tmp_path)}
    assert len(paths) >= 20 and len({p.split("/")[0] for p in paths if p[0].isdigit()}) >= 3
    assert b"\r\n" in paths["2025-09-12/IV2025-09-12_4.csv"].read_bytes()
    assert b"#Metadata:" not in paths["2025-09-12/It2025-09-12_1.csv"].read_bytes()
    assert b"#Procedure" not in paths["2025-09-12/broken_no_header.csv"].read_bytes()
    assert "Alisson_15_sept/Alisson67_015.csv" in paths
    aborted = paths["2025-09-12/IV2025-09-12_2.csv"].read_text().splitlines()
    assert float(aborted[-1].split(",")[0]) < 0  # stopped on the negative side, never back to 0
