# Bookkeeping done once at DAG-build time: validate the config, catalog the raw tree,
# plan the batches, and the input functions the rules use.
import sys
from pathlib import Path

from snakemake.utils import validate

from nanolab import catalog
from nanolab.config import config_problems

CONFIG_SCHEMA = Path(workflow.basedir, "workflow/schemas/config.schema.yaml")
if problems := config_problems(config, CONFIG_SCHEMA):
    raise WorkflowError("invalid config: " + "; ".join(problems))
validate(config, schema=str(CONFIG_SCHEMA))  # fills in the schema's defaults

RAW_ROOT = Path(config["raw_root"])
STAGE = "results/02_stage"
SEGMENTS = "results/03_intermediate"
SCHEMA_FILE = str(Path(workflow.basedir, config["procedure_schema"]))
SEGMENTATION = config["segmentation"]
ANALYSIS = "results/04_analysis"
ANALYSIS_SETTINGS = config["analysis"]

if not RAW_ROOT.is_dir():
    raise WorkflowError(
        f"raw_root {str(RAW_ROOT)!r} is not a folder (set it in config.yaml or with --config raw_root=…)"
    )

# Jobs are batches (one per measurement day, split only when a day exceeds batch_size), never one
# per file: a spawned Python job costs ~0.3 s CPU, staging and segmenting one file ~3-5 ms.
# Outputs: each job declares its two batch manifests (stage, segments); the per-run Parquet files
# they list are written beside them. Declaring those 10,000 files made a no-op rerun 4.3 s instead of ~1 s, and
# a directory() per job cannot work because Hive partitions are by procedure, not by day.
# Inputs: the raw files are passed as params with a content fingerprint, not declared as input
# files. Declared, Snakemake 9's scheduler stats every input of every ready job on each
# scheduling pass: 1.7 M stat calls and 74 s of its own CPU for a lab-scale run (bench/).
# The fingerprint changes when a file is added, removed or edited, not when it is only touched.
CATALOG = catalog.scan(
    RAW_ROOT, config["timezone"], Path(".snakemake/nanolab/raw_catalog.json")
)
BATCHES = catalog.plan_batches(CATALOG, config["batch_size"])


wildcard_constraints:
    date=r"\d{4}-\d{2}-\d{2}",
    batch=r"\d+-of-\d+",
    month=r"\d{4}-\d{2}",


def get_stage_raw_files(wildcards):
    """The raw files of one (day, batch) staging job."""
    return [
        str(RAW_ROOT / f.source_file)
        for f in BATCHES[(wildcards.date, wildcards.batch)]
    ]


def get_stage_fingerprint(wildcards):
    """Content fingerprint of the batch: a params change whenever a member is added, removed or edited."""
    return catalog.fingerprint(BATCHES[(wildcards.date, wildcards.batch)])


def get_stage_batch_manifests(wildcards=None):
    return [
        f"{STAGE}/_batches/date={day}/batch={label}.parquet" for day, label in BATCHES
    ]


def get_segment_batch_manifests(wildcards=None):
    """Every batch job writes a segment manifest too (empty without IV runs)."""
    return [
        f"{SEGMENTS}/_batches/date={day}/batch={label}.parquet"
        for day, label in BATCHES
    ]


def get_segment_batch_manifests_of_day(wildcards):
    return [m for m in get_segment_batch_manifests() if f"/date={wildcards.date}/" in m]


def iv_days(wildcards=None):
    """Measurement days with IV runs: the days the analysis and the figures cover."""
    return sorted(
        {
            day
            for (day, _), files in BATCHES.items()
            if any(f.proc == "IV" for f in files)
        }
    )


def iv_months():
    """Analysis and figure jobs are per month: their imports (pyarrow ~0.35 s, matplotlib ~1 s CPU)
    are paid once for ~30 days, and a day always stays in its month."""
    return sorted({day[:7] for day in iv_days()})


def get_points_of_month(wildcards):
    """The `_points` files of the month's batches holding IV runs."""
    return [
        f"{SEGMENTS}/_points/date={day}/batch={label}.parquet"
        for (day, label), files in BATCHES.items()
        if day.startswith(f"{wildcards.month}-") and any(f.proc == "IV" for f in files)
    ]


def get_segment_batch_manifests_of_month(wildcards):
    return [
        m.replace("/_points/", "/_batches/") for m in get_points_of_month(wildcards)
    ]


def get_analysis():
    return [f"{ANALYSIS}/_batches/month={month}.parquet" for month in iv_months()]


def get_figures():
    """A figure and a runs table per day with IV runs, one job per month, when the config asks."""
    if not config["figures"]:
        return []
    return [
        f"results/04_report/{kind}/month={month}"
        for month in iv_months()
        for kind in ("iv_days", "iv_day_runs")
    ]


def get_final_outputs():
    return [*rules.manifests.output, *get_analysis(), *get_figures()]


def month_mem_mb(wildcards, input):
    """A month's points (~2 MB per day of 130 IV runs) are read one day at a time."""
    return 1000 + 2 * len(input)


def _root_of(output_path):
    """results/02_stage or results/03_intermediate, from a manifest's path
    (`<root>/_batches/date=…/batch=….parquet` or `<root>/_manifest/….parquet`)."""
    path = Path(output_path)
    return str(
        path.parents[2] if path.parent.name.startswith("date=") else path.parents[1]
    )


def get_stage_root(wildcards, output):
    return _root_of(output.stage)


def get_segment_root(wildcards, output):
    return _root_of(output.segments)


def get_batch_mb(wildcards):
    return sum(max(f.size, 0) for f in BATCHES[(wildcards.date, wildcards.batch)]) / 1e6


