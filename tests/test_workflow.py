"""The real `snakemake` on temporary raw trees: outputs, manifests, partial re-runs, config errors."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import SCHEMA_FILE
from nanolab.pipeline import run_in_process
from nanolab.read import load_runs, load_segments
from nanolab.synthetic import iv_voltages, make_run, render_raw
from pymeasure_raw import write_iv_with_pymeasure
from workflow_runner import Workdir, downstream_of_batches

SANTIAGO_NOON = {"2025-09-10": 1757516400.0, "2025-09-11": 1757602800.0, "2025-09-12": 1757689200.0}
AWKWARD_NAME = "IV run 'a' $(touch pwned); b & -x.csv"


def write_run(path: Path, procedure: str, start: float, seed: int, **options) -> Path:
    parameters, columns, data = make_run(procedure, np.random.default_rng(seed), start, chip_number=seed, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_raw(procedure, parameters, start, columns, data))
    return path


def write_iv(path: Path, start: float, voltages: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_iv_with_pymeasure(path, voltages, start)


def build_raw_tree(raw: Path) -> dict[str, int]:
    """Three days of IV/IVg/It, an aborted and a negative-first sweep, a broken file, an awkward name.
    Returns the IV runs' expected segment counts, known by construction."""
    day1, day2, day3 = (raw / day for day in SANTIAGO_NOON)
    t1, t2, t3 = SANTIAGO_NOON.values()
    full = iv_voltages(1.0, 0.05)
    expected = {}
    for n in range(3):
        write_iv(day1 / f"IV2025-09-10_{n + 1}.csv", t1 + 600 * n, full)
        expected[f"2025-09-10/IV2025-09-10_{n + 1}.csv"] = 4
    write_run(day1 / "IVg2025-09-10_1.csv", "IVg", t1 + 3000, seed=1)
    write_run(day1 / "It2025-09-10_1.csv", "It", t1 + 3600, seed=2)
    write_iv(day2 / "IV2025-09-11_1.csv", t2, full)
    expected["2025-09-11/IV2025-09-11_1.csv"] = 4
    aborted = iv_voltages(1.0, 0.05, abort_after=50)  # 20 up, 20 down, 10 into forward_negative
    write_iv(day2 / "IV2025-09-11_2.csv", t2 + 600, aborted)
    expected["2025-09-11/IV2025-09-11_2.csv"] = 3
    (day2 / "broken.csv").write_text("this is not a measurement\n1,2,3\n")
    write_iv(day3 / "IV2025-09-12_1.csv", t3, iv_voltages(1.0, 0.05, start_negative=True))
    expected["2025-09-12/IV2025-09-12_1.csv"] = 4
    write_iv(day3 / AWKWARD_NAME, t3 + 600, full)
    expected[f"2025-09-12/{AWKWARD_NAME}"] = 4
    write_run(day3 / "It2025-09-12_1.csv", "It", t3 + 1200, seed=3)
    (day3 / "._IV2025-09-12_1.csv").write_bytes(b"\x00\x05\x16\x07 resource fork")
    return expected


@pytest.fixture
def workdir(tmp_path: Path) -> Workdir:
    wd = Workdir(tmp_path / "work", tmp_path / "raw")
    wd.path.mkdir()
    wd.expected_segments = build_raw_tree(wd.raw_root)
    wd.write_config()
    return wd


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Workdir, object]:
    """One full run shared by the read-only tests."""
    tmp_path = tmp_path_factory.mktemp("finished")
    wd = Workdir(tmp_path / "work", tmp_path / "raw")
    wd.path.mkdir()
    wd.expected_segments = build_raw_tree(wd.raw_root)
    wd.write_config()
    return wd, wd.snakemake()


def stage_manifest(wd: Workdir):
    return pq.read_table(wd.results / "02_stage/_manifest/manifest.parquet")


def segment_manifest(wd: Workdir):
    return pq.read_table(wd.results / "03_intermediate/_manifest/manifest.parquet")


def test_every_raw_file_has_exactly_one_manifest_row(finished):
    wd, _ = finished
    manifest = stage_manifest(wd)
    found = sorted(p.relative_to(wd.raw_root).as_posix() for p in wd.raw_root.rglob("*.csv"))
    assert sorted(manifest["source_file"].to_pylist()) == found
    status = dict(zip(manifest["source_file"].to_pylist(), manifest["status"].to_pylist()))
    assert status.pop("2025-09-11/broken.csv") == "reject"
    assert status.pop("2025-09-12/._IV2025-09-12_1.csv") == "skipped"
    assert set(status.values()) == {"ok"}
    reason = manifest.filter(pc.equal(manifest["status"], "reject"))["reason"][0].as_py()
    assert "#Data:" in reason or "#Procedure" in reason
    rejects = (wd.results / "02_stage/_manifest/rejects.csv").read_text()
    assert "2025-09-11/broken.csv" in rejects and reason in rejects


