"""Derived data that goes missing or corrupt is found before the run is planned and rebuilt; the
manifests and the summary never claim what is not on disk; a full disk and a raw file still being
written are survived; the raw tree is never touched."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nanolab import integrity
from nanolab.manifest import summarize
from nanolab.synthetic import iv_voltages, make_run, render_raw
from pymeasure_raw import write_iv_with_pymeasure
from test_robustness import assert_same_results, make_workdir
from workflow_runner import JOB_STATS, REPO, Workdir, downstream_of_batches

NOON = {"2025-09-10": 1757516400.0, "2025-09-11": 1757602800.0}
STAGED = "02_stage/raw_measurements"
SEGMENTS = "03_intermediate/iv_segments/proc=IV"


# --- unit: the checks themselves ----------------------------------------------------------------


def png_bytes() -> bytes:
    """A 1x1 grey PNG, built by hand: signature, IHDR, IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")


def test_find_damage_names_missing_and_resized_files_only(tmp_path):
    whole, short = tmp_path / "whole.parquet", tmp_path / "short.parquet"
    whole.write_bytes(b"x" * 300)
    short.write_bytes(b"x" * 100)
    expected = [
        integrity.Expected(str(whole), 300),
        integrity.Expected(str(short), 300),
        integrity.Expected(str(tmp_path / "gone.parquet"), 50),
        integrity.Expected(str(whole), None),  # no size recorded: presence only
    ]
    damage = integrity.find_damage(expected)
    assert [(d.path, d.expected, d.found) for d in damage] == [(str(short), 300, 100), (str(tmp_path / "gone.parquet"), 50, None)]
    assert damage[0].describe().endswith("(100 bytes, written as 300)") and damage[1].describe().endswith("(missing)")


def test_listed_outputs_of_stage_and_segment_manifests():
    stage = {"output": ["a.parquet", None, "c.parquet"], "status": ["ok", "reject", "ok"], "output_bytes": [10, None, 30]}
    assert integrity.stage_outputs(stage) == [integrity.Expected("a.parquet", 10), integrity.Expected("c.parquet", 30)]
    segment = {"output": ["r1", None, "r3"], "status": ["ok", "no_segments", "ok"], "n_segments": [2, 0, 1], "segment_bytes": [[5, 6], [], [7]]}
    assert integrity.segment_outputs(segment) == [
        integrity.Expected("r1/segment=0/part-000.parquet", 5),
        integrity.Expected("r1/segment=1/part-000.parquet", 6),
        integrity.Expected("r3/segment=0/part-000.parquet", 7),
    ]
    old = {"output": ["r1"], "status": ["ok"], "n_segments": [2]}  # written before sizes were recorded
    assert integrity.segment_outputs(old) == [
        integrity.Expected("r1/segment=0/part-000.parquet", None),
        integrity.Expected("r1/segment=1/part-000.parquet", None),
    ]


