"""Copies of raw files (same bytes, another path): staged as usual, marked `duplicate_of` the first path
in sorted order, counted in the summary and the staging table; analysis.exclude_duplicates leaves them
out of the analysis."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from nanolab.catalog import RawFile, duplicates, scan
from nanolab.manifest import duplicates_line, mark_duplicates, staging_summary
from nanolab.read import load_analysis
from nanolab.stage import MANIFEST_SCHEMA
from nanolab.synthetic import iv_voltages
from pymeasure_raw import write_iv_with_pymeasure
from workflow_runner import Workdir

NOON = 1757602800.0  # 2025-09-11 12:00 in Santiago


def write_day(raw: Path, runs: int = 5) -> list[Path]:
    day = raw / "2025-09-11"
    day.mkdir(parents=True)
    return [write_iv_with_pymeasure(day / f"IV2025-09-11_{k + 1}.csv", iv_voltages(1.0, 0.05), NOON + 600 * k) for k in range(runs)]


def test_copies_are_found_by_content_and_marked_as_copies_of_the_first_sorted_path(tmp_path):
    originals = write_day(tmp_path)
    shutil.copyfile(originals[0], tmp_path / "2025-09-11/0_copy.csv")  # sorts before its original
    shutil.copyfile(originals[0], tmp_path / "2025-09-11/z_copy.csv")
    (tmp_path / "elsewhere").mkdir()
    shutil.copyfile(originals[3], tmp_path / "elsewhere/IV_4.csv")
    (tmp_path / "2025-09-11/empty.csv").write_bytes(b"")  # two empty files are no measurements
    (tmp_path / "2025-09-11/empty_too.csv").write_bytes(b"")
    catalog = scan(tmp_path, "America/Santiago")
    found = {row["source_file"]: row["duplicate_of"] for row in duplicates(catalog, tmp_path)}
    assert found == {
        "2025-09-11/IV2025-09-11_1.csv": "2025-09-11/0_copy.csv",
        "2025-09-11/z_copy.csv": "2025-09-11/0_copy.csv",
        "elsewhere/IV_4.csv": "2025-09-11/IV2025-09-11_4.csv",
    }
    run_ids = {f.source_file: (f.run_id, f.date) for f in catalog}
    for row in duplicates(catalog, tmp_path):
        assert (row["run_id"], row["date"]) == run_ids[row["source_file"]]


def test_equal_size_and_crc_with_other_bytes_is_no_duplicate(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"#Procedure: <IV>\n1")
    (tmp_path / "b.csv").write_bytes(b"#Procedure: <IV>\n2")
    (tmp_path / "c.csv").write_bytes(b"#Procedure: <IV>\n2")
    catalog = [RawFile(name, 18, 0, "IV", "2025-09-11", name, "18:00000000") for name in ("a.csv", "b.csv", "c.csv")]  # a CRC collision
    assert [(r["source_file"], r["duplicate_of"]) for r in duplicates(catalog, tmp_path)] == [("c.csv", "b.csv")]


def test_the_manifest_marks_copies_and_the_summary_and_staging_table_count_them():
    stage = pa.Table.from_pylist(
        [{"source_file": name, "status": "ok", "proc": "IV", "date": "2025-09-11"} for name in ("a.csv", "b.csv", "c.csv")], schema=MANIFEST_SCHEMA
    )
    marked = mark_duplicates(stage, [{"source_file": "c.csv", "run_id": "x", "date": "2025-09-11", "duplicate_of": "a.csv"}])
    assert marked["duplicate_of"].to_pylist() == [None, None, "a.csv"] and marked.schema == MANIFEST_SCHEMA
    [line] = duplicates_line(marked, excluded=False)
    assert "duplicates (the same bytes as another raw file): 1, staged and analysed too" in line and "c.csv (= a.csv)" in line
    assert "left out of the analysis" in duplicates_line(marked, excluded=True)[0]
    assert duplicates_line(stage, excluded=False) == []
    assert staging_summary(marked).select(["files", "duplicates"]).to_pylist() == [{"files": 3, "duplicates": 1}]


def test_three_copies_are_staged_marked_counted_and_left_out_of_the_analysis_when_asked(tmp_path):
    raw = tmp_path / "raw"
    originals = write_day(raw)
    copies = {f"2025-09-11/copy_{k}.csv": originals[k] for k in range(3)}
    for name, original in copies.items():
        shutil.copyfile(original, raw / name)
    wd = Workdir(tmp_path / "work", raw)
    wd.path.mkdir()
    wd.write_config(figures=False)

    result = wd.snakemake()
    manifest = {r["source_file"]: r for r in pq.read_table(wd.results / "02_stage/_manifest/manifest.parquet").to_pylist()}
    assert len(manifest) == 8 and all(r["status"] == "ok" for r in manifest.values())  # nothing dropped
    marked = {name: r["duplicate_of"] for name, r in manifest.items() if r["duplicate_of"]}
    assert marked == {name: original.relative_to(raw).as_posix() for name, original in copies.items()}
    assert "duplicates (the same bytes as another raw file): 3, staged and analysed too" in result.stdout
    staging = pacsv.read_csv(wd.results / "04_report/staging_summary.csv").to_pylist()
    assert [(r["files"], r["duplicates"]) for r in staging] == [(8, 3)]
    [fits] = load_analysis(wd.results, "iv_fits", date="2025-09-11").to_dict("records")
    assert fits["n_runs"] == 8

    assert wd.planned_jobs() == {}
    exclude = "analysis={exclude_duplicates: true}"  # as the README writes settings
    planned = {"analyse_iv": 1, "lab_analysis": 1, "manifests": 1, "landing_page": 1, "all": 1}
    assert wd.planned_jobs("--config", exclude) == planned  # nothing is restaged
    result = wd.snakemake("--config", exclude)
    [fits] = load_analysis(wd.results, "iv_fits", date="2025-09-11").to_dict("records")
    assert fits["n_runs"] == 5  # each measurement once
    assert "staged and left out of the analysis" in result.stdout
    assert len(pq.read_table(wd.results / "02_stage/_manifest/manifest.parquet")) == 8
    assert wd.planned_jobs("--config", exclude) == {}