def test_staged_dataset_is_hive_partitioned_with_one_file_per_raw_file(finished):
    wd, _ = finished
    files = sorted((wd.results / "02_stage/raw_measurements").rglob("*.parquet"))
    assert len(files) == 10  # 12 raw CSVs: one rejected, one resource fork skipped
    for path in files:
        run, day, proc = path.parent.name, path.parent.parent.name, path.parent.parent.parent.name
        assert path.name == "part-000.parquet" and run.startswith("run_id=")
        assert day in {f"date={d}" for d in SANTIAGO_NOON} and proc in {"proc=IV", "proc=IVg", "proc=It"}
    dataset = ds.dataset(wd.results / "02_stage/raw_measurements/proc=IV", partitioning="hive")
    table = dataset.to_table(columns=["vsd_V", "i_A", "source_file", "run_id"])
    assert table.num_rows == 6 * len(iv_voltages(1.0, 0.05)) + 50  # six full sweeps and the aborted one
    assert not (wd.path / "pwned").exists()


def test_iv_runs_are_segmented_into_their_sweep_segments(finished):
    wd, _ = finished
    manifest = segment_manifest(wd)
    counts = dict(zip(manifest["source_file"].to_pylist(), manifest["n_segments"].to_pylist()))
    assert counts == wd.expected_segments
    by_file = {row["source_file"]: row for row in manifest.to_pylist()}
    aborted = by_file["2025-09-11/IV2025-09-11_2.csv"]
    assert aborted["segment_types"] == ["forward_positive", "return_positive", "forward_negative"]
    assert aborted["complete"] is False and by_file["2025-09-10/IV2025-09-10_1.csv"]["complete"] is True
    negative_first = by_file["2025-09-12/IV2025-09-12_1.csv"]["segment_types"]
    assert negative_first == ["forward_negative", "return_negative", "forward_positive", "return_positive"]
    run = by_file["2025-09-10/IV2025-09-10_1.csv"]
    folder = wd.results / "03_intermediate/iv_segments/proc=IV/date=2025-09-10" / f"run_id={run['run_id']}"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("_")) == [f"segment={k}" for k in range(4)]
    first = pq.read_table(folder / "segment=0/part-000.parquet")
    assert first["segment_type"].unique().to_pylist() == ["forward_positive"]
    assert first["point_in_segment"].to_pylist() == list(range(first.num_rows))
    assert first["vsd_V"][0].as_py() == 0.0 and first["vsd_V"][-1].as_py() == pytest.approx(1.0)
    assert set(first.column_names) == {"vsd_V", "i_A", "plate_t_degC", "ambient_t_degC", "clock_ms", "segment_id", "segment_type", "point_in_segment"}
    # per-segment facts live in the manifest: a 0 -> 1 -> -1 -> 0 V sweep in 0.05 V steps
    assert run["segment_v_start"] == pytest.approx([0.0, 0.95, 0.0, -0.95]) and run["segment_v_end"] == pytest.approx([1.0, 0.05, -1.0, -0.05])
    assert run["segment_directions"] == ["increasing", "decreasing", "decreasing", "increasing"]
    points = sum(pq.read_metadata(p).num_rows for p in folder.rglob("*.parquet"))
    assert points == len(iv_voltages(1.0, 0.05)) - 1  # the lab's convention drops the final 0 V row (a 1-row segment)


def test_the_run_ends_with_a_summary(finished):
    wd, result = finished
    tail = result.stdout.strip().splitlines()[-5:]
    assert tail[0] == "nanolab: 12 raw files: 10 staged, 1 rejected, 1 skipped"
    assert "IV 7" in tail[1] and "IVg 1" in tail[1] and "It 2" in tail[1]
    assert tail[2] == "  staged with damage (skipped rows or null cells): none"
    assert "IV runs segmented: 7 of 7 (27 segments" in tail[3]
    assert tail[4].endswith("results/02_stage/_manifest/rejects.csv")


def test_every_job_writes_its_log(finished):
    wd, _ = finished
    logs = sorted(p.relative_to(wd.path / "logs").as_posix() for p in (wd.path / "logs").rglob("*.log"))
    assert [p for p in logs if p.startswith("stage/")] == [f"stage/date={d}/batch=1-of-1.log" for d in SANTIAGO_NOON]
    assert "logs/manifests.log" in {f"logs/{p}" for p in logs}
    assert "rejected 2025-09-11/broken.csv" in (wd.path / "logs/manifests.log").read_text()  # a catalog reject: no stage job


