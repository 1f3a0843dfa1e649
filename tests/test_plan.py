"""The plan: rejects make no day, job or figure; one definition of the days with tables and figures;
forcing recomputes; library versions rerun; --directory runs; stops are plain lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from nanolab import catalog, layout, outputs, plan, reuse
from nanolab.schema import read_yaml
from nanolab.synthetic import make_run, render_raw
from nanolab.versions import library_versions
from workflow_runner import REPO, Workdir

SANTIAGO_NOON = {"2025-09-10": 1757516400.0, "2025-09-11": 1757602800.0}
PROCEDURES = plan.schema_procedures(read_yaml(REPO / "workflow/schemas/procedures.yaml"))


def run_text(procedure: str = "IV", start: float | None = SANTIAGO_NOON["2025-09-10"], seed: int = 1) -> str:
    parameters, columns, data = make_run(procedure, np.random.default_rng(seed), start or 0.0, chip_number=seed)
    return render_raw(procedure, parameters, start, columns, data)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def broken_set(good: str) -> dict[str, str | bytes]:
    """The usual broken files, none with a start time or a date in its name."""
    header, table = good.split("#Data:\n")
    labels, *rows = table.splitlines()
    no_start = re.sub(r"#Metadata:\n#\tStart time: .*\n", "", good)
    no_start_header = no_start.split("#Data:\n")[0] + "#Data:\n" + labels + "\n"
    return {
        "empty.csv": b"",
        "binary.csv": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "header_only.csv": no_start_header,
        "no_procedure.csv": no_start.replace("#Procedure: <laser_setup.procedures.IV.IV>\n", ""),
        "unknown_proc.csv": no_start.replace("IV.IV>", "Mystery.Mystery>"),
        "ragged.csv": header + "#Data:\n" + labels + "\n" + "\n".join(rows[:5] + ["1,2", "x,y,z"] + rows[5:]) + "\n",
        "crlf.csv": good.replace("\n", "\r\n"),
        "._IV_fork.csv": b"\x00\x05\x16\x07Mac OS X        \x00\x02",
    }


# --- the plan (pure) ----------------------------------------------------------------------------


def test_rejects_the_catalog_knows_get_no_batch_and_no_mtime_day(tmp_path):
    raw = tmp_path / "raw"
    good = run_text()
    write(raw / "2025-09-10/IV2025-09-10_1.csv", good)
    for name, content in broken_set(good).items():
        write(raw / "broken" / name, content)
    write(raw / "2025-09-12/IV2025-09-12_1.csv", broken_set(good)["header_only.csv"])  # dated by its path, a reject
    write(raw / "misc/no_start_but_good.csv", run_text(start=None))  # stages: dated by its mtime
    the_plan = plan.build(raw, tmp_path / "results", catalog.scan(raw, "America/Santiago"), PROCEDURES, 400, [])
    today = catalog.scan(raw, "America/Santiago")[-1].date
    assert {day for day, _ in the_plan.batches} == {"2025-09-10", today}  # the ragged, CRLF files: their start time
    assert [f.source_file for f in the_plan.batches[(today, "1-of-1")]] == ["misc/no_start_but_good.csv"]
    rows = {row["source_file"]: row for row in the_plan.reject_rows()}
    assert sorted(rows) == sorted(
        ["2025-09-12/IV2025-09-12_1.csv", *(f"broken/{name}" for name in broken_set(good) if name not in ("ragged.csv", "crlf.csv"))]
    )
    assert rows["2025-09-12/IV2025-09-12_1.csv"]["date"] == "2025-09-12"  # a real date is kept
    assert all(row["date"] is None for source, row in rows.items() if source.startswith("broken/"))
    assert rows["broken/header_only.csv"]["reason"] == "header but no data rows"
    assert rows["broken/unknown_proc.csv"]["reason"] == "unknown procedure 'Mystery' (not in the procedure schema)"
    assert rows["broken/._IV_fork.csv"]["status"] == "skipped"
    assert the_plan.months("IV") == ["2025-09", today[:7]]  # today's month: for the good file only


def test_a_day_whose_only_iv_files_are_rejects_has_no_job_and_no_month(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "2025-09-10/IV2025-09-10_1.csv", run_text())
    write(raw / "2025-10-02/IV2025-10-02_1.csv", broken_set(run_text())["header_only.csv"])
    write(raw / "2025-10-02/IV2025-10-02_2.csv", run_text().replace("IV.IV>", "Mystery.Mystery>"))
    the_plan = plan.build(raw, tmp_path / "results", catalog.scan(raw, "America/Santiago"), PROCEDURES, 400, [])
    assert list(the_plan.batches) == [("2025-09-10", "1-of-1")] and the_plan.months("IV") == ["2025-09"]
    with pytest.raises(plan.Stop, match="no raw files that stage on 2025-10-02"):
        plan.build(raw, tmp_path / "results", catalog.scan(raw, "America/Santiago"), PROCEDURES, 400, ["2025-10-02"])


def test_the_days_with_tables_and_figures_are_the_days_segment_manifests_list():
    manifest = {"date": ["2025-09-11", None, "2025-09-10", "2025-09-11"], "status": ["ok", "reject", "no_segments", "ok"]}
    assert outputs.iv_days(manifest) == ["2025-09-10", "2025-09-11"]
    assert outputs.day_files("f", "r", ["2025-09-10"]) == ["f/date=2025-09-10.png", "r/date=2025-09-10.csv"]


def test_library_versions_name_python_and_each_library():
    versions = library_versions(("numpy", "surely-not-installed"))
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["numpy"] == np.__version__ and versions["surely-not-installed"] == "not installed"


def test_a_forced_check_file_turns_reuse_off(tmp_path):
    check = write(tmp_path / "check.txt", "whole\n")
    assert reuse.engine({}, "stage", [check]).trusts() and reuse.engine({}, "stage", None).trusts("2025-09-10")
    from nanolab import integrity

    integrity.write_forced(check)
    forced = reuse.engine({}, "stage", [check])
    assert not forced.trusts() and not forced.trusts("2025-09-10")
    integrity.write_check(check, [])  # the next run's check: whole again, mtime 0
    assert reuse.engine({}, "stage", [check]).trusts() and check.stat().st_mtime_ns == 0


def test_a_force_of_some_days_turns_reuse_off_for_those_days_only(tmp_path):
    check = write(tmp_path / "check.txt", "whole\n")
    from nanolab import integrity

    integrity.write_forced(check, {"2025-09-11", "2025-09-10"})
    forced = reuse.engine({"stage": "abc"}, "stage", [check])
    assert forced.code == "abc" and forced.forced == {"2025-09-10", "2025-09-11"}
    assert not forced.trusts("2025-09-10") and not forced.trusts("2025-09-11") and not forced.trusts()  # no day: any force
    assert forced.trusts("2025-09-12")


def test_a_reuse_key_changes_with_its_code_fingerprint_and_parts():
    assert reuse.Engine("abc").key("x") == reuse.Engine("abc").key("x")
    assert reuse.Engine("abc").key("x") != reuse.Engine("abd").key("x")
    assert reuse.Engine("abc").key("x") != reuse.Engine("abc").key("y")


def test_every_rule_with_an_arguments_file_runs_the_command_the_plan_names():
    """The plan's RULE_COMMANDS replace a regex over the rules' shell text at DAG time; this keeps them equal."""
    text = "\n".join(path.read_text() for path in (REPO / "workflow/rules").rglob("*.smk"))
    rules = dict(re.findall(r"^rule (\w+):.*?\n        \"python -m ([\w.]+(?: [a-z]+)?) @\{input\.args:q\}", text, re.S | re.M))
    assert rules == plan.RULE_COMMANDS


# --- the workflow on broken trees ---------------------------------------------------------------


def make_workdir(tmp_path: Path, raw: Path, **config: object) -> Workdir:
    wd = Workdir(tmp_path / "work", raw)
    wd.path.mkdir(parents=True, exist_ok=True)
    wd.write_config(**config)
    return wd


def good_days(raw: Path) -> None:
    for day, noon in SANTIAGO_NOON.items():
        for n in range(2):
            write(raw / day / f"IV{day}_{n + 1}.csv", run_text(start=noon + 600 * n, seed=n + 1))
        write(raw / day / f"It{day}_1.csv", run_text("It", start=noon + 1800, seed=7))


def jobs_run(result: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, re.M)


@pytest.fixture(scope="module")
def broken_tree(tmp_path_factory) -> Workdir:
    """Good days beside the whole broken set (no start time, no dated path), a dated day of rejects only,
    and a day whose only IV file the stage job rejects (every row ragged: the catalog cannot know)."""
    tmp = tmp_path_factory.mktemp("broken")
    raw = tmp / "raw"
    good_days(raw)
    good = run_text()
    for name, content in broken_set(good).items():
        write(raw / "broken" / name, content)
    write(raw / "2025-09-20/IV2025-09-20_1.csv", broken_set(good)["header_only.csv"])
    write(raw / "2025-09-20/IV2025-09-20_2.csv", b"")
    header, table = run_text(start=None).split("#Data:\n")  # dated by its path
    ragged_only = header + "#Data:\n" + table.splitlines()[0] + "\n1,2\n3,4\n"
    write(raw / "2025-09-21/IV2025-09-21_1.csv", ragged_only)
    wd = make_workdir(tmp, raw)
    wd.snakemake()
    return wd


def test_after_one_run_on_broken_files_a_second_run_does_nothing(broken_tree):
    assert broken_tree.planned_jobs() == {}
    assert "Nothing to be done" in broken_tree.snakemake("-n").stdout + broken_tree.snakemake("-n").stderr
    assert jobs_run(broken_tree.snakemake()) == []


def test_rejects_make_no_day_no_table_no_month_and_no_figure(broken_tree):
    results = broken_tree.results
    batch_days = {p.name for p in (results / "02_stage/_batches").iterdir()}
    assert batch_days == {"date=2025-09-10", "date=2025-09-11", "date=2025-09-21"}  # 09-21: its file looked like an IV run
    analysed = {p.name for p in (results / "04_analysis/iv_stats").iterdir()}
    figures = {p.name for p in results.glob("04_report/iv_days/*/*.png")}
    assert analysed == {"date=2025-09-10", "date=2025-09-11"} and figures == {"date=2025-09-10.png", "date=2025-09-11.png"}
    assert {p.name for p in (results / "04_report/iv_days").iterdir()} == {"month=2025-09"}
    manifest = {row["source_file"]: row for row in pq.read_table(results / "02_stage/_manifest/manifest.parquet").to_pylist()}
    assert len(manifest) == 6 + len(broken_set(run_text())) + 3
    for name in ("empty.csv", "binary.csv", "header_only.csv", "no_procedure.csv", "unknown_proc.csv"):
        row = manifest[f"broken/{name}"]
        assert row["status"] == "reject" and row["date"] is None and row["reason"], row
    assert manifest["broken/._IV_fork.csv"]["status"] == "skipped"
    assert manifest["broken/ragged.csv"]["status"] == manifest["broken/crlf.csv"]["status"] == "ok"
    assert manifest["2025-09-20/IV2025-09-20_1.csv"]["date"] == "2025-09-20"  # a real date is kept
    assert manifest["2025-09-21/IV2025-09-21_1.csv"]["reason"].startswith("no data rows with as many cells as the label row")
    staging = (results / "04_report/staging_summary.csv").read_text()
    assert time.strftime("%Y-%m-") not in staging.replace("2025-09-", "")  # no reject dated by its mtime (today)


# --- forcing and library upgrades ---------------------------------------------------------------


@pytest.fixture
def built(tmp_path) -> Workdir:
    raw = tmp_path / "raw"
    good_days(raw)
    wd = make_workdir(tmp_path, raw)
    wd.snakemake()
    return wd


def produced(results: Path) -> dict[str, tuple[int, bytes]]:
    """Staged, segment, analysis and figure files: mtime and bytes."""
    patterns = ["02_stage/raw_measurements/**/*.parquet", "03_intermediate/iv_segments/**/*.parquet", "04_analysis/iv_*/**/*.parquet",
                "04_report/_drawn/**/*.png"]  # fmt: skip
    files = [p for pattern in patterns for p in results.glob(pattern)]
    return {str(p.relative_to(results)): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


def kinds(names) -> set[str]:
    return {name.split("/")[0] if not name.startswith("04_report") else "figures" for name in names}


def tamper_staged_file(results: Path) -> Path:
    """Flip bytes inside a staged file and make its reuse record vouch for them: only a recomputation
    from the raw bytes can undo it."""
    staged = sorted(results.glob("02_stage/raw_measurements/proc=IV/**/part-000.parquet"))[0]
    data = bytearray(staged.read_bytes())
    data[100:104] = b"\x00\x00\x00\x00" if data[100:104] != b"\x00\x00\x00\x00" else b"\x01\x01\x01\x01"
    staged.write_bytes(bytes(data))
    for record in results.glob("02_stage/_records/*/*.json"):  # the batch's record file: one entry per run
        document = json.loads(record.read_text())
        for entry in document.values():
            if (record.parent / entry["outputs"][0][0]).resolve() == staged.resolve():
                entry["outputs"][0][2] = reuse.file_crc(staged)
                record.write_text(json.dumps(document))
                return staged
    raise AssertionError(f"no record vouches for {staged}")


@pytest.mark.parametrize(
    ("force", "forced_kinds"),
    [
        (["--forceall"], {"02_stage", "03_intermediate", "04_analysis", "figures"}),
        (["--forcerun", "stage_batch"], {"02_stage", "03_intermediate"}),
        (["-R", "draw_iv"], {"figures"}),
        (["--forcerun", "analyse_iv"], {"04_analysis"}),
    ],
)
def test_forcing_redoes_every_output_of_the_forced_jobs_from_the_raw_bytes(built, force, forced_kinds):
    before = produced(built.results)
    tampered = tamper_staged_file(built.results)
    assert built.planned_jobs() == {}
    assert jobs_run(built.snakemake()) == []  # an unforced no-op keeps every file
    unforced = produced(built.results)
    assert {name: entry for name, entry in unforced.items() if not tampered.as_posix().endswith(name)} == {
        name: entry for name, entry in before.items() if not tampered.as_posix().endswith(name)
    }
    built.snakemake(*force)
    after = produced(built.results)
    assert after.keys() == before.keys()
    rewritten = {name for name in after if after[name][0] != unforced[name][0]}
    assert kinds(rewritten) >= forced_kinds
    assert {name for name in after if kinds([name]) <= forced_kinds} <= rewritten  # every output of the forced jobs
    name = str(tampered.relative_to(built.results))
    if "02_stage" in forced_kinds:
        assert after[name][1] == before[name][1]  # restaged from the raw bytes, not vouched for
    for other in after:
        if other != name:
            assert after[other][1] == before[other][1], other  # the same bytes again, recomputed
    assert built.planned_jobs() == {}  # forcing leaves nothing to rerun


def fake_dist(folder: Path, name: str, version: str) -> None:
    dist = folder / f"{name}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_a_library_upgrade_reruns_and_redoes_what_it_may_change_and_says_why(built, tmp_path, monkeypatch):
    before = produced(built.results)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    fake_dist(tmp_path / "site", "matplotlib", "99.0.0")  # only the figures are drawn with matplotlib
    dry = built.snakemake("-n")
    text = dry.stdout + dry.stderr
    assert f"libraries changed since results/ was last built: matplotlib {before and __import__('matplotlib').__version__} -> 99.0.0" in text
    assert "(reruns draw_iv" in text
    assert built.planned_jobs() == {"draw_iv": 1, "lab_figures": 1, "landing_page": 1, "all": 1}  # the figure jobs and the page of their tables
    [args] = re.findall(r"Updated input files: (\S+/args/draw_iv/\S+\.args)", text)
    assert "matplotlib 99.0.0" in (built.path / args).read_text().splitlines()[0]
    # The job's own reuse key has the version too: pretend the job's matplotlib is 99.0.0 as well
    shim = tmp_path / "site/sitecustomize.py"
    shim.write_text("import matplotlib\nmatplotlib.__version__ = '99.0.0'\n")
    built.snakemake()
    after = produced(built.results)
    redrawn = {name for name in after if after[name][0] != before[name][0]}
    assert redrawn == {name for name in after if name.startswith("04_report")} and redrawn
    assert built.planned_jobs() == {}


# --- another folder, and stops without tracebacks -----------------------------------------------


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)


def test_a_folder_with_only_lab_yaml_runs_with_its_own_config_and_prints_its_own_summary(tmp_path):
    raw_a, raw_b = tmp_path / "raw_a", tmp_path / "raw_b"
    good_days(raw_a)
    write(raw_b / "2025-09-10/IV2025-09-10_1.csv", run_text())
    launch, other = tmp_path / "launch", tmp_path / "other"
    for folder, raw in ((launch, raw_a), (other, raw_b)):
        write(folder / "lab.yaml", f"raw_root: {raw}\n")
    assert run(launch).returncode == 0
    first = run(launch, "--directory", str(other))
    assert first.returncode == 0, first.stderr
    assert "nanolab: 1 raw files: 1 staged" in first.stdout + first.stderr
    no_op = run(launch, "--directory", str(other))
    text = no_op.stdout + no_op.stderr
    assert "Nothing to be done" in text and "nanolab: 1 raw files: 1 staged" in text and "6 raw files" not in text
    assert (other / "results/summary.txt").exists() and not (launch / "config.yaml").exists()


def assert_plain_stop(result: subprocess.CompletedProcess, *words: str) -> None:
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in text and 'File "' not in text and not re.search(r"line \d+", text), text
    stop = [line for line in text.splitlines() if line.startswith("nanolab: stopped before any job:")]
    assert len(stop) == 1 and all(word in stop[0] for word in words), text


def test_every_stop_is_one_plain_line_naming_the_problem_and_the_fix(built, tmp_path):
    assert_plain_stop(built.snakemake("--config", "batch_size=many", check=False), "batch_size", "use an integer")
    assert_plain_stop(built.snakemake("--config", "figures=maybe", check=False), "figures", "use true or false")
    assert_plain_stop(built.snakemake("--config", f"raw_root={tmp_path / 'nowhere'}", check=False), "is not a folder", "lab.yaml")
    other = tmp_path / "other_tree"
    write(other / "2025-09-10/IV2025-09-10_1.csv", run_text())
    assert_plain_stop(built.snakemake("--config", f"raw_root={other}", check=False), "was built from raw_root", "Run with raw_root=")
    assert_plain_stop(built.snakemake("--config", "days=2031-01-01", check=False), "no raw files that stage on 2031-01-01", "leave days empty")
    assert_plain_stop(built.snakemake("--config", "procedure_schema=nowhere.yaml", check=False), "procedure_schema", "cannot be read")
    assert built.planned_jobs() == {}  # nothing was touched


# --- the bookkeeping modules (pure) -------------------------------------------------------------


def test_the_output_check_expects_figures_for_the_days_the_segment_manifests_list(tmp_path, monkeypatch):
    """The check and the figure job read one definition (outputs.iv_days of the month's segment
    manifests): a day without staged IV runs is not expected, a day with them is."""
    import pyarrow as pa
    from nanolab import checks, integrity

    monkeypatch.chdir(tmp_path)
    manifest = "results/03_intermediate/_batches/date=2025-09-10/batch=1-of-1.parquet"
    Path(manifest).parent.mkdir(parents=True)
    pq.write_table(pa.table({"run_id": ["a"], "date": ["2025-09-10"], "status": ["ok"], "output": [None], "n_segments": [0]}), manifest)
    figures = layout.figure_folders("iv", "2025-09")
    for folder in figures:
        Path(folder).mkdir(parents=True)
    expected = checks.ExpectedOutputs(
        {manifest: "segment"}, ("results/02_stage/_manifest/manifest.parquet",), (), {figures[0]: checks.MonthFigures(figures, (manifest,))}
    )
    damage = checks.find_output_damage(expected, tmp_path / "index.json")
    assert sorted(d.path for d in damage[figures[0]]) == sorted(outputs.day_files(*figures, ["2025-09-10"]))
    for path in outputs.day_files(*figures, ["2025-09-10"]):
        Path(path).write_bytes(b"\x89PNG drawn" + integrity.PNG_TRAILER)
    assert checks.find_output_damage(expected, tmp_path / "index.json")[figures[0]] == []
    # a month whose manifests list no day expects no figure at all
    empty = checks.ExpectedOutputs({}, expected.merged, (), {figures[0]: checks.MonthFigures(figures, ())})
    assert checks.find_output_damage(empty, tmp_path / "index.json")[figures[0]] == []


def test_change_lines_name_tree_code_and_library_changes():
    from nanolab import changes

    previous = {"files": {"a.csv": ["1:aa", "2025-09-10"]}, "code": {"nanolab.stage": "x"}, "libraries": {"stage_batch": {"numpy": "1.0"}}}
    lines = changes.change_lines(
        previous, {"a.csv": "1:aa"}, "/raw", {"nanolab.stage": "y"}, lambda: {"stage_batch": {"nanolab.stage"}}, {"stage_batch": {"numpy": "2.0"}}
    )
    assert lines == [
        "nanolab: raw tree unchanged since results/ was last built (1 files)",
        "nanolab: code changed since results/ was last built: nanolab.stage (reruns stage_batch)",
        "nanolab: libraries changed since results/ was last built: numpy 1.0 -> 2.0 (reruns stage_batch, redoing their outputs)",
    ]
    asked = []
    same = changes.change_lines(previous, {"a.csv": "1:aa"}, "/raw", previous["code"], lambda: asked.append(1) or {}, previous["libraries"])
    assert same == ["nanolab: raw tree unchanged since results/ was last built (1 files)"] and asked == []  # code not parsed
    assert "no record of a finished run yet" in changes.change_lines(None, {}, "/raw", {}, dict, {})[0]


def test_arguments_files_are_named_by_content_and_stale_ones_removed(tmp_path):
    from nanolab import jobargs

    path, text = jobargs.args_file(tmp_path / "args", "stage_batch", "2025-09-10_1-of-1", "what it is for", ["--x", 1])
    assert text == "# what it is for\n--x\n1\n" and path.parent == tmp_path / "args/stage_batch"
    assert jobargs.args_file(tmp_path / "args", "stage_batch", "2025-09-10_1-of-1", "what it is for", ["--x", 2])[0] != path
    jobargs.write_once(path, text)
    stale = jobargs.write_once(tmp_path / "args/stage_batch/old.args", "old")
    jobargs.remove_others(tmp_path, {"args": "*/*.args"}, {str(path)})
    assert path.exists() and not stale.exists()


@pytest.mark.parametrize("command", sorted(set(plan.RULE_COMMANDS.values())))
def test_every_job_refuses_pandas_before_its_work(command):
    """pyarrow imports pandas (~0.4 s CPU a job) at its first conversion of a Python object: every job a
    rule runs blocks it first thing (a forgotten job paid it unseen: analysis and lab analysis did)."""
    module, *subcommand = command.split()
    module = "nanolab.cli" if module == "nanolab" else module
    script = (
        "import sys; from importlib import import_module; from nanolab.nopandas import NoPandas\n"
        f"try: import_module({module!r}).main({[*subcommand, '--help']!r})\n"
        "except SystemExit: pass\n"
        "print(any(isinstance(finder, NoPandas) for finder in sys.meta_path), 'pandas' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split()[-2:] == ["True", "False"], result.stdout