def batch_mem_mb(wildcards):
    """Files stream in 8 MB blocks (a 200 MB file peaks at ~420 MB), so memory barely grows with the batch."""
    return 1000 + int(get_batch_mb(wildcards) / 100)


def batch_runtime(wildcards):
    """Minutes, generous: ~3 ms per small file plus start-up; large files at ~60 MB/s."""
    return 5 + int(get_batch_mb(wildcards) / 1000)


def manifests_mem_mb(wildcards, input):
    """Batch manifests are small; the merged ones grow ~1 MB per 10 batches."""
    return 1000 + len(input) // 10


def print_summary():
    summary = Path("results/summary.txt")
    if summary.exists():
        print(summary.read_text(), end="")


def print_summary_if_nothing_was_done():
    """Snakemake calls onsuccess only after jobs ran; a run with nothing to do returns before it.
    Called at exit: prints the summary after "Nothing to be done" (the check above vouched for it).
    """
    dag = workflow.dag
    if (
        workflow.is_main_process
        and workflow.scheduler is not None
        and dag is not None
        and len(dag) == 0
        and not workflow.dryrun
    ):
        print_summary()


# ---- output integrity: begin -------------------------------------------------------------------
# The per-run Parquet files are not declared outputs (see above), so Snakemake cannot see one go
# missing or get truncated; truncated in place, it does not notice a declared output either. Once,
# while the DAG is built and before any job runs, nanolab.integrity stats every file each batch
# manifest lists against the size it was written with (0.13 s for 40,000 files; opening each would
# take 8.5 s) and tail-checks the declared Parquet/PNG outputs. Every job has one extra declared input,
# its check file: 'whole' with mtime 0 normally; rewritten with the damaged files' names when its
# outputs are damaged, so it is newer than the job's output and Snakemake's mtime trigger reruns the
# job and everything downstream ("Reason: Updated input files: .snakemake/nanolab/checks/…").
# Only in the main snakemake process: a cluster job's own snakemake must not re-judge a running tree.
from nanolab import integrity

OUTPUT_CHECKS = ".snakemake/nanolab/checks"
MERGED_STAGE_MANIFEST = f"{STAGE}/_manifest/manifest.parquet"
OUTPUT_DAMAGE = None  # {job output: [Damage]}, computed on the first call of an input function below


def output_damage():
    global OUTPUT_DAMAGE
    if OUTPUT_DAMAGE is None:
        OUTPUT_DAMAGE = find_output_damage() if workflow.is_main_process else {}
    return OUTPUT_DAMAGE


def find_output_damage():
    """Check every job's outputs, write every check file, name the damaged ones on stderr."""
    batches = dict.fromkeys(get_stage_batch_manifests(), "stage")
    batches |= dict.fromkeys(get_segment_batch_manifests(), "segment")
    damage = integrity.check_batch_manifests(
        batches, Path(OUTPUT_CHECKS, "listed_outputs.json")
    )
    record = str(Path(MERGED_STAGE_MANIFEST).parent / integrity.OUTPUT_SIZES)
    sizes = integrity.load_output_sizes(record)
    merged = list(rules.manifests.output)
    damage[MERGED_STAGE_MANIFEST] = integrity.check_declared(merged, sizes or {})
    if sizes is None and any(Path(p).exists() for p in merged):
        damage[MERGED_STAGE_MANIFEST].append(integrity.Damage(record, None, None))
    for stage_manifest in get_stage_batch_manifests():  # the batch job's points file
        points = stage_manifest.replace(STAGE, SEGMENTS, 1).replace(
            "/_batches/", "/_points/"
        )
        damage[stage_manifest] += integrity.check_declared([points], {})
    for month in iv_months():
        analysis = f"{ANALYSIS}/_batches/month={month}.parquet"
        damage |= integrity.check_batch_manifests({analysis: "analysis"}, None)
        figures = [f for f in get_figures() if f"/month={month}" in f]
        damage[figures_output(month)] = integrity.check_declared(figures, {})
        if figures and all(
            Path(f).is_dir() for f in figures
        ):  # one file per day in each folder
            days = [day for day in iv_days() if day.startswith(month)]
            expected = [
                f"{f}/date={day}{ext}"
                for f, ext in zip(figures, (".png", ".csv"))
                for day in days
            ]
            damage[figures_output(month)] += integrity.find_damage(
                integrity.Expected(path, None) for path in expected
            )
    for output, found in damage.items():
        integrity.write_check(integrity.check_file(OUTPUT_CHECKS, output), found)
        if found:
            print(integrity.damage_line(output, found), file=sys.stderr)
    return {output: found for output, found in damage.items() if found}


def checked(output):
    """The check file of the job writing `output`, after the check has run."""
    output_damage()
    return integrity.check_file(OUTPUT_CHECKS, output)


def get_stage_output_check(wildcards):
    """One job writes the batch's stage and segment manifests: both checks are its inputs."""
    batch = f"_batches/date={wildcards.date}/batch={wildcards.batch}.parquet"
    return [checked(f"{STAGE}/{batch}"), checked(f"{SEGMENTS}/{batch}")]


def get_manifests_output_check(wildcards):
    return checked(MERGED_STAGE_MANIFEST)


def get_analysis_output_check(wildcards):
    return checked(f"{ANALYSIS}/_batches/month={wildcards.month}.parquet")


def figures_output(month):
    return f"results/04_report/iv_days/month={month}"


def get_figures_output_check(wildcards):
    return checked(figures_output(wildcards.month))

# ---- output integrity: end ---------------------------------------------------------------------
