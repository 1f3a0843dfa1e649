# Wiring done once at DAG-build time: validate the config, check that results/ belongs to this raw
# tree, build the plan (nanolab.plan) from the raw catalog, write the jobs' arguments files (built by
# nanolab.arguments), print what changed; then the input functions the rules use (one line each,
# reading the plan) and the output check (nanolab.checks). New arguments go in nanolab.arguments.
import gc
import json
from functools import cache
from pathlib import Path

import snakemake
from snakemake.logging import logger
from snakemake.utils import validate

from nanolab import (
    arguments,
    catalog,
    changes,
    checks,
    codehash,
    integrity,
    jobargs,
    plan,
    versions,
)
from nanolab.config import checked_config, validated, value_notes
from nanolab.plan import Stop
from nanolab.schema import read_yaml, schema_copy

CONFIG_SCHEMA = Path(workflow.basedir, "workflow/schemas/config.schema.yaml")
RESULTS = Path("results")
LISTS = Path(".snakemake/nanolab")


def typed_config(config):
    """The config with command-line strings read as the schema's types (`figures=false`) and the
    schema's defaults filled in, or a stop with one line per bad value naming the key, the value and
    the accepted form."""
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
        LISTS / "valid_config.json",
        snakemake.__version__
        + Path(workflow.basedir, "workflow/rules/common.smk").read_text(),
    )
)
for dotted in [key for key in config if "." in str(key)]:
    del config[dotted]  # merged into its mapping by typed_config()


