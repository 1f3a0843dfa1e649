# Built once while the DAG is built: the config, validated; the plan (nanolab.plan) from the raw catalog;
# every job's files and the output check (nanolab.wiring, one frozen object). Then the input functions the
# rules use: one line each, reading the wiring, writing nothing. Hooks into Snakemake's internals live in
# nanolab.snakehooks; output paths in nanolab.layout; the analysed procedures in nanolab.procedures.
from pathlib import Path

import snakemake
from snakemake.logging import logger
from snakemake.utils import validate

from nanolab import catalog, changes, integrity, layout, plan, snakehooks, wiring
from nanolab.config import checked_config, validated, value_notes
from nanolab.plan import Stop
from nanolab.procedures import ANALYSED

CONFIG_SCHEMA = Path(workflow.basedir, "workflow/schemas/config.schema.yaml")
RESULTS = Path("results")


def typed_config(config):
    """The config with command-line strings read as the schema's types (`figures=false`) and the schema's
    defaults filled in, or a stop with one line per bad value naming the key, the value and the form.
    """
    coerced, problems = checked_config(config, CONFIG_SCHEMA)
    if problems:
        raise Stop("invalid config: " + "; ".join(problems))
    typed = {
        key: value for key, value in config.items() if "." not in str(key)
    } | coerced
    try:
        validate(typed, schema=str(CONFIG_SCHEMA))  # fills in the schema's defaults
    except WorkflowError as error:
        raise Stop(f"invalid config: {str(error).splitlines()[0]}") from None
    return typed


config.update(
    validated(
        config,
        CONFIG_SCHEMA,
        typed_config,
        wiring.LISTS / "valid_config.json",
        snakemake.__version__
        + Path(workflow.basedir, "workflow/rules/common.smk").read_text(),
    )
)
for dotted in [key for key in config if "." in str(key)]:
    del config[dotted]  # merged into its mapping by typed_config()


def checked_raw_root(raw_root):
    """raw_root normalised (absolute, no trailing slash, symlinks resolved); stops before any job when it
    is not a folder or when results/ was built from another raw tree (nothing is pruned).
    """
    normalised = changes.normalise_root(raw_root)
    if not Path(normalised).is_dir():
        raise Stop(
            f"raw_root {str(raw_root)!r} is not a folder (set it in lab.yaml, config.yaml or with --config raw_root=…)"
        )
    if problem := changes.results_inside_root(
        RESULTS, normalised
    ) or changes.root_mismatch(RESULTS, normalised):
        raise Stop(problem)
    return Path(normalised)


# Jobs are batches (one per measurement day, split only when a day exceeds batch_size), never one per
# file: a spawned Python job costs ~0.3 s CPU, staging and segmenting one file ~3-5 ms. A batch's raw
# files reach its job as a content-named list, not as declared inputs (docs/design.md: Snakemake 9's
# scheduler stats every input of every ready job on each pass, 74 s at lab scale); the per-run Parquet
# files are listed in batch manifests, not declared (a no-op 4.3 s instead of ~1 s).
RAW_ROOT = checked_raw_root(config["raw_root"])
SCHEMA_FILE = str(Path(workflow.basedir, config["procedure_schema"]))
SCHEMA_DOCUMENT, SCHEMA_COPY = wiring.procedure_schema(SCHEMA_FILE)
PLAN = plan.build(
    RAW_ROOT,
    Path.cwd() / RESULTS,
    catalog.scan(RAW_ROOT, config["timezone"], wiring.LISTS / "raw_catalog.json"),
    plan.schema_procedures(SCHEMA_DOCUMENT),
    config["batch_size"],
    config["days"],
)
W = wiring.build(config, PLAN, SCHEMA_COPY, workflow.basedir)
PREVIOUS_BUILD = changes.load_tree(RESULTS)
# The output check, once; a cluster job's own snakemake must not re-judge a running tree.
if workflow.is_main_process:
    W.check_outputs()
# What changed since the last build, before the job list of every run and dry run (Snakemake's stream)
logger.info("\n".join(wiring.change_lines(W, PREVIOUS_BUILD) + value_notes(config)))


def print_summary():
    """The summary, from the run folder's results/ (at exit Snakemake is back in the launch folder)."""
    if (summary := PLAN.results / "summary.txt").exists():
        print(summary.read_text(), end="")


wildcard_constraints:
    # a days=… run: other days' batch manifests and months match no rule, so they are used as they are
    date="|".join(sorted(PLAN.days)) if PLAN.days else r"\d{4}-\d{2}-\d{2}",
    batch=r"\d+-of-\d+",
    month="|".join(PLAN.any_months) if PLAN.days else r"\d{4}-\d{2}",


# ---- input functions: one line each ------------------------------------------------------------


def checked(output):
    return lambda wildcards: W.checked(output.format(**wildcards))


def shared_args(rule):
    return lambda wildcards: W.shared_args(rule)


def get_stage_args(wildcards):
    return W.stage_args(wildcards.date, wildcards.batch)


def get_stage_checks(wildcards):
    return [
        W.checked(path)
        for path in layout.batch_outputs(wildcards.date, wildcards.batch)[:2]
    ]


def month_batches(procedure, position):
    return lambda wildcards: W.month_batches(procedure, wildcards.month, position)


def output_root(name, up):
    """A job's output root from one of its outputs (`results/02_stage/_batches/date=…/batch=….parquet`)."""
    return lambda wildcards, output: str(Path(output[name]).parents[up])


def get_drawn_folder(wildcards, output):
    return layout.drawn_folder(output.figures)


def drawn_beside(name, folder):
    """Where a figure job keeps its drawings: beside its declared folders, which Snakemake empties."""
    return lambda wildcards, output: str(Path(output[name]).parent / folder)


def get_batch_mb(wildcards):
    return (
        sum(max(f.size, 0) for f in PLAN.batches[(wildcards.date, wildcards.batch)])
        / 1e6
    )


def batch_mem_mb(wildcards):
    """Files stream in 8 MB blocks (a 200 MB file peaks at ~420 MB): memory barely grows with the batch."""
    return 1000 + int(get_batch_mb(wildcards) / 100)


def batch_runtime(wildcards):
    """Minutes, generous: ~3 ms per small file plus start-up; large files at ~60 MB/s."""
    return 5 + int(get_batch_mb(wildcards) / 1000)


def month_mem_mb(wildcards, input):
    """A month's points (~2 MB per day of 130 IV runs) are read one day at a time."""
    return 1000 + 2 * len(input)


def manifests_mem_mb(wildcards, input):
    """Batch manifests are small; the merged ones grow ~1 MB per 10 batches."""
    return 1000 + len(input) // 10
