"""The twelve real files in tests/data/real (as the lab's instruments wrote them, MIT license beside them) through
the real workflow: what the instrument wrote as `nan` (temperature and clock inputs with nothing connected) is
not measured, not damage; the file with a header and no data is the one reject."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from workflow_runner import Workdir

REAL = Path(__file__).parent / "data" / "real"
TEMPERATURES = {"Plate T (degC)", "Ambient T (degC)", "Clock (ms)"}  # unmapped for IVg and It, as the files label them


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Workdir:
    root = tmp_path_factory.mktemp("real")
    wd = Workdir(root / "work", root / "raw")
    shutil.copytree(REAL, wd.raw_root, ignore=shutil.ignore_patterns("LICENSE", "*.md"))
    wd.path.mkdir()
    wd.write_config()
    wd.snakemake()
    return wd


def test_nan_columns_are_not_measured_and_no_real_file_is_damaged(real):
    manifest = {row["source_file"]: row for row in pq.read_table(real.results / "02_stage/_manifest/manifest.parquet").to_pylist()}
    assert len(manifest) == 12
    ok = {source: row for source, row in manifest.items() if row["status"] == "ok"}
    assert sorted(set(manifest) - set(ok)) == ["Alisson_25_sept/It2025-09-25_10.csv"]  # a header and no data
    assert all(row["null_cells"] == 0 and row["null_lines"] == [] and row["skipped_rows"] == 0 for row in ok.values())
    for source, row in ok.items():
        if row["proc"] in ("IVg", "It"):  # every row of their three inputs is `nan`
            assert set(row["not_measured_columns"]) == TEMPERATURES and row["not_measured_cells"] == 3 * row["rows"], source
    iv = ok["Alisson_12_sept/IV2025-09-12_1.csv"]  # IV maps them to its schema's names
    assert set(iv["not_measured_columns"]) == {"plate_t_degC", "ambient_t_degC", "clock_ms"}
    calibration = ok["2025-10-14/LaserCalibration2025-10-14_1.csv"]
    assert calibration["not_measured_cells"] == 0 and calibration["not_measured_columns"] == []


def test_the_staged_cells_written_nan_are_null(real):
    rows = pq.read_table(real.results / "02_stage/_manifest/manifest.parquet").to_pylist()
    row = next(r for r in rows if r["source_file"].endswith("IVg2025-10-10_1.csv"))
    table = pq.read_table(real.path / row["output"])
    assert all(table[name].null_count == table.num_rows for name in TEMPERATURES)
    assert table["i_A"].null_count == 0 and not any(v != v for v in table["i_A"].to_pylist())  # no NaN anywhere


def test_the_summary_and_landing_page_report_no_damaged_file(real):
    summary = (real.results / "summary.txt").read_text()
    assert "staged with damage (skipped rows or null cells): none" in summary
    assert re.search(r"not measured \(written as nan, stored as null\): \d+ cells in 9 files", summary)
    landing = (real.results / "04_report/landing.html").read_text()
    assert 'data-count="damaged">0<' in landing
