"""Hostile raw trees, mutations, crashes and concurrent runs: results/ always equals a clean run."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from nanolab.synthetic import iv_voltages, make_run, render_raw, write_tree
from workflow_runner import REPO, Workdir

START = 1757516400.0  # 2025-09-10 12:00 in Santiago


def run_text(procedure: str = "IV", start: float = START, seed: int = 1, **options) -> str:
    parameters, columns, data = make_run(procedure, np.random.default_rng(seed), start, chip_number=seed, **options)
    return render_raw(procedure, parameters, start, columns, data)


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def make_workdir(tmp_path: Path, name: str, raw: Path) -> Workdir:
    wd = Workdir(tmp_path / name, raw)
    wd.path.mkdir(parents=True)
    wd.write_config()
    return wd


def result_files(results: Path) -> dict[str, Path]:
    return {p.relative_to(results).as_posix(): p for p in results.rglob("*") if p.is_file()}


def without_build_time(landing_page: Path) -> str:
    return re.sub(r'data-fact="built">[^<]*', "", landing_page.read_text(encoding="utf-8"))


def assert_same_results(ours: Path, clean: Path) -> None:
    """Same files, Parquet data-equal, text byte-equal: what a clean run on the same raw tree makes."""
    mine, theirs = result_files(ours), result_files(clean)
    assert sorted(mine) == sorted(theirs)
    for name, path in mine.items():
        if name.endswith(".parquet"):
            assert pq.read_table(path).equals(pq.read_table(theirs[name])), name
        elif name == "04_report/landing.html":  # it says when it was built
            assert without_build_time(path) == without_build_time(theirs[name]), name
        else:
            assert path.read_bytes() == theirs[name].read_bytes(), name


# --- a hostile raw tree: every case has one manifest row and a defined outcome ----------------


def hostile_tree(raw: Path) -> dict[str, tuple[str, str]]:
    """source_file -> (expected status, fragment of the reason or '' for ok)."""
    good = run_text()
    header, table = good.split("#Data:\n")
    header += "#Data:\n"
    labels, *rows = table.splitlines()
    cases: dict[str, tuple[str, bytes | str, str]] = {
        "empty.csv": ("reject", b"", "empty file"),
        "random.csv": ("reject", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "binary"),
        "._IV2025-09-10_1.csv": ("skipped", b"\x00\x05\x16\x07Mac OS X        \x00\x02", "resource fork"),
        "no_procedure.csv": ("reject", good.replace("#Procedure: <laser_setup.procedures.IV.IV>\n", ""), "#Procedure"),
        "header_only.csv": ("reject", header + labels + "\n", "no data rows"),
        "unknown_procedure.csv": ("reject", good.replace("IV.IV>", "Mystery.Mystery>"), "unknown procedure 'Mystery'"),
        "traversal_procedure.csv": ("reject", good.replace("<laser_setup.procedures.IV.IV>", "../../../escaped"), "unknown procedure"),
        "slash_procedure.csv": ("reject", good.replace("<laser_setup.procedures.IV.IV>", "IV/../../x=y\x07"), "unknown procedure"),
        "ragged.csv": ("ok", header + labels + "\n" + "\n".join(rows[:5] + ["1,2", "x,y,z,w,v", "0.3,abc,1,2,3"] + rows[5:]) + "\n", ""),
        "crlf.csv": ("ok", good.replace("\n", "\r\n"), ""),
        "bom.csv": ("ok", "\ufeff" + good, ""),
        "latin1_label.csv": ("ok", good.replace("Plate T (degC)", "Plate T (°C)").encode("latin-1"), ""),
        "duplicate_labels.csv": ("ok", good.replace("Ambient T (degC)", "I (A)"), ""),
        "cut_last_line.csv": ("ok", header + "\n".join([labels, *rows[:-1], rows[-1][: rows[-1].index(",") + 4]]), ""),
        "aborted.csv": ("ok", run_text(voltages=iv_voltages(1.0, 0.05, abort_after=50), seed=2), ""),
        "name with spaces 'quotes' $(touch pwned); rm -rf x.csv": ("ok", run_text(seed=3), ""),
        "-leading-dash.csv": ("ok", run_text(seed=4), ""),
        "ñandú_µA_测量.csv": ("ok", run_text(seed=5), ""),
    }
    expected = {}
    for name, (status, content, reason) in cases.items():
        write(raw / "2025-09-10" / name, content)
        expected[f"2025-09-10/{name}"] = (status, reason)
    (raw / "2025-09-10/loop_a.csv").symlink_to("loop_b.csv")
    (raw / "2025-09-10/loop_b.csv").symlink_to("loop_a.csv")
    expected["2025-09-10/loop_a.csv"] = expected["2025-09-10/loop_b.csv"] = ("reject", "unreadable")
    write(raw.parent / "outside/secret.csv", good)
    (raw / "2025-09-10/outside_link.csv").symlink_to(raw.parent / "outside/secret.csv")
    expected["2025-09-10/outside_link.csv"] = ("reject", "outside raw_root")
    (raw / "2025-09-10/linked_folder").symlink_to(raw.parent / "outside", target_is_directory=True)  # not followed
    return expected


def test_hostile_tree_every_file_has_one_row_and_nothing_escapes(tmp_path):
    raw = tmp_path / "raw"
    expected = hostile_tree(raw)
    wd = make_workdir(tmp_path, "work", raw)
    before = {p for p in tmp_path.rglob("*")}
    result = wd.snakemake()
    assert "rejects listed in results/02_stage/_manifest/rejects.csv" in result.stdout
    manifest = {row["source_file"]: row for row in pq.read_table(wd.results / "02_stage/_manifest/manifest.parquet").to_pylist()}
    assert sorted(manifest) == sorted(expected)
    for source, (status, reason) in expected.items():
        assert manifest[source]["status"] == status, (source, manifest[source]["reason"])
        assert reason in (manifest[source]["reason"] or ""), (source, manifest[source]["reason"])
    ragged = manifest["2025-09-10/ragged.csv"]
    assert (ragged["skipped_rows"], ragged["null_cells"]) == (1, 6)  # "1,2" skipped; "x,y,z,w,v" and "abc" null
    ragged_lines = (raw / "2025-09-10/ragged.csv").read_text().splitlines()
    assert [ragged_lines[n - 1] for n in ragged["skipped_lines"]] == ["1,2"]
    assert [ragged_lines[n - 1] for n in ragged["null_lines"]] == ["x,y,z,w,v", "0.3,abc,1,2,3"]
    assert "2025-09-10/ragged.csv (1 skipped rows at line " in result.stdout and "skipped_lines and null_lines" in result.stdout
    cut = manifest["2025-09-10/cut_last_line.csv"]
    assert (cut["rows"], cut["skipped_rows"]) == (manifest["2025-09-10/crlf.csv"]["rows"] - 1, 1)
    latin = pq.read_table(wd.path / manifest["2025-09-10/latin1_label.csv"]["output"])
    assert "plate_t_degC" in latin.column_names
    dup = pq.read_table(wd.path / manifest["2025-09-10/duplicate_labels.csv"]["output"])
    assert {"i_A", "i_A_2"} <= set(dup.column_names)
    created = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in created if not p.is_relative_to(wd.path / "results") and not p.is_relative_to(wd.path / "logs")
               and not p.is_relative_to(wd.path / ".snakemake")]  # fmt: skip
    assert outside == []
    assert not list(tmp_path.rglob("pwned")) and not list(REPO.rglob("pwned"))
    segments = {row["source_file"]: row for row in pq.read_table(wd.results / "03_intermediate/_manifest/manifest.parquet").to_pylist()}
    assert segments["2025-09-10/aborted.csv"]["segment_types"] == ["forward_positive", "return_positive", "forward_negative"]
    assert wd.planned_jobs() == {}


def without_root_reads(probe: Path) -> tuple[str, ...]:
    """A command prefix under which `probe` (mode 000) cannot be read: none for a user; as root (CI), setpriv
    dropping the capabilities that let root read any file, or a skip saying why that is not possible here."""
    if os.geteuid() != 0:
        return ()
    prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    try:
        denied = subprocess.run([*prefix, sys.executable, "-c", f"open({str(probe)!r}, 'rb')"], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("running as root without setpriv (util-linux): root reads files whatever their permissions")
    if "PermissionError" not in denied.stderr:
        pytest.skip(f"running as root and setpriv cannot drop the read capabilities here: {denied.stderr.strip()[-200:]}")
    return prefix


def test_permission_denied_is_a_reject(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "2025-09-10/locked.csv", run_text())
    (raw / "2025-09-10/locked.csv").chmod(0)
    wd = make_workdir(tmp_path, "work", raw)
    wd.snakemake(prefix=without_root_reads(raw / "2025-09-10/locked.csv"))
    [row] = pq.read_table(wd.results / "02_stage/_manifest/manifest.parquet").to_pylist()
    assert row["status"] == "reject" and "unreadable" in row["reason"]


def test_a_200_mb_file_is_staged_in_bounded_memory(tmp_path):
    """Measured: 420 MB peak for a 212 MB file (whole-file reading peaked at 1.1 GB)."""
    raw = tmp_path / "raw"
    good = run_text()
    header = good.split("#Data:\n")[0] + "#Data:\nVsd (V),I (A),Plate T (degC),Ambient T (degC),Clock (ms)\n"
    block = "\n".join(",".join(map(repr, row)) for row in np.random.default_rng(0).random((100_000, 5)).tolist()) + "\n"
    path = raw / "2025-09-10/IV_big.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w") as handle:
        handle.write(header)
        for _ in range(22):
            handle.write(block)
    assert path.stat().st_size > 200e6
    command = [sys.executable, "-m", "nanolab", "stage", "--raw-root", str(raw), "--out-root", str(tmp_path / "out"),
               "--schema", str(REPO / "workflow/schemas/procedures.yaml"), "--timezone", "UTC",
               "--output", str(tmp_path / "m.parquet"), "--", str(path)]  # fmt: skip
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    assert status == 0
    assert usage.ru_maxrss < 700_000  # KB: streaming in 8 MB blocks, not the whole file (>1.1 GB)
    [row] = pq.read_table(tmp_path / "m.parquet").to_pylist()
    assert row["status"] == "ok" and row["rows"] == 2_200_000


# --- mutations, crashes, concurrent runs --------------------------------------------------------


def test_results_follow_the_raw_tree_through_deletes_moves_edits_and_additions(tmp_path):
    raw = tmp_path / "raw"
    write_tree(raw, start_date="2025-09-01", days=3, iv_per_day=3, ivg_per_day=1, it_per_day=1, seed=4, iv_step=0.05)
    wd = make_workdir(tmp_path, "work", raw)
    wd.snakemake()
    (raw / "2025-09-01/IV2025-09-01_1.csv").unlink()
    shutil.rmtree(raw / "2025-09-03")  # a whole day disappears
    moved = raw / "2025-09-02/IV2025-09-02_2.csv"
    text = moved.read_text()
    old_start = text.split("Start time: ")[1].split("\n")[0]
    moved.write_text(text.replace(f"Start time: {old_start}", f"Start time: {float(old_start) - 86400 * 5}"))
    edited = raw / "2025-09-02/It2025-09-02_1.csv"
    edited.write_text(edited.read_text().replace("\n0.5,", "\n0.5000001,", 1))
    write(raw / "2025-09-09/IV2025-09-09_1.csv", run_text(start=START - 86400))
    wd.snakemake()
    clean = make_workdir(tmp_path, "clean", raw)
    clean.snakemake()
    assert_same_results(wd.results, clean.results)
    assert not (wd.results / "02_stage/raw_measurements/proc=IV/date=2025-09-03").exists()


def start_in_background(wd: Workdir) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(wd.path), "--cores", "2"]
    return subprocess.Popen(command, env=env, cwd=wd.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.fixture
def busy_tree(tmp_path) -> Path:
    raw = tmp_path / "raw"
    write_tree(raw, start_date="2025-09-01", days=6, iv_per_day=40, ivg_per_day=2, it_per_day=2, seed=5)
    return raw


def test_sigkill_mid_run_then_unlock_and_rerun_equals_a_clean_run(tmp_path, busy_tree):
    wd = make_workdir(tmp_path, "work", busy_tree)
    process = start_in_background(wd)
    wait_for(lambda: any((wd.results / "03_intermediate/iv_segments").rglob("*.parquet")))
    os.killpg(process.pid, signal.SIGKILL)  # snakemake and its running jobs, mid-write
    process.wait()
    assert wd.snakemake(check=False).returncode != 0  # the stale lock is reported, nothing is touched
    wd.snakemake("--unlock")
    wd.snakemake()
    assert not [p for p in wd.results.rglob("*") if p.name.endswith(".tmp")]
    clean = make_workdir(tmp_path, "clean", busy_tree)
    clean.snakemake()
    assert_same_results(wd.results, clean.results)


def test_a_second_snakemake_on_the_same_results_is_refused(tmp_path, busy_tree):
    wd = make_workdir(tmp_path, "work", busy_tree)
    first = start_in_background(wd)
    wait_for(lambda: (wd.path / ".snakemake/locks").is_dir() and any((wd.path / ".snakemake/locks").iterdir()))
    second = wd.snakemake(check=False)
    assert second.returncode != 0 and "LockException" in second.stderr
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output
    clean = make_workdir(tmp_path, "clean", busy_tree)
    clean.snakemake()
    assert_same_results(wd.results, clean.results)