# --- partial re-runs: ask Snakemake what it would run -----------------------------------------


def test_nothing_changed_means_nothing_to_do(workdir):
    workdir.snakemake()
    assert workdir.planned_jobs() == {}


def test_touching_a_file_without_changing_it_reruns_nothing(workdir):
    workdir.snakemake()
    os.utime(workdir.raw_root / "2025-09-11/IV2025-09-11_1.csv")
    assert workdir.planned_jobs() == {}


def test_editing_one_file_reruns_only_its_partition(workdir):
    workdir.snakemake()
    staged_before = {p: p.stat().st_mtime_ns for p in workdir.results.rglob("part-000.parquet")}
    drawn = workdir.results / "04_report/_drawn/iv_days/month=2025-09"
    drawn_before = {p.name: p.stat().st_mtime_ns for p in drawn.glob("*.png")}
    assert len(drawn_before) == 3
    path = workdir.raw_root / "2025-09-11/IV2025-09-11_1.csv"
    path.write_text(path.read_text().replace("\n0.05,", "\n0.050000001,", 1))
    assert workdir.planned_jobs() == downstream_of_batches(1)
    result = workdir.snakemake()
    assert set(re.findall(r"wildcards: date=([\d-]+),", result.stderr)) == {"2025-09-11"}
    assert stage_manifest(workdir).num_rows == 12  # re-running never duplicates rows
    edited = stage_manifest(workdir).filter(pc.equal(stage_manifest(workdir)["source_file"], "2025-09-11/IV2025-09-11_1.csv"))
    rewritten = {p for p, mtime in staged_before.items() if p.stat().st_mtime_ns != mtime}
    # only the edited run's staged file and its segments are rewritten, its batch-mates reused;
    # only its day's analysis tables are recomputed, the other days' kept
    analysis = {p for p in rewritten if "04_analysis" in p.parts[-4]}
    assert rewritten - analysis and all(f"run_id={edited['run_id'][0].as_py()}" in str(p) for p in rewritten - analysis)
    assert {p.parent.name for p in analysis} == {"date=2025-09-11"} and len(
        analysis
    ) == 6  # the day kinds; the lab tables stay: their inputs have the same bytes
    # only its day's figure is redrawn; the other days' drawings are linked into the report as they were
    assert {name for name, mtime in drawn_before.items() if (drawn / name).stat().st_mtime_ns != mtime} == {"date=2025-09-11.png"}
    assert "3 days: 1 drawn, 2 unchanged since drawn" in (workdir.path / "logs/figures/iv/month=2025-09.log").read_text()
    for name in drawn_before:
        assert (workdir.results / "04_report/iv_days/month=2025-09" / name).read_bytes() == (drawn / name).read_bytes()
    assert workdir.planned_jobs() == {}


def test_a_new_day_runs_only_that_day(workdir):
    workdir.snakemake()
    start = SANTIAGO_NOON["2025-09-12"] + 86400
    write_iv(workdir.raw_root / "2025-09-13/IV2025-09-13_1.csv", start, iv_voltages(1.0, 0.05))
    write_run(workdir.raw_root / "2025-09-13/It2025-09-13_1.csv", "It", start + 60, seed=9)
    assert workdir.planned_jobs() == downstream_of_batches(1)
    workdir.snakemake()
    assert stage_manifest(workdir).num_rows == 14 and segment_manifest(workdir).num_rows == 8


def snapshot(root: Path) -> dict[Path, tuple[int, bytes]]:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


REUSED = re.compile(r"reused: (\d+) of (\d+) staged files, the segment files of (\d+) of (\d+) IV runs")


def reuse_counts(wd: Workdir) -> list[tuple[int, ...]]:
    """Per batch job's log: (staged files reused, staged files, IV runs whose segments were reused, IV runs)."""
    return [tuple(map(int, REUSED.search(log.read_text()).groups())) for log in sorted((wd.path / "logs/stage").rglob("*.log"))]