def checked_raw_root(raw_root):
    """raw_root normalised (absolute, no trailing slash, symlinks resolved); stops before any job when
    it is not a folder or when results/ was built from another raw tree (nothing is pruned).
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


def procedure_schema(schema_file):
    """The procedure schema as parsed, and the JSON copy of it the batch jobs read (named by its content:
    no PyYAML import in each job, ~15 ms); or a stop naming the file and the setting."""
    try:
        document = read_yaml(schema_file)
        return document, str(schema_copy(document, LISTS / "schema"))
    except (OSError, ValueError, TypeError) as error:
        raise Stop(
            f"procedure_schema {schema_file} cannot be read ({error}); set procedure_schema in config.yaml"
        ) from None


RAW_ROOT = checked_raw_root(config["raw_root"])
STAGE = plan.STAGE
SEGMENTS = plan.SEGMENTS
ANALYSIS = plan.ANALYSIS
REPORT = plan.REPORT
SCHEMA_FILE = str(Path(workflow.basedir, config["procedure_schema"]))
SCHEMA_DOCUMENT, SCHEMA_COPY = procedure_schema(SCHEMA_FILE)
# The lab analysis (issue 20) is one job over every day (backward subtraction, coercive field, chip
# history) and one figure job.
LAB_ANALYSIS_MANIFEST = f"{ANALYSIS}/_batches/lab_analysis.parquet"
LAB_FIGURES_OUTPUT = f"{REPORT}/lab_days"

# Jobs are batches (one per measurement day, split only when a day exceeds batch_size), never one
# per file: a spawned Python job costs ~0.3 s CPU, staging and segmenting one file ~3-5 ms.
# Outputs: each job declares its two batch manifests (stage, segments); the per-run Parquet files
# they list are written beside them. Declaring those 10,000 files made a no-op rerun 4.3 s instead of ~1 s, and
# a directory() per job cannot work because Hive partitions are by procedure, not by day.
# Inputs: a batch's raw files are listed in a small JSON file named by the batch's content
# fingerprint, and that name is the job's param, not declared input files. Declared, Snakemake 9's
# scheduler stats every input of every ready job on each scheduling pass: 1.7 M stat calls and 74 s
# of its own CPU for a lab-scale run (bench/). The name changes when a file is added, removed or
# edited, not when it is only touched; and a rerun's reason stays one short line.
# Files the catalog knows are rejects (no data rows, unknown procedure, unreadable header) get no
# batch, day or job: the manifests job lists them (nanolab.plan).
PLAN = plan.build(
    RAW_ROOT,
    Path.cwd() / RESULTS,
    catalog.scan(RAW_ROOT, config["timezone"], LISTS / "raw_catalog.json"),
    plan.schema_procedures(SCHEMA_DOCUMENT),
    config["batch_size"],
    config["days"],
)
CATALOG = PLAN.catalog
ALL_BATCHES = PLAN.batches
DAYS = PLAN.days
BATCHES = PLAN.selected_batches


# A copy of a raw file (same bytes under another path) is staged as usual; the manifests job marks it
# (duplicate_of) and counts it, and with analysis.exclude_duplicates the analysis leaves it out.
DUPLICATES = catalog.duplicates(CATALOG, RAW_ROOT)


PREVIOUS_BUILD = changes.load_tree(RESULTS)


# ---- arguments files ---------------------------------------------------------------------------
# Each job's arguments (settings, raw-file list, code fingerprint, library versions) are one input file
# named by its content (nanolab.jobargs): new settings, raw files, code or libraries make a new file and
# rerun the job. The rules have no params of their own: comparing params makes Snakemake import pandas
# (~0.7 s a run).
ARGS = LISTS / "args"


@cache
def raw_list_path(day, label):
    return (
        LISTS / "raw_lists" / plan.raw_list_name(day, label, ALL_BATCHES[(day, label)])
    )


def write_raw_lists(batches):
    """Each batch's raw files (absolute paths), for its staging job to read (checked before the list is
    built: ~0.1 s of path joins at lab scale)."""
    for (day, label), files in batches.items():
        if not raw_list_path(day, label).exists():
            text = arguments.raw_list_text(RAW_ROOT, files)
            jobargs.write_once(raw_list_path(day, label), text)


def write_reject_list(rows):
    """The catalog's rejects' manifest rows, for the manifests job (they have no batch)."""
    text = json.dumps(rows)
    return str(
        jobargs.write_once(
            LISTS / "undated" / jobargs.content_name(len(rows), text), text
        )
    )


write_raw_lists(BATCHES)
UNDATED_LIST = write_reject_list(PLAN.reject_rows())


@cache
def code_versions():
    """{command: fingerprint of the package modules it runs}, cached while the package is unchanged."""
    modules = {m for kinds in plan.REUSE_CODE.values() for m in kinds.values()}
    commands = sorted(set(plan.RULE_COMMANDS.values()) | modules)
    return codehash.code_versions(commands, LISTS / "code_versions.json")


@cache
def library_versions(rule_name):
    return versions.library_versions(plan.rule_libraries(rule_name))


def all_library_versions():
    """{rule: {library: version}}: recorded by a successful run, compared by the next."""
    return {name: library_versions(name) for name in plan.RULE_COMMANDS}


def args_file(rule_name, label, args):
    """(path, content) of a job's arguments file; the first line says what it is for and what made it."""
    code = code_versions()[plan.RULE_COMMANDS[rule_name]]
    libraries = library_versions(rule_name)
    comment = arguments.file_comment(rule_name, label, code, libraries)
    args = [*args, *arguments.code_args(rule_name, code_versions())]
    return jobargs.args_file(ARGS, rule_name, label, comment, args)


def written_args(rule_name, label, args):
    return str(jobargs.write_once(*args_file(rule_name, label, args)))


@cache
def shared_args():
    """{rule: arguments} of the rules whose jobs all take the same arguments (one file per rule)."""
    return arguments.shared_args(
        config, PLAN, DUPLICATES, UNDATED_LIST, workflow.basedir
    )


def all_args_files():
    """Every job's arguments file for the whole raw tree, whichever jobs this run needs."""
    raw_lists = {key: raw_list_path(*key) for key in ALL_BATCHES}
    jobs = arguments.job_args(
        config, PLAN, DUPLICATES, raw_lists, UNDATED_LIST, workflow.basedir
    )
    return {
        str(args_file(rule, label, args)[0]) for (rule, label), args in jobs.items()
    }


def get_stage_args(wildcards):
    label = f"{wildcards.date}_{wildcards.batch}"
    raw_list = raw_list_path(wildcards.date, wildcards.batch)
    return written_args(
        "stage_batch", label, arguments.stage_args(config, RAW_ROOT, raw_list)
    )