@pytest.mark.parametrize("keep", [lambda n: 0, lambda n: 4, lambda n: 8, lambda n: n // 2, lambda n: n - 1], ids=["0", "4", "8", "half", "one-short"])
def test_truncated_parquet_and_png_are_not_whole(tmp_path, keep):
    parquet = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": list(range(1000))}), parquet)
    png = tmp_path / "t.png"
    png.write_bytes(png_bytes())
    assert integrity.parquet_is_whole(parquet) and integrity.png_is_whole(png)
    for path, check in ((parquet, integrity.parquet_is_whole), (png, integrity.png_is_whole)):
        data = path.read_bytes()
        path.write_bytes(data[: keep(len(data))])
        assert not check(path), (path.name, keep(len(data)))


def test_a_truncated_batch_manifest_is_damage(tmp_path):
    manifest = tmp_path / "batch=1-of-1.parquet"
    pq.write_table(pa.table({"output": [str(tmp_path / "x")], "status": ["ok"], "output_bytes": [1]}), manifest)
    (tmp_path / "x").write_bytes(b"1")
    assert integrity.check_batch_manifest(str(manifest), "stage") == []
    manifest.write_bytes(manifest.read_bytes()[:100])
    [damage] = integrity.check_batch_manifest(str(manifest), "stage")
    assert damage.path == str(manifest) and damage.found == 100 and "unreadable" in damage.describe()
    assert integrity.check_batch_manifest(str(tmp_path / "absent.parquet"), "stage") == []  # nothing listed (common.smk: the merged manifests' job)


def test_listings_are_cached_by_manifest_size_and_mtime(tmp_path, monkeypatch):
    manifest, index, out = tmp_path / "batch.parquet", tmp_path / "index.json", tmp_path / "out.parquet"
    out.write_bytes(b"x" * 10)
    pq.write_table(pa.table({"output": [str(out)], "status": ["ok"], "output_bytes": [10]}), manifest)
    assert integrity.check_batch_manifests({str(manifest): "stage"}, index) == {str(manifest): []}
    real = integrity.listed_outputs
    monkeypatch.setattr(integrity, "listed_outputs", lambda *a: pytest.fail("read a manifest whose listing is cached"))
    out.write_bytes(b"x" * 3)
    [damage] = integrity.check_batch_manifests({str(manifest): "stage"}, index)[str(manifest)]
    assert (damage.path, damage.expected, damage.found) == (str(out), 10, 3)  # the outputs are still stat'ed
    monkeypatch.setattr(integrity, "listed_outputs", real)
    pq.write_table(pa.table({"output": [str(out)], "status": ["ok"], "output_bytes": [3]}), manifest)  # rewritten by its job
    assert integrity.check_batch_manifests({str(manifest): "stage"}, index) == {str(manifest): []}


def test_check_file_is_old_when_whole_and_new_and_distinct_when_damaged(tmp_path):
    check = tmp_path / "checks/a.parquet.txt"
    integrity.write_check(check, [])
    assert check.read_text() == "whole\n" and check.stat().st_mtime_ns == 0
    damage = [integrity.Damage("results/x.parquet", 10, None)]
    integrity.write_check(check, damage)
    first = check.read_text()
    assert "results/x.parquet (missing)" in first and check.stat().st_mtime > time.time() - 60
    integrity.write_check(check, damage)
    assert check.read_text() != first  # Snakemake skips an mtime-newer input whose checksum it has seen
    integrity.write_check(check, [])
    assert check.read_text() == "whole\n" and check.stat().st_mtime_ns == 0


def test_declared_outputs_checked_by_tail_and_recorded_size(tmp_path):
    parquet, png, text = tmp_path / "m.parquet", tmp_path / "f.png", tmp_path / "summary.txt"
    pq.write_table(pa.table({"x": [1, 2, 3]}), parquet)
    png.write_bytes(png_bytes())
    text.write_text("twelve bytes")
    flagged = tmp_path / "flagged"
    flagged.mkdir()
    (flagged / "run.png").write_bytes(png_bytes())
    paths = [str(parquet), str(png), str(text), str(flagged), str(tmp_path / "missing.csv")]
    sizes = {str(text): 12}
    assert integrity.check_declared(paths, sizes) == []
    for path in (parquet, png, text, flagged / "run.png"):
        path.write_bytes(path.read_bytes()[:5])
    assert sorted(d.path for d in integrity.check_declared(paths, sizes)) == sorted(str(p) for p in (parquet, png, text, flagged / "run.png"))


def test_summary_counts_damaged_staged_files_and_names_five():
    names = [f"2025-09-10/IV_{n}.csv" for n in range(8)]
    skipped = [0, 2, 0, 1, 0, 0, 3, 1]
    nulls = [0, 0, 4, 0, 0, 1, 0, 1]
    stage = pa.table(
        {
            "source_file": names + ["bad.csv"],
            "status": ["ok"] * 8 + ["reject"],
            "proc": ["IV"] * 8 + [None],
            "skipped_rows": skipped + [5],  # a reject's counts are not staged damage
            "null_cells": nulls + [None],
        }
    )
    segments = pa.table({"status": pa.array([], pa.string()), "n_segments": pa.array([], pa.int64()), "complete": pa.array([], pa.bool_())})
    text = summarize(stage, segments, "rejects.csv")
    damaged = [n for n, s, c in zip(names, skipped, nulls) if s or c]  # 6 files
    [line] = [line for line in text.splitlines() if "staged with damage" in line]
    assert f"{len(damaged)} files ({sum(skipped)} skipped rows, {sum(nulls)} null cells)" in line
    assert [n for n in damaged if n in line] == damaged[:5] and "and 1 more" in line
    assert "IV_0.csv" not in line and "bad.csv" not in line


def test_summary_shows_the_first_damaged_lines_and_points_to_the_manifest():
    stage = pa.table(
        {
            "source_file": ["a.csv", "b.csv"],
            "status": ["ok", "ok"],
            "proc": ["IV", "IV"],
            "skipped_rows": [1, 0],
            "null_cells": [3, 2],
            "skipped_lines": [[29], []],
            "null_lines": [[30, 31], [40]],
        }
    )
    segments = pa.table({"status": pa.array([], pa.string()), "n_segments": pa.array([], pa.int64()), "complete": pa.array([], pa.bool_())})
    [line] = [line for line in summarize(stage, segments, "rejects.csv").splitlines() if "staged with damage" in line]
    assert "a.csv (1 skipped rows at line 29, 3 null cells at lines 30, 31), b.csv (0 skipped rows, 2 null cells at line 40)" in line
    assert line.endswith("in the stage manifest's skipped_lines and null_lines")


def test_summary_names_files_with_header_values_not_of_their_type_only_when_there_are_some():
    segments = pa.table({"status": pa.array([], pa.string()), "n_segments": pa.array([], pa.int64()), "complete": pa.array([], pa.bool_())})
    stage = pa.table(
        {
            "source_file": ["a.csv", "b.csv", "c.csv"],
            "status": ["ok", "ok", "reject"],
            "proc": ["IV", "IV", None],
            "skipped_rows": [0, 0, None],
            "null_cells": [0, 0, None],
            "invalid_parameters": [["Chip number", "NPLC"], [], None],
        }
    )
    text = summarize(stage, segments, "rejects.csv")
    assert "  header values not of their type, stored as null: 1 file: a.csv (Chip number, NPLC)\n" in text
    clean = stage.set_column(5, "invalid_parameters", pa.array([[], [], None], pa.list_(pa.string())))
    assert "header values" not in summarize(clean, segments, "rejects.csv")


# --- end to end: damage of every kind is rebuilt to equal a clean run --------------------------


def write_iv(path: Path, start: float, voltages: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_iv_with_pymeasure(path, voltages, start)


def pymeasure_tree(raw: Path) -> None:
    """Two days of PyMeasure-written IV runs (one aborted: a flagged run) and an It run."""
    for day, noon in NOON.items():
        for n in range(3):
            write_iv(raw / day / f"IV{day}_{n + 1}.csv", noon + 600 * n, iv_voltages(1.0, 0.05))
        parameters, columns, data = make_run("It", np.random.default_rng(7), noon + 3000, chip_number=7)
        (raw / day / f"It{day}_1.csv").write_text(render_raw("It", parameters, noon + 3000, columns, data))
    write_iv(raw / "2025-09-11/IV2025-09-11_aborted.csv", NOON["2025-09-11"] + 2400, iv_voltages(1.0, 0.05, abort_after=50))


def raw_state(raw: Path) -> dict[str, tuple]:
    """Every path below raw_root with its content hash, size and mtime (folders: mtime only)."""
    state = {}
    for path in sorted(raw.rglob("*")):
        stat = path.lstat()
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        state[path.relative_to(raw).as_posix()] = (content, stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return state


def plan(wd: Workdir) -> tuple[dict[str, int], list[str], str]:
    """`snakemake -n`: {rule: jobs}, nanolab's damage lines, the whole output."""
    result = wd.snakemake("-n")
    output = result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("nanolab: rerunning")]
    if "Nothing to be done" in output:
        return {}, lines, output
    match = JOB_STATS.search(output)
    assert match, output
    return {rule: int(n) for rule, n in (line.split() for line in match["rows"].splitlines())}, lines, output


def run_and_compare(wd: Workdir, clean: Workdir, raw_before: dict) -> None:
    """Run, then: equal to the clean run, nothing left to do, raw tree untouched."""
    wd.snakemake()
    assert_same_results(wd.results, clean.results)
    assert plan(wd)[0] == {}
    assert raw_state(wd.raw_root) == raw_before


def truncate(path: Path, size: int = 100) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)


def staged_files(wd: Workdir, day: str) -> list[Path]:
    return sorted((wd.results / STAGED / "proc=IV" / f"date={day}").rglob("part-000.parquet"))


def test_damage_of_every_kind_is_found_before_the_run_and_rebuilt(tmp_path):
    raw = tmp_path / "raw"
    pymeasure_tree(raw)
    wd, clean = make_workdir(tmp_path, "work", raw), make_workdir(tmp_path, "clean", raw)
    raw_before = raw_state(raw)
    wd.snakemake()
    assert raw_state(raw) == raw_before
    clean.snakemake()
    assert_same_results(wd.results, clean.results)
    index = wd.path / ".snakemake/nanolab/checks/listed_outputs.json"
    manifests = [*wd.results.glob("0[234]_*/_batches/**/*.parquet")]
    assert (
        sorted(json.loads(index.read_text())) == sorted(p.relative_to(wd.path).as_posix() for p in manifests) and len(manifests) == 6
    )  # with the lab analysis manifest
    indexed_at = index.stat().st_mtime_ns
    no_op = wd.snakemake()  # a no-op run prints the summary after "Nothing to be done"
    assert "Nothing to be done" in no_op.stderr and "nanolab: 9 raw files: 9 staged" in no_op.stdout
    assert index.stat().st_mtime_ns == indexed_at  # the run left it up to date: the no-op read no manifest
    assert raw_state(raw) == raw_before

    # 1. the case: a day of staged runs deleted, and one run's segment folder on the other day
    shutil.rmtree(wd.results / STAGED / "proc=IV/date=2025-09-11")
    [run_folder, *_] = sorted((wd.results / SEGMENTS / "date=2025-09-10").iterdir())
    shutil.rmtree(run_folder)
    deleted_figure = wd.results / "04_report/iv_days/month=2025-09/date=2025-09-10.png"
    deleted_figure.unlink()
    jobs, lines, output = plan(wd)
    assert jobs == downstream_of_batches(2)
    assert "Updated input files: .snakemake/nanolab/checks/results/02_stage/_batches/date=2025-09-11/batch=1-of-1.parquet.txt" in output
    assert "Updated input files: .snakemake/nanolab/checks/results/03_intermediate/_batches/date=2025-09-10/batch=1-of-1.parquet.txt" in output
    stage_line = next(line for line in lines if "02_stage/_batches/date=2025-09-11" in line)
    assert "4 damaged outputs" in stage_line and "proc=IV/date=2025-09-11/run_id=" in stage_line and "(missing)" in stage_line
    segment_line = next(line for line in lines if "03_intermediate/_batches/date=2025-09-10" in line)
    assert f"{run_folder.relative_to(wd.path).as_posix()}/segment=0/part-000.parquet (missing)" in segment_line
    assert f"{deleted_figure.relative_to(wd.path).as_posix()} (missing)" in output
    assert plan(wd)[:2] == (jobs, lines)  # a second dry run shows the same
    run_and_compare(wd, clean, raw_before)

    # 2. truncated in place: a segment file, a batch manifest of each kind, the merged manifest,
    #    the summary, a day's analysis table and a day's figure
    segment_file = sorted((wd.results / SEGMENTS / "date=2025-09-10").rglob("part-000.parquet"))[0]
    truncate(segment_file)
    truncate(wd.results / "02_stage/_batches/date=2025-09-10/batch=1-of-1.parquet")
    truncate(wd.results / "03_intermediate/_batches/date=2025-09-11/batch=1-of-1.parquet")
    truncate(wd.results / "02_stage/_manifest/manifest.parquet")
    truncate(wd.results / "summary.txt", 20)
    figure = wd.results / "04_report/iv_days/month=2025-09/date=2025-09-11.png"
    truncate(figure, 1000)
    analysis_table = wd.results / "04_analysis/hysteresis/date=2025-09-10/part-000.parquet"
    truncate(analysis_table, 100)
    jobs, lines, output = plan(wd)
    assert jobs == downstream_of_batches(2)
    assert f"{segment_file.relative_to(wd.path).as_posix()} (100 bytes, written as" in output
    assert "results/02_stage/_batches/date=2025-09-10/batch=1-of-1.parquet (100 bytes, unreadable" in output
    assert "results/summary.txt (20 bytes, written as" in output and "results/02_stage/_manifest/manifest.parquet (100 bytes" in output
    assert f"{figure.relative_to(wd.path).as_posix()} (1000 bytes, not a whole PNG image)" in output
    assert f"{analysis_table.relative_to(wd.path).as_posix()} (100 bytes, written as" in output
    assert len(lines) == 6  # a stage batch, two segment batches, the manifests job, the month's analysis and figures
    run_and_compare(wd, clean, raw_before)

    # 3. a staged file truncated, then its day re-run because another of its files changed: the
    #    truncated file must not be reused on the strength of its record (the last case);
    #    and a raw file deleted on the other day: its outputs are pruned, the raw tree is not touched
    truncated = staged_files(wd, "2025-09-10")[0]
    truncate(truncated)
    edited = raw / "2025-09-10/IV2025-09-10_3.csv"
    text = edited.read_text()
    assert "\n0.05," in text
    edited.write_text(text.replace("\n0.05,", "\n0.0500001,", 1))
    manifest = pq.read_table(wd.results / "02_stage/_manifest/manifest.parquet").to_pylist()
    [gone] = [Path(r["output"]).parent for r in manifest if r["source_file"] == "2025-09-11/IV2025-09-11_1.csv"]
    (raw / "2025-09-11/IV2025-09-11_1.csv").unlink()
    raw_before = raw_state(raw)
    jobs, lines, _ = plan(wd)
    assert jobs["stage_batch"] == 2 and f"{truncated.relative_to(wd.path).as_posix()} (100 bytes" in lines[0]
    clean = make_workdir(tmp_path, "clean-changed", raw)
    clean.snakemake()
    run_and_compare(wd, clean, raw_before)
    assert not (wd.path / gone).exists()

    # 4. a batch job's declared outputs deleted (as Snakemake removes them when the job fails): alone,
    #    Snakemake rebuilds a missing intermediate file only for a job that runs anyway, and said
    #    "Nothing to be done" behind the up-to-date merged manifests
    (wd.results / "02_stage/_batches/date=2025-09-10/batch=1-of-1.parquet").unlink()
    (wd.results / "03_intermediate/_points/date=2025-09-11/batch=1-of-1.parquet").unlink()
    jobs, lines, _ = plan(wd)
    assert jobs == downstream_of_batches(2)
    [line] = lines
    assert "rerunning the job of results/02_stage/_manifest/manifest.parquet: 2 damaged outputs" in line
    assert "results/02_stage/_batches/date=2025-09-10/batch=1-of-1.parquet (missing)" in line
    assert "results/03_intermediate/_points/date=2025-09-11/batch=1-of-1.parquet (missing)" in line
    run_and_compare(wd, clean, raw_before)


def test_a_reuse_record_is_not_trusted_for_a_damaged_output(tmp_path):
    """Without the check before the run: the batch's jobs run again by hand, their reuse records
    still match the raw bytes and settings, but the outputs they vouch for are truncated."""
    raw = tmp_path / "raw"
    pymeasure_tree(raw)
    wd, clean = make_workdir(tmp_path, "work", raw), make_workdir(tmp_path, "clean", raw)
    wd.snakemake()
    clean.snakemake()
    truncate(staged_files(wd, "2025-09-10")[0])
    truncate(sorted((wd.results / SEGMENTS / "date=2025-09-10").rglob("part-000.parquet"))[-1])
    batch = "date=2025-09-10/batch=1-of-1.parquet"
    args = (wd.path / ".snakemake/nanolab/args/stage_batch").glob("2025-09-10_*.args")
    code = next(iter(args)).read_text().split("--code\n")[1].splitlines()[0]  # the code fingerprints the workflow gave the job
    for command in (
        ["stage", "--raw-root", str(raw), "--out-root", "results/02_stage", "--schema", str(REPO / "workflow/schemas/procedures.yaml"),
         "--timezone", "America/Santiago", "--output", f"results/02_stage/_batches/{batch}", "--code", code,
         "--", *sorted(map(str, (raw / "2025-09-10").iterdir()))],
        ["segment", "--stage-manifest", f"results/02_stage/_batches/{batch}", "--out-root", "results/03_intermediate", "--voltage-column", "vsd_V",
         "--dv-threshold", "0.001", "--min-segment-points", "5", "--output", f"results/03_intermediate/_batches/{batch}", "--code", code],
    ):  # fmt: skip
        subprocess.run([sys.executable, "-m", "nanolab", *command], cwd=wd.path, check=True, capture_output=True)
    assert_same_results(wd.results, clean.results)


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_results(tmp_path):
    """results/ on a 300 KB tmpfs, so the run fills it; the test grows it afterwards."""
    work = tmp_path / "work"
    mount_point = work / "results"
    mount_point.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_disk_fails_readably_leaves_nothing_half_written_and_the_rerun_equals_a_clean_run(tmp_path, small_results):
    raw = tmp_path / "raw"
    pymeasure_tree(raw)
    for n in range(4, 10):  # enough output to overflow 300 KB
        write_iv(raw / f"2025-09-10/IV2025-09-10_{n}.csv", NOON["2025-09-10"] + 600 * n, iv_voltages(1.0, 0.01))
    raw_before = raw_state(raw)
    wd = Workdir(tmp_path / "work", raw)
    wd.write_config()
    failed = wd.snakemake(check=False)
    assert failed.returncode != 0
    assert "Error in rule" in failed.stderr
    logs = "".join(p.read_text() for p in (wd.path / "logs").rglob("*.log"))
    assert "No space left on device" in logs
    for path in wd.results.rglob("*"):  # temporary files are hidden (`.name.tmp`); .nanolab is the tree record
        assert not (path.name.startswith(".") and path.name != ".nanolab" and ".nanolab" not in path.parts), f"half-written file left behind: {path}"
        if path.suffix == ".parquet":
            pq.read_metadata(path)  # every visible Parquet file is whole
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_results)], check=True)
    wd.snakemake()
    clean = make_workdir(tmp_path, "clean", raw)
    clean.snakemake()
    assert_same_results(wd.results, clean.results)
    assert raw_state(raw) == raw_before


