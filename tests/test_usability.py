"""What a new lab member meets: one raw tree per results/, the README's commands on the lab's data,
command-line config values, the change listing, code-change reruns, undated rejects, some days only."""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from nanolab import codehash
from nanolab.changes import TreeChanges, describe_changes, diff_trees, normalise_root, root_mismatch, tree_after_run
from nanolab.config import checked_config, coerce_config, validated, value_notes
from nanolab.schema import read_yaml
from nanolab.synthetic import make_run, render_raw
from workflow_runner import REPO, Workdir, downstream_of_batches

CONFIG_SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
SANTIAGO_NOON = {"2025-09-10": 1757516400.0, "2025-09-11": 1757602800.0}


def write_run(path: Path, procedure: str, start: float, seed: int) -> Path:
    parameters, columns, data = make_run(procedure, np.random.default_rng(seed), start, chip_number=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_raw(procedure, parameters, start, columns, data))
    return path


def lab_tree(raw: Path) -> None:
    """Two days of IV and It runs (not the example's days), a dated broken file, an undated one."""
    for day, noon in SANTIAGO_NOON.items():
        for n in range(2):
            write_run(raw / day / f"IV{day}_{n + 1}.csv", "IV", noon + 600 * n, seed=n + 1)
        write_run(raw / day / f"It{day}_1.csv", "It", noon + 1800, seed=7)
    (raw / "2025-09-11/broken.csv").write_text("not a measurement\n")
    (raw / "notes").mkdir()
    (raw / "notes/junk.csv").write_text("no header and no date anywhere\n")


def output_of(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def parquet_files(results: Path) -> dict[str, int]:
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in results.rglob("*.parquet")}


# --- config values as users type them (pure functions) ----------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"), [("false", False), ("False", False), ("NO", False), ("0", False), ("true", True), ("Yes", True), (1, True), (False, False)]
)
def test_booleans_from_the_command_line(typed, expected):
    coerced, problems = coerce_config({"figures": typed}, read_yaml(CONFIG_SCHEMA))
    assert problems == [] and coerced["figures"] is expected


def test_numbers_in_the_mapping_form_and_dotted_keys_become_numbers():
    schema = read_yaml(CONFIG_SCHEMA)
    # `--config 'segmentation={dv_threshold: 0.01}'` reaches the workflow as strings
    coerced, problems = coerce_config({"segmentation": {"dv_threshold": "0.01", "min_segment_points": "7"}, "batch_size": "12"}, schema)
    assert problems == [] and coerced == {"segmentation": {"dv_threshold": 0.01, "min_segment_points": 7}, "batch_size": 12}
    coerced, problems = coerce_config({"segmentation": {"voltage_column": "vsd_V"}, "segmentation.dv_threshold": "0.02"}, schema)
    assert problems == [] and coerced == {"segmentation": {"voltage_column": "vsd_V", "dv_threshold": 0.02}}


def test_days_from_a_comma_list_or_yaml_dates():
    schema = read_yaml(CONFIG_SCHEMA)
    assert coerce_config({"days": "2025-09-10,2025-09-11"}, schema)[0]["days"] == ["2025-09-10", "2025-09-11"]
    assert coerce_config({"days": [datetime.date(2025, 9, 10)]}, schema)[0]["days"] == ["2025-09-10"]


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"figures": "maybe"}, ["figures", "'maybe'", "true or false"]),
        ({"segmentation": {"dv_threshold": "abc"}}, ["segmentation.dv_threshold", "'abc'", "a number > 0", "'segmentation={dv_threshold:"]),
        ({"batch_size": "0"}, ["batch_size", "0", "an integer >= 1"]),
        ({"days": "11-09-2025"}, ["days", "11-09-2025", "YYYY-MM-DD"]),
        ({"colour": "blue"}, ["colour", "raw_root", "figures"]),
        ({"analysis": {"poly_orders": [0]}}, ["analysis.poly_orders", "an integer >= 1", "'analysis={poly_orders: [1, 3, 5, 7]}'"]),
        ({"timezone": "Mars/Olympus"}, ["timezone", "'Mars/Olympus'", "IANA", "--config timezone=America/Santiago"]),
        ({"timezone": "America"}, ["timezone", "'America'", "IANA"]),
    ],
)
def test_a_wrong_value_names_the_key_the_value_and_the_accepted_form(config, words):
    _, problems = checked_config({"raw_root": "x", **config}, CONFIG_SCHEMA)
    assert len(problems) == 1 and all(word in problems[0] for word in words), problems