def get_shared_args(rule_name):
    """Input function: the arguments file every job of `rule_name` reads."""
    return lambda wildcards: written_args(rule_name, "all", shared_args()[rule_name])


# ---- what changed, and the hooks ---------------------------------------------------------------


def print_changes():
    """Before the job list of every run and dry run: what changed in the raw tree, the package code and
    the libraries since results/ was last built successfully (counts, then up to 10 paths of each kind).
    """
    lines = changes.change_lines(
        PREVIOUS_BUILD,
        {f.source_file: f.content_hash for f in CATALOG},
        str(RAW_ROOT),
        codehash.module_hashes(),
        lambda: {n: codehash.rule_closure(c) for n, c in plan.RULE_COMMANDS.items()},
        all_library_versions(),
    )
    lines += plan.notes(PLAN) + value_notes(config)
    logger.info(
        "\n".join(lines)
    )  # snakemake's own stream: before its job list, -n or not


def record_raw_root():
    """onstart: results/ now belongs to this raw tree (the first run that runs jobs records it)."""
    changes.record_root(RESULTS, str(RAW_ROOT))


def mark_forced_jobs():
    """onstart: a job forced by --forceall, --forcerun or -R redoes its outputs from the raw bytes: its
    check file (a declared input, read by the job) says so, and no reuse record of the forced days (in a
    days=… run those only, so other days' outputs stay as they are) applies. The next run's check
    writes 'whole' again (mtime 0), so nothing reruns because of it."""
    for job in workflow.dag.needrun_jobs():
        if workflow.dag.reason(job).forced:
            for path in job.input:
                if str(path).startswith(f"{OUTPUT_CHECKS}/"):
                    integrity.write_forced(path, DAYS)


def record_build():
    """onsuccess: the raw tree, code and libraries results/ now reflect; stale lists are removed."""
    files = {f.source_file: [f.content_hash, f.date] for f in CATALOG}
    document = changes.tree_after_run(
        PREVIOUS_BUILD, files, codehash.module_hashes(), DAYS, all_library_versions()
    )
    if document != PREVIOUS_BUILD:
        changes.save_tree(RESULTS, document)
    # What the manifests just written list, read now rather than by the next run (a no-op then reads no Parquet)
    integrity.read_listed(batch_manifest_kinds(), LISTED_INDEX)
    keep = {str(raw_list_path(day, label)) for day, label in ALL_BATCHES}
    jobargs.remove_others(
        LISTS,
        {
            "raw_lists": "*.json",
            "undated": "*.json",
            "args": "*/*.args",
            "schema": "*.json",
        },
        keep | {UNDATED_LIST, SCHEMA_COPY} | all_args_files(),
    )


def print_summary():
    """The summary, from the run folder's results/ (at exit Snakemake is back in the launch folder)."""
    summary = PLAN.results / "summary.txt"
    if summary.exists():
        print(summary.read_text(), end="")