# --- a raw file still being written by the acquisition PC ---------------------------------------


def data_rows(path: Path) -> int:
    lines = path.read_text().splitlines()
    return len(lines) - lines.index("#Data:") - 2  # after the label row


def test_a_raw_file_appended_during_the_run_is_restaged_by_the_next_run(tmp_path):
    raw = tmp_path / "raw"
    pymeasure_tree(raw)
    growing = raw / "2025-09-11/IV2025-09-11_growing.csv"
    write_iv(growing, NOON["2025-09-11"] + 3600, iv_voltages(1.0, 0.05)[:30])
    row = growing.read_text().splitlines()[-1]
    wd = make_workdir(tmp_path, "work", raw)
    stop = threading.Event()

    def acquire() -> None:  # the acquisition PC: one whole line at a time, flushed, every 20 ms
        with open(growing, "a") as handle:
            while not stop.is_set():
                handle.write(row + "\n")
                handle.flush()
                time.sleep(0.02)

    writer = threading.Thread(target=acquire)
    writer.start()
    try:
        wd.snakemake()
    finally:
        stop.set()
        writer.join()
    final_rows = data_rows(growing)
    manifest = {r["source_file"]: r for r in pq.read_table(wd.results / "02_stage/_manifest/manifest.parquet").to_pylist()}
    staged = manifest["2025-09-11/IV2025-09-11_growing.csv"]
    assert staged["status"] == "ok" and 30 <= staged["rows"] < final_rows  # what it read, mid-acquisition
    assert pq.read_metadata(wd.path / staged["output"]).num_rows == staged["rows"]
    jobs, _, _ = plan(wd)
    assert jobs.get("stage_batch") == 1  # the next run notices the change
    wd.snakemake()
    manifest = {r["source_file"]: r for r in pq.read_table(wd.results / "02_stage/_manifest/manifest.parquet").to_pylist()}
    assert manifest["2025-09-11/IV2025-09-11_growing.csv"]["rows"] == final_rows
    clean = make_workdir(tmp_path, "clean", raw)
    clean.snakemake()
    assert_same_results(wd.results, clean.results)