def test_a_history_order_the_analysis_does_not_fit_is_noted():
    config = {"analysis": {"poly_orders": [1, 3, 5, 7]}, "lab_analysis": {"history_order": 3}}
    assert value_notes(config) == []
    config["analysis"]["poly_orders"] = [1, 5]
    [note] = value_notes(config)
    assert "history_order 3 is not among analysis.poly_orders [1, 5]" in note and "{history_order: 5}" in note


def test_a_validated_config_is_remembered_only_for_the_same_config_schema_and_version(tmp_path):
    """A run with the last run's config imports no validator; anything that could change the answer
    validates again, and a stop is never remembered."""
    calls = []

    def check(config):
        calls.append(config)
        if config.get("batch_size") == 0:
            raise ValueError("invalid config")
        return {**config, "filled": True}

    memo, schema = tmp_path / "memo.json", tmp_path / "schema.yaml"
    schema.write_text("type: object\n")
    assert validated({"batch_size": 3}, schema, check, memo, "v1") == {"batch_size": 3, "filled": True}
    assert validated({"batch_size": 3}, schema, check, memo, "v1") == {"batch_size": 3, "filled": True}
    assert len(calls) == 1
    validated({"batch_size": 4}, schema, check, memo, "v1")  # another config
    validated({"batch_size": 4}, schema, check, memo, "v2")  # another workflow or Snakemake version
    schema.write_text("type: object\nproperties: {}\n")
    validated({"batch_size": 4}, schema, check, memo, "v2")  # another schema
    assert len(calls) == 4
    with pytest.raises(ValueError):
        validated({"batch_size": 0}, schema, check, memo, "v2")
    with pytest.raises(ValueError):  # the stop was not remembered
        validated({"batch_size": 0}, schema, check, memo, "v2")
    memo.write_text("{not json")
    assert validated({"batch_size": 4}, schema, check, memo, "v2")["filled"] and len(calls) == 7
    dated = {"days": [datetime.date(2025, 9, 10)]}  # JSON would give the date back as text: not remembered
    assert validated(dated, schema, check, memo, "v2")["days"] == [datetime.date(2025, 9, 10)]
    assert validated(dated, schema, check, memo, "v2")["days"] == [datetime.date(2025, 9, 10)] and len(calls) == 9


# --- the raw-tree record (pure functions) ------------------------------------------------------


def test_diff_lists_added_edited_removed_and_moved_by_content():
    before = {"a.csv": "1:aa", "b.csv": "1:bb", "c.csv": "1:cc", "d.csv": "1:dd"}
    after = {"a.csv": "1:aa", "b.csv": "2:b2", "moved/c.csv": "1:cc", "e.csv": "1:ee"}
    assert diff_trees(before, after) == TreeChanges(added=["e.csv"], edited=["b.csv"], removed=["d.csv"], moved=[("c.csv", "moved/c.csv")])
    assert not diff_trees(before, dict(before))


def test_listing_shows_counts_and_at_most_ten_paths_each():
    changes = TreeChanges(added=[f"2025-09-10/IV_{n:02}.csv" for n in range(25)], removed=["x.csv"])
    text = describe_changes(changes, files=30)
    lines = text.splitlines()
    assert "25 added" in lines[0] and "1 removed" in lines[0]
    assert sum(line.startswith("  added: 2025") for line in lines) == 10 and "… and 15 more" in text
    assert "  removed: x.csv" in lines


def test_a_run_for_some_days_updates_only_their_part_of_the_record():
    previous = {"files": {"a.csv": ["1", "2025-09-10"], "b.csv": ["1", "2025-09-11"]}, "code": {"m": "1"}}
    now = {"a.csv": ["2", "2025-09-10"], "b.csv": ["2", "2025-09-11"], "u.csv": ["3", None]}
    after = tree_after_run(previous, now, {"m": "2"}, {"2025-09-10"})
    assert after == {"files": {"a.csv": ["2", "2025-09-10"], "b.csv": ["1", "2025-09-11"], "u.csv": ["3", None]}, "code": {"m": "1"}}


