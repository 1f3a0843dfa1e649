"""The workflow job's one pass (stage, then segment from memory) against the straightforward path,
the sizes the batch manifests record, and reuse records that are trusted only while their outputs are whole."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import SCHEMA_FILE
from nanolab import iv_segments, stage
from nanolab.batch import process_batch
from nanolab.schema import load_schema, read_yaml, schema_copy
from nanolab.synthetic import write_lab_tree

SEGMENT_COLUMNS = {"segment_id", "segment_type", "point_in_segment"}


def damaged_copies(raw: Path) -> None:
    """IV files the fast float path cannot take: a spelled-out infinity, a ragged row, a cut last line."""
    source = sorted(raw.rglob("IV*.csv"))[0]
    lines = source.read_text().splitlines()
    data = lines.index("#Data:") + 2
    infinity = lines[: data + 3] + [lines[data + 3].replace(lines[data + 3].split(",")[1], "Infinity", 1)] + lines[data + 4 :]
    ragged = lines[: data + 5] + ["0.5,1e-9"] + lines[data + 5 :]
    for name, text in (("IV_infinity.csv", infinity), ("IV_ragged.csv", ragged)):
        (source.parent / name).write_text("\n".join(text).replace("Start time: ", f"Start time: {len(name)}", 1) + "\n")
    (source.parent / "IV_cut.csv").write_text(source.read_text()[:-7])


@pytest.fixture
def tree(tmp_path, lab_schema):
    raw = tmp_path / "raw"
    write_lab_tree(raw, start_date="2025-09-01", days=2, runs={"IV": 5, "IVg": 1, "It": 1}, seed=3)
    damaged_copies(raw)
    files = sorted(raw.rglob("*.csv"))

    def settings(out: Path, min_points: int = 5) -> tuple[stage.StageSettings, iv_segments.SegmentSettings]:
        return (
            stage.StageSettings(raw, out / "02_stage", lab_schema, "America/Santiago"),
            iv_segments.SegmentSettings(out / "03_intermediate", "vsd_V", 1e-3, min_points),
        )

    return files, settings


def parquet_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("part-*.parquet")}


def test_one_pass_equals_staging_everything_then_segmenting_from_the_files(tree, tmp_path):
    files, settings = tree
    staging, segmentation = settings(tmp_path / "fused")
    fused_stage, fused_segments, fused_points = process_batch(files, staging, segmentation)
    staging, segmentation = settings(tmp_path / "plain")
    plain_stage = stage.stage_files(files, staging)
    plain_segments = iv_segments.segment_runs(plain_stage, segmentation)
    drop = ["output"]  # absolute paths under different roots
    assert fused_stage.drop_columns(drop).equals(plain_stage.drop_columns(drop))
    assert fused_segments.drop_columns(drop).equals(plain_segments.drop_columns(drop))
    rows = {r["source_file"].rsplit("/", 1)[1]: r for r in fused_stage.to_pylist()}
    assert rows["IV_infinity.csv"]["null_cells"] == 1 and rows["IV_ragged.csv"]["skipped_rows"] == 1
    assert rows["IV_cut.csv"]["status"] == "ok"
    ours, reference = parquet_files(tmp_path / "fused"), parquet_files(tmp_path / "plain")
    assert ours.keys() == reference.keys() and len(ours) > 20
    for name, path in ours.items():
        assert pq.read_table(path).equals(pq.read_table(reference[name])), name


def test_manifests_record_the_size_of_every_file_written(tree, tmp_path):
    files, settings = tree
    staged, segmented, _ = process_batch(files, *settings(tmp_path / "out"))
    for row in staged.to_pylist():
        if row["status"] == "ok":
            assert row["output_bytes"] == os.stat(row["output"]).st_size > 0
    for row in segmented.to_pylist():
        folder = Path(row["output"])
        assert row["segment_bytes"] == [os.stat(folder / f"segment={k}/part-000.parquet").st_size for k in range(row["n_segments"])]


def test_segment_files_hold_the_data_and_segment_columns_only(tree, tmp_path):
    """Run columns and header parameters live once per run, in the staged file (and the stage manifest)."""
    files, settings = tree
    staged, segmented, _ = process_batch(files, *settings(tmp_path / "out"))
    row = segmented.to_pylist()[0]
    data = {"vsd_V", "i_A", "plate_t_degC", "ambient_t_degC", "clock_ms"}
    for k in range(row["n_segments"]):
        assert set(pq.read_schema(Path(row["output"]) / f"segment={k}/part-000.parquet").names) == data | SEGMENT_COLUMNS
    staged_file = next(r["output"] for r in staged.to_pylist() if r["run_id"] == row["run_id"])
    run = {"start_dt", "date_origin", "source_file", "with_light", "wavelength_nm", "laser_voltage_V", "chip_group", "chip_number"}
    run |= {"sample", "procedure_version"}
    assert data | run | {"burn_in_time_s", "nplc", "vsd_step_V"} <= set(pq.read_schema(staged_file).names)


def test_segment_files_hold_the_staged_rows_of_their_segment(tree, tmp_path):
    """Each file is a stretch of its staged run's rows, as long as the manifest says; the manifest's voltage
    range is the file's first and last voltage."""
    files, settings = tree
    staged, segmented, _ = process_batch(files, *settings(tmp_path / "out"))
    outputs = {r["run_id"]: r["output"] for r in staged.to_pylist()}
    for row in segmented.filter(pc.equal(segmented["status"], "ok")).to_pylist():
        run = pq.read_table(outputs[row["run_id"]], columns=["vsd_V", "i_A"])
        for k, (kind, points) in enumerate(zip(row["segment_types"], row["segment_points"])):
            segment = pq.read_table(Path(row["output"]) / f"segment={k}/part-000.parquet")
            assert segment.num_rows == points and segment["segment_type"].unique().to_pylist() == [kind]
            assert segment["segment_id"].unique().to_pylist() == [k] and segment["point_in_segment"].to_pylist() == list(range(points))
            assert [segment["vsd_V"][0].as_py(), segment["vsd_V"][-1].as_py()] == [row["segment_v_start"][k], row["segment_v_end"][k]]
            found = [s for s in range(run.num_rows - points + 1) if run["vsd_V"][s].as_py() == segment["vsd_V"][0].as_py()]
            assert any(run.slice(s, points).equals(segment.select(["vsd_V", "i_A"])) for s in found)
        assert row["segment_directions"] and set(row["segment_directions"]) <= {"increasing", "decreasing", "unknown"}


