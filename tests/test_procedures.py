"""The registry of analysed procedures (nanolab.procedures) is what the plan, the rules, the jobs'
arguments, the pruning and load_analysis derive from: it must say what the job modules really write."""

from __future__ import annotations

from nanolab import analysis, lab_analysis_job, layout, plan, procedures
from nanolab.procedures import ANALYSED, IV


def test_ivs_entry_names_the_kinds_its_job_modules_write():
    """The modules keep their own tuples (importing the registry would put every procedure's entry into
    IV's code fingerprint, so adding IVg would rerun IV's analysis); this keeps them equal."""
    assert IV.day_kinds == analysis.DAY_KINDS
    assert IV.further_kinds == lab_analysis_job.LAB_KINDS
    assert procedures.analysis_kinds() == (*analysis.DAY_KINDS, *lab_analysis_job.LAB_KINDS)


def test_every_rule_and_reuse_kind_of_a_procedure_comes_from_its_entry():
    for procedure in ANALYSED.values():
        for job in procedure.jobs:
            assert plan.RULE_COMMANDS[job.rule] == job.module
            assert plan.REUSE_CODE[job.rule] == {job.kind: job.module}
            assert ("matplotlib" in plan.rule_libraries(job.rule)) is job.draws
    assert set(plan.RULE_COMMANDS) == {"stage_batch", "manifests", "landing_page", *procedures.JOBS}


def test_a_procedures_paths_are_its_slugs():
    assert layout.analysis_manifest(IV.slug, "2025-09") == "results/04_analysis/_batches/iv/month=2025-09.parquet"
    assert layout.figure_folders(IV.slug, "2025-09") == ("results/04_report/iv_days/month=2025-09", "results/04_report/iv_day_runs/month=2025-09")
    assert layout.drawn_folder(layout.figure_folders(IV.slug, "2025-09")[0]) == "results/04_report/_drawn/iv_days/month=2025-09"
    assert layout.month_table(IV.slug, "2025-09") == "results/04_report/iv_fits/month=2025-09.csv"


def test_the_landing_page_calls_staged_only_what_no_registered_analysis_reads():
    import pyarrow as pa
    from nanolab.landing import staged_only

    stage = pa.table({"proc": ["IV", "IVg", "It", "LaserCalibration", "Tt"], "status": ["ok"] * 5})
    assert procedures.used() == {"IV", "LaserCalibration"}
    assert staged_only(stage) == {"IVg": 1, "It": 1, "Tt": 1}