def test_raw_root_spellings_of_one_tree_are_one_tree(tmp_path):
    (tmp_path / "raw").mkdir()
    os.symlink(tmp_path / "raw", tmp_path / "link")
    assert normalise_root(f"{tmp_path}/raw/") == normalise_root(tmp_path / "link") == str((tmp_path / "raw").resolve())
    results = tmp_path / "results"
    (results / ".nanolab").mkdir(parents=True)
    (results / ".nanolab/raw_root").write_text(str((tmp_path / "raw").resolve()) + "\n")
    assert root_mismatch(results, normalise_root(f"{tmp_path}/raw/")) is None
    message = root_mismatch(results, "/somewhere/else")
    assert "\n" not in message and str((tmp_path / "raw").resolve()) in message and "/somewhere/else" in message


# --- code fingerprints: a copy of the package, edited -----------------------------------------


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    copy = tmp_path / "nanolab"
    shutil.copytree(codehash.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codehash, "PACKAGE_DIR", copy)
    codehash.clear_caches()
    yield copy
    codehash.clear_caches()


def test_code_versions_change_only_for_commands_that_import_the_edited_module(package_copy):
    commands = ["nanolab batch", "nanolab manifests", "nanolab.analysis_job", "nanolab.plots"]
    before = {command: codehash.code_version(command) for command in commands}
    edits = {
        "plots.py": {"nanolab.plots"},
        "analysis.py": {"nanolab.analysis_job", "nanolab.plots"},  # the figures call analyse_day for empty days
        "segment.py": set(commands),  # segments, their manifest, points and what is read from them
        "synthetic.py": set(),  # test data only
    }
    for module, affected in edits.items():
        with open(package_copy / module, "a") as handle:
            handle.write("\n# edited\n")
        codehash.clear_caches()
        now = {command: codehash.code_version(command) for command in commands}
        assert {command for command in commands if now[command] != before[command]} == affected, module
        before = now


def test_closure_names_only_modules_the_command_really_imports():
    for command in ("nanolab batch", "nanolab manifests", "nanolab.analysis_job", "nanolab.plots"):
        module = command.split()[0]
        entry = "nanolab.cli" if module == "nanolab" else module  # what `python -m nanolab` imports
        probe = f"import sys; import {entry}; print(sorted(sys.modules))"
        if module == "nanolab":  # a subcommand imports its modules when it runs: run its functions up to their first argument
            calls = {
                "nanolab batch": ["run_batch(argparse.Namespace())"],
                "nanolab manifests": ["run_manifests(argparse.Namespace())", "merge('', *[None] * 3)"],
            }
            probe = "import argparse, sys\nfrom nanolab import cli\n"
            probe += "".join(f"try: cli.{call}\nexcept (AttributeError, KeyError): pass\n" for call in calls[command])
            probe += "print(sorted(sys.modules))"
        imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        loaded = set(re.findall(r"'(nanolab[\w.]*)'", imported)) | {"nanolab.__main__"}
        assert codehash.rule_closure(command) <= loaded


# --- the real snakemake, as a lab member runs it ---------------------------------------------


@pytest.fixture
def clone(tmp_path) -> Path:
    """A clone of the workflow used for the lab's data: raw_root set once, in lab.yaml."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, clone / name)
    for name in ("workflow", "profiles", "envs", "data"):
        shutil.copytree(REPO / name, clone / name)
    lab_tree(tmp_path / "lab_raw")
    (clone / "lab.yaml").write_text(f"raw_root: {tmp_path / 'lab_raw'}\n")
    return clone


def run(clone: Path, command: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(shlex.split(command), cwd=clone, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{command} failed:\n{output_of(result)}")
    return result


def readme_commands() -> list[str]:
    """The `snakemake …` lines of the README's Quick start and Configuration sections, in order."""
    text = (REPO / "README.md").read_text()
    sections = text[text.index("## Quick start") : text.index("## What the outputs hold")]
    blocks = re.findall(r"```bash\n(.*?)```", sections, re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("snakemake")]


def test_every_readme_command_works_as_written_on_the_labs_tree(clone):
    commands = readme_commands()
    assert {"snakemake -n", "snakemake --cores 8", "snakemake --report results/report.html", "snakemake --profile profiles/slurm -n"} <= set(commands)
    for command in commands:
        result = run(clone, command)
        if command == "snakemake --profile profiles/slurm -n":
            assert "2025-09-09" not in output_of(result)  # the example's days: it must plan the lab's tree
    assert (clone / "results/report.html").stat().st_size > 100_000
    manifest = pq.read_table(clone / "results/02_stage/_manifest/manifest.parquet")
    assert sorted(set(manifest["date"].to_pylist()) - {None}) == sorted(SANTIAGO_NOON)  # the lab's days, not the example's
    assert (clone / "results/.nanolab/raw_root").read_text().strip() == str((clone.parent / "lab_raw").resolve())