def mtimes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_a_rerun_reuses_every_whole_output(tree, tmp_path):
    files, settings = tree
    first = process_batch(files, *settings(tmp_path / "out"))
    before = mtimes(tmp_path / "out")
    again = process_batch(files, *settings(tmp_path / "out"))
    assert mtimes(tmp_path / "out") == before
    assert again[0].equals(first[0]) and again[1].equals(first[1])
    # the points of reused runs (read back from their segment files) equal those made in memory
    assert again[2].equals(first[2]) and first[2].num_rows == sum(sum(p) for p in first[1]["segment_points"].to_pylist())


def test_the_record_files_hold_the_batch_runs_only_and_an_unreadable_one_redoes_them(tree, tmp_path):
    files, settings = tree
    out = tmp_path / "out"
    staged, segmented, points = process_batch(files, *settings(out))
    records = {stage: out / stage / "_records/batch.json" for stage in ("02_stage", "03_intermediate")}
    ok = staged.filter(pc.equal(staged["status"], "ok"))
    assert sorted(json.loads(records["02_stage"].read_text())) == sorted(ok["source_file"].to_pylist())
    assert sorted(json.loads(records["03_intermediate"].read_text())) == sorted(segmented["source_file"].to_pylist())
    gone = ok["source_file"][0].as_py()
    process_batch([f for f in files if f.relative_to(files[0].parents[1]).as_posix() != gone], *settings(out))
    assert gone not in json.loads(records["02_stage"].read_text()) and len(json.loads(records["02_stage"].read_text())) == ok.num_rows - 1
    records["02_stage"].write_text('{"cut": [')  # a job killed mid-write cannot do this (atomic), a disk fault can
    before = mtimes(out / "02_stage/raw_measurements")
    again = process_batch(files, *settings(out))
    assert again[0].equals(staged) and again[1].equals(segmented) and again[2].equals(points)
    after = mtimes(out / "02_stage/raw_measurements")
    assert all(after[path] != mtime for path, mtime in before.items())  # every run staged again from its raw bytes
    assert sorted(json.loads(records["02_stage"].read_text())) == sorted(ok["source_file"].to_pylist())


def truncated(data: bytes) -> bytes:
    return data[:100]