def print_summary_if_nothing_was_done():
    """Snakemake calls onsuccess only after jobs ran; a run with nothing to do returns before it.
    Called at exit: prints the summary after "Nothing to be done" (the check below vouched for it).
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


def skip_final_collection():
    """At exit: Python's last garbage collection walks every object Snakemake built for the DAG
    (~0.3 s of a ~2 s no-op at lab scale) only to free memory the process returns anyway. Frozen
    objects are skipped. Nothing relies on it: files are closed where they are written, and
    logging flushes its handlers in its own exit handler."""
    gc.freeze()


def without_local_rate_limit():
    """Snakemake's job rate limiter (default 100 jobs per 1 s) arms a 1 s timer at the end of every
    scheduling pass that leaves jobs waiting, and each timer starts another pass that arms another:
    every job event adds a chain firing once a second while jobs wait (2,792 passes, 15 CPU-s of the
    snakemake process for 64 jobs on 2 cores; snakemake/snakemake#3744). A local run is limited by its
    cores anyway, so its default limit is dropped (called from onstart, once the scheduler exists);
    a cluster run or any other limit keeps it."""
    limit = workflow.scheduling_settings.max_jobs_per_timespan
    default = limit is not None and (limit.max_jobs, limit.timespan) == (100, 1)
    if workflow.local_exec and default:
        workflow.scheduler.job_rate_limiter = None


# ---- input functions ---------------------------------------------------------------------------


wildcard_constraints:
    # a days=… run: other days' batch manifests match no rule, so they are used as they are
    date="|".join(sorted(DAYS)) if DAYS else r"\d{4}-\d{2}-\d{2}",
    batch=r"\d+-of-\d+",
    # … and other months' analysis and figures too (a --forceall of a few days must not force them)
    month="|".join(PLAN.iv_months) if DAYS else r"\d{4}-\d{2}",


def get_stage_batch_manifests(wildcards=None):
    current = [batch_job_outputs(day, label)[0] for day, label in BATCHES]
    return current + plan.existing_other_days(STAGE, DAYS)


def get_segment_batch_manifests(wildcards=None):
    """Every batch job writes a segment manifest too (empty without IV runs)."""
    current = [batch_job_outputs(day, label)[1] for day, label in BATCHES]
    return current + plan.existing_other_days(SEGMENTS, DAYS)


def iv_months():
    """Analysis and figure jobs are per month: their imports (pyarrow ~0.35 s, matplotlib ~1 s CPU)
    are paid once for ~30 days, and a day always stays in its month. A days=… run redoes only the
    months of its days (with the other days' points as they are on disk). Which days of a month have
    tables and figures is nanolab.outputs.iv_days, for the jobs and the output check alike.
    """
    return PLAN.iv_months


def month_batches(month, kind):
    """`_points` or `_batches` (segment manifests) files of the month's batches holding IV files, as
    their batch jobs declare them (nanolab.plan.batch_outputs)."""
    position = {"_batches": 1, "_points": 2}[kind]
    return [batch_job_outputs(d, b)[position] for d, b in PLAN.month_batches(month)]


def get_points_of_month(wildcards):
    return month_batches(wildcards.month, "_points")


def get_segment_batch_manifests_of_month(wildcards):
    return month_batches(wildcards.month, "_batches")


def get_analysis_root(wildcards, output):
    """results/04_analysis, from the month manifest's path (`<root>/_batches/month=….parquet`)."""
    return str(Path(output.manifest).parents[1])


def get_drawn_folder(wildcards, output):
    """Where the figure job draws each day of the month and keeps it while the day's inputs are
    unchanged (not an output: Snakemake empties declared folders before the job). From the output,
    as the other roots: a param of wildcards alone is recorded and compared (pandas)."""
    figures = Path(output.figures)
    return str(figures.parents[1] / "_drawn" / figures.name)


def analysis_manifest(month):
    return plan.analysis_manifest(month)


def get_analysis():
    return [analysis_manifest(month) for month in iv_months()]


def get_figures():
    """A figure and a runs table per day with IV runs, one job per month, when the config asks."""
    if not config["figures"]:
        return []
    return [folder for month in iv_months() for folder in plan.figure_folders(month)]


def get_final_outputs():
    return [
        *rules.manifests.output,
        *get_analysis(),
        *get_lab_analysis(),
        *get_figures(),
        *get_lab_figures(),
    ]


def with_other_months(current, pattern):
    """This run's month files, and in a days=… run the other months' as they are on disk: the job covers
    every day, and its set of inputs is the same as a full run's (else that run would redo it).
    """
    others = sorted(str(p) for p in Path().glob(pattern)) if DAYS else []
    return current + [p for p in others if p not in current]


def get_landing_tables(wildcards):
    """The month tables the report's landing page and its sortable tables are made from."""
    fits = [f"{REPORT}/iv_fits/month={month}.csv" for month in iv_months()]
    tables = with_other_months(fits, f"{REPORT}/iv_fits/month=*.csv")
    if config["figures"]:
        runs = [f for f in get_figures() if "/iv_day_runs/" in f]
        tables += with_other_months(runs, f"{REPORT}/iv_day_runs/month=*")
    return tables


def get_lab_analysis_inputs(wildcards):
    """Every month's analysis manifest: the chip history and the figures cover every day."""
    return with_other_months(get_analysis(), f"{ANALYSIS}/_batches/month=*.parquet")


def get_lab_analysis():
    return [LAB_ANALYSIS_MANIFEST] if iv_months() else []


def get_lab_drawn_folder(wildcards, output):
    """Beside the declared folders, which Snakemake empties before the job (see get_drawn_folder)."""
    return str(Path(output.days).parent / "_lab_drawn")


def get_lab_figures():
    if not config["figures"] or not iv_months():
        return []
    return [LAB_FIGURES_OUTPUT, f"{REPORT}/lab_chips"]


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


# ---- output integrity ------------------------------------------------------------------------
# The per-run Parquet files are not declared outputs (see above), so Snakemake cannot see one go
# missing or get truncated; truncated in place, it does not notice a declared output either. Once,
# while the DAG is built and before any job runs, nanolab.checks stats every file each batch
# manifest lists against the size it was written with (0.13 s for 40,000 files; opening each would
# take 8.5 s) and tail-checks the declared Parquet/PNG outputs. Every job has one extra declared input,
# its check file: 'whole' with mtime 0 normally; rewritten with the damaged files' names when its
# outputs are damaged, so it is newer than the job's output and Snakemake's mtime trigger reruns the
# job and everything downstream ("Reason: Updated input files: .snakemake/nanolab/checks/…").
# Only in the main snakemake process: a cluster job's own snakemake must not re-judge a running tree.
OUTPUT_CHECKS = ".snakemake/nanolab/checks"
LISTED_INDEX = Path(OUTPUT_CHECKS, "listed_outputs.json")
MERGED_STAGE_MANIFEST = f"{STAGE}/_manifest/manifest.parquet"


def batch_manifest_kinds():
    """{batch manifest: kind} of every job whose manifest lists per-run or per-day files."""
    batches = dict.fromkeys(get_stage_batch_manifests(), "stage")
    batches |= dict.fromkeys(get_segment_batch_manifests(), "segment")
    batches |= dict.fromkeys(get_lab_analysis(), "analysis")
    return batches | {analysis_manifest(month): "analysis" for month in iv_months()}


def expected_outputs():
    """What every planned job writes, as the output check sees it."""
    return checks.ExpectedOutputs(
        batch_manifest_kinds(),
        tuple(rules.manifests.output),
        tuple(plan.batch_outputs(day, label) for day, label in BATCHES),
        {
            figures_output(month): checks.MonthFigures(
                plan.figure_folders(month) if config["figures"] else (),
                tuple(month_batches(month, "_batches")),
            )
            for month in iv_months()
        },
        {LAB_FIGURES_OUTPUT: tuple(get_lab_figures())},
    )


@cache
def output_damage():
    """{job output: [Damage]} of the damaged jobs, checked on the first call of an input function below."""
    if not workflow.is_main_process:
        return {}
    damage = checks.find_output_damage(expected_outputs(), LISTED_INDEX)
    return checks.write_checks(damage, OUTPUT_CHECKS)


def checked(output):
    """The check file of the job writing `output`, after the check has run."""
    output_damage()
    return integrity.check_file(OUTPUT_CHECKS, output)


def batch_job_outputs(day, label):
    """The stage, segment and points files the batch job of (day, label) declares."""
    return list(plan.batch_outputs(day, label))


def get_stage_output_check(wildcards):
    """One job writes the batch's stage and segment manifests: both checks are its inputs."""
    stage, segments, _ = batch_job_outputs(wildcards.date, wildcards.batch)
    return [checked(stage), checked(segments)]


def get_manifests_output_check(wildcards):
    return checked(MERGED_STAGE_MANIFEST)


def get_analysis_output_check(wildcards):
    return checked(analysis_manifest(wildcards.month))


def figures_output(month):
    return plan.figure_folders(month)[0]


def get_figures_output_check(wildcards):
    return checked(figures_output(wildcards.month))


def get_lab_analysis_output_check(wildcards):
    return checked(LAB_ANALYSIS_MANIFEST)


def get_lab_figures_output_check(wildcards):
    return checked(LAB_FIGURES_OUTPUT)
