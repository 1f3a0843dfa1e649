"""Each job's arguments: a setting reaches exactly the jobs whose arguments hold it (so a change reruns
only them), and what the workflow writes is what each job's parser reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from nanolab import arguments, plan
from nanolab.catalog import RawFile
from nanolab.cli import parser
from nanolab.config import checked_config
from nanolab.procedures import IV
from nanolab.schema import read_yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG_SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
RAW_ROOT = Path("/data/raw tree")
DUPLICATES = [{"source_file": "2025-09-11/copy.csv", "run_id": "r2", "date": "2025-09-11", "duplicate_of": "2025-09-10/IV_1.csv"}]


def raw_file(source: str, proc: str, date: str) -> RawFile:
    return RawFile(source, 1000, 0, proc, date, f"{len(source):016x}", f"1000:{len(source)}", None, "meta")


def lab_plan(days: list[str] | None = None) -> plan.Plan:
    files = [raw_file("2025-09-10/IV_1.csv", "IV", "2025-09-10"), raw_file("2025-10-02/It_1.csv", "It", "2025-10-02")]
    files.append(raw_file("2025-10-03/IV_1.csv", "IV", "2025-10-03"))
    return plan.build(RAW_ROOT, Path("/work/results"), files, frozenset({"IV", "It"}), 400, days or [])


def bundled_config() -> dict:
    config, problems = checked_config(read_yaml(REPO / "config.yaml"), CONFIG_SCHEMA)
    assert problems == []
    return config


def every_job(config: dict, the_plan: plan.Plan) -> dict[tuple[str, str], list[object]]:
    raw_lists = {key: Path("lists") / f"{key[0]}_{key[1]}.json" for key in the_plan.batches}
    return arguments.job_args(config, the_plan, DUPLICATES, raw_lists, ".snakemake/nanolab/undated/x.json", "/opt/nanolab")


def changed_jobs(change) -> set[tuple[str, str]]:
    """The jobs whose arguments differ once `change(config)` edited a copy of the bundled config."""
    config, the_plan = bundled_config(), lab_plan()
    changed = copy.deepcopy(config)
    change(changed)
    before, after = every_job(config, the_plan), every_job(changed, the_plan)
    assert before.keys() == after.keys()
    return {job for job in before if before[job] != after[job]}


STAGE_JOBS = {("stage_batch", "2025-09-10_1-of-1"), ("stage_batch", "2025-10-02_1-of-1"), ("stage_batch", "2025-10-03_1-of-1")}


def test_every_batch_of_the_tree_and_every_shared_rule_has_arguments():
    jobs = every_job(bundled_config(), lab_plan(days=["2025-09-10"]))  # a days=… run still keeps every job's file
    shared = {(rule, "all") for rule in plan.RULE_COMMANDS if rule != "stage_batch"}
    assert set(jobs) == STAGE_JOBS | shared


def test_a_geometry_change_changes_only_the_lab_analysis_arguments():
    assert changed_jobs(lambda c: c["lab_analysis"].update(channel_length_um=96)) == {("lab_analysis", "all")}
    assert changed_jobs(lambda c: c["lab_analysis"]["chips"].update({"Alisson 67": {"channel_width_um": 48}})) == {("lab_analysis", "all")}


def test_the_history_order_changes_the_lab_analysis_and_lab_figures_arguments():
    assert changed_jobs(lambda c: c["lab_analysis"].update(history_order=5)) == {("lab_analysis", "all"), ("lab_figures", "all")}


def test_exclude_duplicates_changes_only_the_analysis_and_manifests_arguments():
    assert changed_jobs(lambda c: c["analysis"].update(exclude_duplicates=True)) == {("analyse_iv", "all"), ("manifests", "all")}


def test_a_segmentation_change_changes_only_the_batch_jobs_arguments():
    assert changed_jobs(lambda c: c["segmentation"].update(dv_threshold=0.002)) == STAGE_JOBS


def test_figures_off_changes_only_the_landing_page_arguments():
    assert changed_jobs(lambda c: c.update(figures=False)) == {("landing_page", "all")}


def test_the_timezone_reaches_the_jobs_that_date_or_label_days():
    expected = STAGE_JOBS | {("draw_iv", "all"), ("landing_page", "all")}
    assert changed_jobs(lambda c: c.update(timezone="Europe/Berlin")) == expected


def test_copies_are_listed_for_the_manifests_job_and_left_out_of_the_analysis_only_when_asked():
    config = bundled_config()
    assert "--exclude-runs" not in IV.analysis.arguments(config, DUPLICATES)
    assert arguments.duplicates_args(config, DUPLICATES) == ["--duplicates", json.dumps(DUPLICATES)]
    config["analysis"]["exclude_duplicates"] = True
    assert IV.analysis.arguments(config, DUPLICATES)[-2:] == ["--exclude-runs", json.dumps(DUPLICATES)]
    assert arguments.duplicates_args(config, DUPLICATES)[-1] == "--duplicates-excluded"


def test_the_manifests_job_keeps_the_whole_trees_months_in_a_days_run():
    args = arguments.manifests_args(bundled_config(), lab_plan(days=["2025-09-10"]), "undated.json", [])
    months = json.loads(args[args.index("--months") + 1])
    assert months == {"IV": ["2025-09", "2025-10"]}  # 2025-10-02 holds no IV file; 2025-10-03 does


@pytest.mark.parametrize("exclude", [False, True])
def test_the_batch_and_manifests_arguments_parse_as_the_jobs_read_them(tmp_path, exclude):
    config = bundled_config()
    config["analysis"]["exclude_duplicates"] = exclude
    stage = arguments.stage_args(config, RAW_ROOT, Path("lists/a b.json"))
    tail = ["--schema", "s.yaml", "--stage-root", "st", "--segment-root", "se",
            "--stage-output", "a", "--segment-output", "b", "--points-output", "c"]  # fmt: skip
    parsed = parser().parse_args(["batch", *map(str, stage), *tail])
    assert str(parsed.raw_root) == str(RAW_ROOT) and parsed.dv_threshold == config["segmentation"]["dv_threshold"]
    assert str(parsed.raw_files_from) == "lists/a b.json"
    manifests = arguments.manifests_args(config, lab_plan(), "undated.json", DUPLICATES)
    outputs = ["--stage-root", "st", "--segment-root", "se", "--stage-manifest", "a", "--segment-manifest", "b", "--rejects", "c",
               "--summary", "d", "--staging-summary", "e", "--segmentation-qc", "f", "--segment-points", "g"]  # fmt: skip
    parsed = parser().parse_args(["manifests", *map(str, manifests), *outputs])
    assert str(parsed.undated_rejects) == "undated.json" and parsed.months == {"IV": ["2025-09", "2025-10"]}
    assert json.loads(parsed.duplicates) == DUPLICATES and parsed.duplicates_excluded is exclude


def test_an_arguments_file_names_its_job_code_and_libraries_first():
    comment = arguments.file_comment("draw_iv", "all", "0123abcd", {"python": "3.11.7", "matplotlib": "3.9.2"})
    assert comment == "draw_iv all; code of nanolab.plots: 0123abcd; python 3.11.7, matplotlib 3.9.2"


def test_a_batch_list_holds_its_files_absolute_paths():
    files = [raw_file("2025-09-10/IV 1.csv", "IV", "2025-09-10"), raw_file("2025-09-10/It_2.csv", "It", "2025-09-10")]
    assert json.loads(arguments.raw_list_text(RAW_ROOT, files)) == ["/data/raw tree/2025-09-10/IV 1.csv", "/data/raw tree/2025-09-10/It_2.csv"]