def one_byte_flipped(data: bytes) -> bytes:
    """Same size, other bytes: only the CRC of the bytes read for segmentation tells."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.mark.parametrize("damage", [truncated, one_byte_flipped])
def test_a_damaged_staged_file_is_restaged(tree, tmp_path, damage):
    files, settings = tree
    staged, segmented, points = process_batch(files, *settings(tmp_path / "out"))
    row = next(r for r in staged.to_pylist() if r["status"] == "ok" and r["proc"] == "IV")
    output = Path(row["output"])
    whole = output.read_bytes()
    output.write_bytes(damage(whole))
    again = process_batch(files, *settings(tmp_path / "out"))
    assert output.read_bytes() == whole  # staged again from the raw file, not trusted from the record
    assert again[0].equals(staged) and again[1].equals(segmented) and again[2].equals(points)


def test_a_setting_that_finds_the_same_segments_rewrites_nothing(tree, tmp_path, caplog):
    files, settings = tree
    staged, segmented, points = process_batch(files, *settings(tmp_path / "out"))
    before = mtimes(tmp_path / "out")
    staging, segmentation = settings(tmp_path / "out")
    with caplog.at_level("INFO", logger="nanolab.batch"):
        again = process_batch(files, staging, dataclasses.replace(segmentation, dv_threshold=2e-3))
    assert mtimes(tmp_path / "out") == before
    assert again[0].equals(staged) and again[1].equals(segmented) and again[2].equals(points)
    ok, runs = sum(s == "ok" for s in staged["status"].to_pylist()), segmented.num_rows
    assert f"reused: {ok} of {ok} staged files, the segment files of {runs} of {runs} IV runs" in caplog.text


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_segment_file_is_resegmented(tree, tmp_path, damage):
    files, settings = tree
    staged, segmented, _ = process_batch(files, *settings(tmp_path / "out"))
    row = next(r for r in segmented.to_pylist() if r["n_segments"] == 4)
    target = Path(row["output"]) / "segment=2/part-000.parquet"
    whole = target.read_bytes()
    target.write_bytes(whole[:100]) if damage == "truncate" else target.unlink()
    staged_before = Path(next(r["output"] for r in staged.to_pylist() if r["run_id"] == row["run_id"])).stat().st_mtime_ns
    again_staged, again_segmented, _ = process_batch(files, *settings(tmp_path / "out"))
    assert target.read_bytes() == whole
    assert again_segmented.equals(segmented) and again_staged.equals(staged)
    staged_after = Path(next(r["output"] for r in staged.to_pylist() if r["run_id"] == row["run_id"])).stat().st_mtime_ns
    assert staged_after == staged_before  # only the segments were redone


def test_a_new_segmentation_setting_resegments_from_the_reused_staged_files(tree, tmp_path):
    files, settings = tree
    staged, _, _ = process_batch(files, *settings(tmp_path / "out"))
    staged_before = mtimes(tmp_path / "out/02_stage")
    _, fewer, _ = process_batch(files, *settings(tmp_path / "out", min_points=10_000))
    assert mtimes(tmp_path / "out/02_stage") == staged_before
    assert set(fewer["status"].to_pylist()) == {"no_segments"}
    assert not list((tmp_path / "out/03_intermediate").rglob("*.parquet"))  # stale segments removed


def test_a_batch_job_never_imports_pandas_nor_pyyaml(tree, tmp_path):
    """pyarrow would import pandas (~0.5 s CPU per job) on its first conversion of a Python object; the
    procedure schema reaches the job as the workflow's JSON copy, read without PyYAML (~15 ms)."""
    files, _ = tree
    out = tmp_path / "out"
    copy = schema_copy(read_yaml(SCHEMA_FILE), tmp_path / "schema")
    assert repr(load_schema(copy)) == repr(load_schema(SCHEMA_FILE))  # as in the staging reuse keys
    arguments = ["batch", "--raw-root", str(files[0].parents[1]), "--schema", str(copy), "--timezone", "America/Santiago",
                 "--stage-root", str(out / "02"), "--segment-root", str(out / "03"), "--voltage-column", "vsd_V",
                 "--dv-threshold", "0.001", "--min-segment-points", "5", "--stage-output", str(out / "s.parquet"),
                 "--segment-output", str(out / "g.parquet"), "--points-output", str(out / "p.parquet"), "--", *map(str, files)]  # fmt: skip
    script = "import sys; from nanolab.cli import main; main(sys.argv[1:]); print(*(name in sys.modules for name in ('pandas', 'pyarrow', 'yaml')))"
    result = subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False True False"  # pyarrow in use, no pandas or yaml module
    staged = pq.read_table(out / "s.parquet")
    records = json.loads((out / "03/_records" / out.name / "s.json").read_text())  # one entry per segmented run
    assert staged.num_rows == len(files) and pq.read_table(out / "g.parquet").num_rows == len(records) > 0