def test_bare_snakemake_without_the_lab_setting_cannot_touch_the_labs_results(clone):
    run(clone, "snakemake --cores 2")
    before = parquet_files(clone / "results")
    (clone / "lab.yaml").unlink()  # a new lab member, a fresh clone, plain `snakemake`
    result = run(clone, "snakemake --cores 2", check=False)
    assert result.returncode != 0
    lines = [line for line in output_of(result).splitlines() if "was built from raw_root" in line]
    assert len(lines) == 1 and str((clone.parent / "lab_raw").resolve()) in lines[0] and str((clone / "data/example_raw").resolve()) in lines[0]
    assert parquet_files(clone / "results") == before and not (clone / "logs/stage/date=2025-09-09").exists()


@pytest.fixture
def built(tmp_path) -> Workdir:
    wd = Workdir(tmp_path / "work", tmp_path / "raw")
    wd.path.mkdir()
    lab_tree(wd.raw_root)
    wd.write_config()
    wd.snakemake()
    return wd


def test_other_spellings_of_raw_root_rerun_nothing_and_another_tree_stops_before_any_job(built, tmp_path):
    os.symlink(built.raw_root, tmp_path / "link")
    for spelling in (f"{built.raw_root}/", str(tmp_path / "link")):
        assert built.planned_jobs("--config", f"raw_root={spelling}") == {}
    other = tmp_path / "day_folder_only"
    shutil.copytree(built.raw_root / "2025-09-10", other / "2025-09-10")
    before = parquet_files(built.results)
    result = built.snakemake("--config", f"raw_root={other}", check=False)
    assert result.returncode != 0 and "Job stats" not in output_of(result)
    assert parquet_files(built.results) == before


def test_dry_run_lists_what_changed_before_the_jobs_with_short_reasons(built):
    raw = built.raw_root
    assert "raw tree unchanged since results/ was last built (8 files)" in output_of(built.snakemake("-n"))
    edited = raw / "2025-09-10/IV2025-09-10_1.csv"
    edited.write_text(edited.read_text().replace("\n0.0", "\n0.00000001", 1))
    (raw / "2025-09-11/It2025-09-11_1.csv").rename(raw / "2025-09-11/It_renamed.csv")
    (raw / "2025-09-10/It2025-09-10_1.csv").unlink()
    write_run(raw / "2025-09-11/IV2025-09-11_9.csv", "IV", SANTIAGO_NOON["2025-09-11"] + 3000, seed=9)
    os.utime(raw / "2025-09-11/IV2025-09-11_1.csv")  # touched, unchanged: not listed
    err = output_of(built.snakemake("-n"))
    listing = err[: err.index("Job stats")]
    assert "1 added, 1 edited, 1 removed, 1 moved" in listing
    for line in ("added: 2025-09-11/IV2025-09-11_9.csv", "edited: 2025-09-10/IV2025-09-10_1.csv", "removed: 2025-09-10/It2025-09-10_1.csv",
                 "moved: 2025-09-11/It2025-09-11_1.csv -> 2025-09-11/It_renamed.csv"):  # fmt: skip
        assert f"  {line}\n" in listing
    reasons = [line for line in err.splitlines() if "reason: Updated input files: .snakemake/nanolab/args/stage_batch/" in line]
    assert len(reasons) == 2 and all(len(line) < 400 for line in reasons)  # the two edited days, named by their arguments file
    built.snakemake()
    assert "raw tree unchanged since results/ was last built (8 files)" in output_of(built.snakemake("-n"))


def test_undated_rejects_are_listed_with_a_null_date_and_make_no_day(built):
    manifest = pq.read_table(built.results / "02_stage/_manifest/manifest.parquet").to_pylist()
    junk = [row for row in manifest if row["source_file"] == "notes/junk.csv"]
    assert len(junk) == 1 and junk[0]["status"] == "reject" and junk[0]["date"] is None and junk[0]["reason"]
    assert "notes/junk.csv" in (built.results / "02_stage/_manifest/rejects.csv").read_text()
    days = {p.name for p in (built.results / "02_stage/_batches").iterdir()}
    figures = {p.name for p in (built.results / "04_report/iv_days").rglob("*.png")}
    assert days == {f"date={d}" for d in SANTIAGO_NOON} and figures == {f"date={d}.png" for d in SANTIAGO_NOON}
    assert len(manifest) == 8