def test_a_segmentation_setting_that_finds_the_same_segments_repeats_no_staging_and_rewrites_no_segment(workdir):
    """The performance issue's case: no staged file rewritten or parsed from its CSV again, the staged
    bytes read once, and segment files whose segments did not change are kept."""
    workdir.snakemake()
    staged = snapshot(workdir.results / "02_stage/raw_measurements")
    segments = snapshot(workdir.results / "03_intermediate/iv_segments")
    manifest = segment_manifest(workdir)
    workdir.write_config(segmentation={"dv_threshold": 0.002})  # the sweeps' 0.05 V steps: the same segments
    assert workdir.planned_jobs() == downstream_of_batches(3)
    workdir.snakemake()
    assert snapshot(workdir.results / "02_stage/raw_measurements") == staged
    assert snapshot(workdir.results / "03_intermediate/iv_segments") == segments
    assert segment_manifest(workdir).equals(manifest)
    counts = reuse_counts(workdir)
    assert len(counts) == 3 and all(files == staged_files and runs == iv_runs for files, staged_files, runs, iv_runs in counts)
    assert sum(c[0] for c in counts) == stage_manifest(workdir).filter(pc.equal(stage_manifest(workdir)["status"], "ok")).num_rows
    assert workdir.planned_jobs() == {}


def test_changing_a_segmentation_setting_resegments_without_restaging(workdir):
    workdir.snakemake()
    staged, stage_records = workdir.results / "02_stage/raw_measurements", workdir.results / "02_stage/_records"
    staged_before, stage_records_before = snapshot(staged), snapshot(stage_records)
    segments_before = snapshot(workdir.results / "03_intermediate/iv_segments")
    workdir.write_config(segmentation={"min_segment_points": 15})  # drops the aborted sweep's 10-point segment
    assert workdir.planned_jobs() == downstream_of_batches(3)
    workdir.snakemake()
    # every staged file and reuse record is untouched: the staging half of each job reused them all
    assert snapshot(staged) == staged_before and snapshot(stage_records) == stage_records_before and len(stage_records_before) == 3
    assert all(files == staged_files for files, staged_files, _, _ in reuse_counts(workdir))
    counts = dict(zip(segment_manifest(workdir)["source_file"].to_pylist(), segment_manifest(workdir)["n_segments"].to_pylist()))
    assert counts == {**workdir.expected_segments, "2025-09-11/IV2025-09-11_2.csv": 2}
    # the aborted run's segments were redone (its third segment is gone); every other run's are kept
    aborted = workdir.path / next(r["output"] for r in segment_manifest(workdir).to_pylist() if r["source_file"] == "2025-09-11/IV2025-09-11_2.csv")
    segments_after = snapshot(workdir.results / "03_intermediate/iv_segments")
    assert not (aborted / "segment=2").exists() and (aborted / "segment=2/part-000.parquet") in segments_before
    for path, before in segments_before.items():
        if aborted in path.parents:
            assert path not in segments_after or segments_after[path][0] != before[0]
        else:
            assert segments_after[path] == before
    assert workdir.planned_jobs() == {}


def test_dry_run_lists_every_job_the_real_run_executes(workdir):
    planned = workdir.planned_jobs()
    assert planned == downstream_of_batches(3)
    result = workdir.snakemake()
    executed = {}
    for line in result.stderr.splitlines():
        if line.startswith("localrule ") or line.startswith("rule "):
            rule = line.split()[-1].rstrip(":")
            executed[rule] = executed.get(rule, 0) + 1
    assert executed == planned


def test_deleting_a_raw_file_removes_its_outputs(workdir):
    workdir.snakemake()
    before = {row["source_file"]: row for row in stage_manifest(workdir).to_pylist()}
    gone = before["2025-09-10/IV2025-09-10_2.csv"]
    (workdir.raw_root / gone["source_file"]).unlink()
    workdir.snakemake()
    assert not Path(workdir.path / gone["output"]).exists()
    assert gone["source_file"] not in stage_manifest(workdir)["source_file"].to_pylist()
    segments = workdir.results / "03_intermediate/iv_segments/proc=IV/date=2025-09-10" / f"run_id={gone['run_id']}"
    assert not segments.exists()


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "named"),
    [({"batch_size": "many"}, "batch_size"), ({"colour": "blue"}, "colour"), ({"segmentation": {"dv_threshold": "x"}}, "dv_threshold")],
)
def test_bad_config_is_refused_before_any_job_with_a_message_naming_the_key(workdir, override, named):
    workdir.write_config(**override)
    result = workdir.snakemake(check=False)
    assert result.returncode != 0
    assert named in result.stderr
    assert not workdir.results.exists()


def test_missing_raw_root_is_a_clear_error(workdir):
    shutil.rmtree(workdir.raw_root)
    result = workdir.snakemake(check=False)
    assert result.returncode != 0 and "raw_root" in result.stderr


# --- the batched workflow equals the in-process pipeline --------------------------------------


def relative_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("part-*.parquet")}


def test_batched_workflow_outputs_equal_the_in_process_pipeline(finished, tmp_path):
    wd, _ = finished
    config = yaml.safe_load((wd.path / "config.yaml").read_text())
    staged, segmented = run_in_process(wd.raw_root, tmp_path / "results", config, SCHEMA_FILE)
    workflow_stage, workflow_segments = stage_manifest(wd), segment_manifest(wd)
    ignore_output = lambda table: table.drop_columns(["output"])  # noqa: E731 - absolute vs relative roots
    assert ignore_output(workflow_stage).equals(ignore_output(staged))
    assert ignore_output(workflow_segments).equals(ignore_output(segmented))
    for dataset in ("02_stage/raw_measurements", "03_intermediate/iv_segments"):
        ours, reference = relative_files(wd.results / dataset), relative_files(tmp_path / "results" / dataset)
        assert ours.keys() == reference.keys() and ours
        for name, path in ours.items():
            assert pq.read_table(path).equals(pq.read_table(reference[name])), name


# --- reading the results back ------------------------------------------------------------------


def test_read_api_selects_partitions_and_filters(finished):
    wd, _ = finished
    iv = load_runs(wd.results, proc="IV", date="2025-09-10")
    assert set(iv["proc"]) == {"IV"} and set(iv["date"]) == {"2025-09-10"} and iv["run_id"].nunique() == 3
    assert len(iv) == 3 * len(iv_voltages(1.0, 0.05))
    chip = load_runs(wd.results, proc="It", chip_number=3, columns=["t_s", "i_A", "chip_number"])
    assert set(chip["chip_number"]) == {3} and list(chip.columns) == ["t_s", "i_A", "chip_number"]
    returns = load_segments(wd.results, segment_type="return_negative")
    assert set(returns["segment_type"]) == {"return_negative"}
    assert returns.groupby("run_id")["vsd_V"].max().le(0).all()
    assert load_runs(wd.results, proc="IV", date="1999-01-01").empty


def test_read_api_opens_only_the_partitions_asked_for(finished, tmp_path):
    wd, _ = finished
    results = tmp_path / "results"
    shutil.copytree(wd.results, results)
    for path in (results / "02_stage/raw_measurements/proc=IV/date=2025-09-11").rglob("*.parquet"):
        path.write_bytes(b"not parquet")  # any attempt to open these would raise
    assert load_runs(results, proc="IV", date=["2025-09-10", "2025-09-12"])["date"].nunique() == 2
    with pytest.raises(ValueError):  # pyarrow.ArrowInvalid: not a Parquet file
        load_runs(results, proc="IV", date="2025-09-11")


def test_datasets_open_as_plain_hive_datasets_in_pyarrow_and_pandas(finished):
    wd, _ = finished
    for dataset in ("02_stage/raw_measurements/proc=IV", "03_intermediate/iv_segments"):
        table = ds.dataset(wd.results / dataset, partitioning="hive").to_table()
        frame = pd.read_parquet(wd.results / dataset)
        assert table.num_rows == len(frame) > 0
        assert {"run_id", "date"} <= set(table.column_names) and {"run_id", "date"} <= set(frame.columns)


def test_report_tables_and_html_report(finished):
    wd, _ = finished
    qc = (wd.results / "04_report/segmentation_qc.csv").read_text().splitlines()
    assert len(qc) == 2 and "IV2025-09-11_2.csv" in qc[1]  # only the aborted sweep is flagged
    staging = (wd.results / "04_report/staging_summary.csv").read_text()
    assert '"2025-09-11","IV","ok",2' in staging and '"2025-09-11",,"reject",1' in staging  # broken.csv: no procedure
    for day in SANTIAGO_NOON:
        figure = wd.results / f"04_report/iv_days/month=2025-09/date={day}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000
    runs = pacsv.read_csv(wd.results / "04_report/iv_day_runs/month=2025-09/date=2025-09-11.csv").to_pylist()
    assert [(r["source_file"], r["flag"]) for r in runs] == [("2025-09-11/IV2025-09-11_1.csv", ""), ("2025-09-11/IV2025-09-11_2.csv", "incomplete")]
    report = wd.snakemake("--report", "results/report.html")
    html = (wd.results / "report.html").read_text()
    assert len(html) > 500_000 and "segmentation_qc.csv" in html and "staging_summary.csv" in html
    assert "date=2025-09-12.png" in html and "date=2025-09-12.csv" in html and "month=2025-09.csv" in html
    # captions are valid reStructuredText: docutils reports nothing
    assert "Docutils System Messages" not in html and "ERROR/" not in report.stdout + report.stderr