def test_config_values_as_typed_on_the_command_line(built):
    for typed in ("figures=false", "figures=False"):
        (built.raw_root / "2025-09-10/IV2025-09-10_2.csv").write_text("now broken\n")  # gives the day work to do
        assert "draw_iv" not in built.planned_jobs("--config", typed)
    assert built.planned_jobs("--config", "segmentation={dv_threshold: 0.002}")["stage_batch"] == 2
    result = built.snakemake("-n", "--config", "figures=maybe", check=False)
    assert result.returncode != 0 and "figures: 'maybe' is not accepted; use true or false" in output_of(result)


def test_editing_the_package_reruns_the_rules_whose_code_changed(built, tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    shutil.copytree(codehash.PACKAGE_DIR, package / "nanolab", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("PYTHONPATH", str(package))  # snakemake and its jobs import this copy
    assert built.planned_jobs() == {}  # same source, same fingerprints
    with open(package / "nanolab/segment.py", "a") as handle:
        handle.write("\n# a change to segmentation\n")
    result = built.snakemake("-n")
    assert "code changed since results/ was last built: nanolab.segment" in output_of(result)
    args_files = re.findall(r"Updated input files: (\S+/args/stage_batch/\S+\.args)", output_of(result))
    assert len(args_files) == 2 and all("code of nanolab batch: " in (built.path / f).read_text() for f in args_files)
    assert built.planned_jobs() == downstream_of_batches(2)


def files_of(results: Path, folder: str) -> dict[str, tuple[int, bytes]]:
    """{path: (mtime, bytes)} of the data files under `results/<folder>` (no reuse records)."""
    found = (p for p in (results / folder).rglob("*") if p.is_file() and p.suffix in (".parquet", ".png", ".csv") and "_records" not in str(p))
    return {str(p.relative_to(results)): (p.stat().st_mtime_ns, p.read_bytes()) for p in found}


@pytest.mark.parametrize(
    ("module", "reruns", "untouched", "rewritten"),
    [
        # segmentation code: re-segments and what follows, never restages (every staged file byte- and mtime-identical)
        (
            "segment.py",
            {"stage_batch", "analyse_iv", "draw_iv", "lab_analysis", "lab_figures"},
            ["02_stage/raw_measurements"],
            ["03_intermediate/iv_segments"],
        ),
        # DAG-time modules: no job at all, so no analysis or figure job
        ("plan.py", set(), ["02_stage", "03_intermediate", "04_analysis", "04_report"], []),
        ("catalog.py", set(), ["02_stage", "03_intermediate", "04_analysis", "04_report"], []),
        # the analysis: it and what depends on it, nothing upstream
        ("analysis.py", {"analyse_iv", "draw_iv", "lab_analysis", "lab_figures"}, ["02_stage", "03_intermediate"], ["04_analysis/iv_stats"]),
    ],
)
def test_a_code_change_reruns_exactly_the_jobs_and_outputs_of_that_code(built, tmp_path, monkeypatch, module, reruns, untouched, rewritten):
    package = tmp_path / "pkg"
    shutil.copytree(codehash.PACKAGE_DIR, package / "nanolab", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("PYTHONPATH", str(package))  # snakemake and its jobs import this copy
    before = {folder: files_of(built.results, folder) for folder in untouched + rewritten}
    assert all(before.values())
    with open(package / "nanolab" / module, "a") as handle:
        handle.write("\nCHANGED = 1  # a one-line change\n")
    planned = built.planned_jobs()
    assert set(planned) - {"manifests", "landing_page", "all"} == reruns
    built.snakemake()
    for folder in untouched:
        assert files_of(built.results, folder) == before[folder], folder
    for folder in rewritten:
        after = files_of(built.results, folder)
        assert after.keys() == before[folder].keys() and all(after[p][0] != before[folder][p][0] for p in after), folder
    assert built.planned_jobs() == {}


def test_one_day_is_reprocessed_without_touching_the_others(built):
    for day in SANTIAGO_NOON:
        path = built.raw_root / day / f"IV{day}_1.csv"
        path.write_text(path.read_text().replace("\n0.0", "\n0.00000001", 1))
    other_day = {p: m for p, m in parquet_files(built.results).items() if "date=2025-09-11" in p}
    planned = downstream_of_batches(1)
    assert built.planned_jobs("--config", "days=2025-09-10") == planned
    built.snakemake("--config", "days=2025-09-10")
    assert {p: m for p, m in parquet_files(built.results).items() if "date=2025-09-11" in p} == other_day
    manifest = pq.read_table(built.results / "02_stage/_manifest/manifest.parquet")
    assert manifest.num_rows == 8  # both days still listed
    err = output_of(built.snakemake("-n"))
    assert "1 edited" in err and "edited: 2025-09-11/IV2025-09-11_1.csv" in err  # the other day still waits
    assert built.planned_jobs()["stage_batch"] == 1


def test_forcing_one_day_rewrites_that_days_files_and_leaves_every_other_days_untouched(built):
    def of_day(day: str) -> dict[str, int]:
        found = (p for p in built.results.rglob("*") if p.is_file() and f"date={day}" in str(p) and not {"_records", "_drawn"} & set(p.parts))
        return {str(p.relative_to(built.results)): p.stat().st_mtime_ns for p in found}

    forced, other = of_day("2025-09-10"), of_day("2025-09-11")
    kinds = {path.split("/")[1] for path in other}
    assert {"raw_measurements", "iv_segments", "iv_stats", "hysteresis_subtracted", "chip_history", "iv_days", "lab_days"} <= kinds
    built.snakemake("--forceall", "--config", "days=2025-09-10")
    assert of_day("2025-09-11") == other  # month and lab jobs ran, but redid only the forced day
    after = of_day("2025-09-10")
    redone = [p for p in after if not p.startswith("04_report/tables/")]  # pages are made every run, written when they change
    assert after.keys() == forced.keys() and redone and all(after[p] != forced[p] for p in redone)
    assert built.planned_jobs() == {}


def test_no_rule_has_params_snakemake_would_compare(built):
    """Snakemake imports pandas to compare params (~0.7 s every run, a no-op included): every setting
    reaches its job through an arguments file (an input), so no job records a param."""
    records = [json.loads(path.read_text()) for path in (built.path / ".snakemake/metadata").iterdir()]
    assert len(records) > 5 and all(record["params"] == [] for record in records)


def test_a_days_run_leaves_other_months_alone_and_the_next_full_run_has_nothing_to_do(tmp_path):
    """The month jobs read every month's tables; in a days=… run the other months' are inputs as they are on
    disk, never forced, and the inputs are the full run's, so the full run after it has nothing to do."""
    wd = Workdir(tmp_path / "work", tmp_path / "raw")
    wd.path.mkdir()
    for day, noon in {"2025-08-29": 1756483200.0, "2025-09-10": SANTIAGO_NOON["2025-09-10"]}.items():
        write_run(wd.raw_root / day / f"IV{day}_1.csv", "IV", noon, 67)
    wd.write_config()
    wd.snakemake()

    def august() -> dict[str, int]:  # the lab tables are one job of every day: forced, it redoes the forced days only
        return {p: m for p, m in parquet_files(wd.results).items() if "2025-08" in p}

    before = august()
    assert any(p.startswith("04_analysis/iv_stats/date=2025-08") for p in before) and any("03_intermediate" in p for p in before)
    forced = wd.planned_jobs("--forceall", "--config", "days=2025-09-10")
    assert forced["analyse_iv"] == forced["draw_iv"] == forced["stage_batch"] == 1  # September's only
    wd.snakemake("--forceall", "--config", "days=2025-09-10")
    assert august() == before
    assert wd.planned_jobs() == {}


def test_a_results_folder_inside_the_raw_tree_stops_before_any_job(tmp_path):
    """A clone or work folder inside the raw tree: its results/ tables were read as raw files (every run found
    new rejects, so none was a no-op) and every run wrote under raw_root."""
    raw = tmp_path / "raw"
    write_run(raw / "2025-09-10/IV2025-09-10_1.csv", "IV", SANTIAGO_NOON["2025-09-10"], seed=1)
    inside = Workdir(raw / "analysis", raw)
    inside.path.mkdir()
    inside.write_config()
    result = inside.snakemake("-n", check=False)
    assert result.returncode != 0 and "Job stats" not in output_of(result) and "Traceback" not in output_of(result)
    assert f"results/ ({inside.results}) and raw_root {raw} overlap" in output_of(result)
    assert sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file() and ".snakemake" not in p.parts) == [
        "2025-09-10/IV2025-09-10_1.csv",
        "analysis/config.yaml",
    ]
    outside = Workdir(tmp_path / "work", raw)
    outside.path.mkdir()
    outside.write_config()
    outside.snakemake()  # beside the tree: runs
