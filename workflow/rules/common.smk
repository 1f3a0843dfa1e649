# Bookkeeping done once at DAG-build time: validate the config, check that results/ belongs to this
# raw tree, catalog it, plan the batches, print what changed, and the input functions the rules use.
import gc
import hashlib
import json
import re
import sys
from functools import cache
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import validate

from nanolab import catalog, changes, codehash
from nanolab.config import checked_config
from nanolab.atomic import write_text_atomic
from nanolab.jobargs import args_text

CONFIG_SCHEMA = Path(workflow.basedir, "workflow/schemas/config.schema.yaml")
RESULTS = Path("results")
LISTS = Path(".snakemake/nanolab")


def typed_config(config):
    """The config with command-line strings read as the schema's types (`figures=false`), or a stop
    with one line per bad value naming the key, the value and the accepted form."""
    coerced, problems = checked_config(config, CONFIG_SCHEMA)
    if problems:
        raise WorkflowError("invalid config: " + "; ".join(problems))
    return coerced


config.update(typed_config(config))
for dotted in [key for key in config if "." in str(key)]:
    del config[dotted]  # merged into its mapping by typed_config()
validate(config, schema=str(CONFIG_SCHEMA))  # fills in the schema's defaults


def checked_raw_root(raw_root):
    """raw_root normalised (absolute, no trailing slash, symlinks resolved); stops before any job when
    it is not a folder or when results/ was built from another raw tree (nothing is pruned).
    """
    normalised = changes.normalise_root(raw_root)
    if not Path(normalised).is_dir():
        raise WorkflowError(
            f"raw_root {str(raw_root)!r} is not a folder (set it in lab.yaml, config.yaml or with --config raw_root=…)"
        )
    if problem := changes.root_mismatch(RESULTS, normalised):
        raise WorkflowError(problem)
    return Path(normalised)


RAW_ROOT = checked_raw_root(config["raw_root"])
STAGE = "results/02_stage"
SEGMENTS = "results/03_intermediate"
SCHEMA_FILE = str(Path(workflow.basedir, config["procedure_schema"]))
SEGMENTATION = config["segmentation"]
ANALYSIS = "results/04_analysis"
ANALYSIS_SETTINGS = config["analysis"]

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
CATALOG = catalog.scan(RAW_ROOT, config["timezone"], LISTS / "raw_catalog.json")
ALL_BATCHES = catalog.plan_batches(CATALOG, config["batch_size"])
UNDATED = catalog.undated(CATALOG)


def selected_days(days, planned):
    """The days a `--config days=…` run (re)processes; every day when none are given."""
    unknown = sorted(set(days) - {day for day, _ in planned})
    if unknown:
        known = sorted({day for day, _ in planned})
        raise WorkflowError(
            f"days: no raw files on {', '.join(unknown)} (the raw tree has {len(known)} days"
            + (f", {known[0]} to {known[-1]})" if known else ")")
        )
    return set(days)


DAYS = selected_days(config["days"], ALL_BATCHES)
BATCHES = {
    key: files for key, files in ALL_BATCHES.items() if not DAYS or key[0] in DAYS
}


@cache
def raw_list_path(day, label):
    """Content-addressed: the same batch content always has the same list, so a running job's list is
    never rewritten under it (a concurrent `snakemake -n` writes a new name)."""
    files = ALL_BATCHES[(day, label)]
    name = f"{day}_{label}_{len(files)}-files_{catalog.fingerprint(files)}.json"
    return LISTS / "raw_lists" / name


def write_raw_lists(batches):
    """Each batch's raw files (absolute paths), for its staging job to read."""
    for (day, label), files in batches.items():
        path = raw_list_path(day, label)
        # checked before the list is built: ~0.1 s of path joins at lab scale
        if not path.exists():
            write_text_atomic(
                path,
                json.dumps([str(RAW_ROOT / f.source_file) for f in files]),
                private=True,
            )


def write_undated_list(files):
    """The undated rejects' manifest rows, for the manifests job (they have no batch)."""
    rows = catalog.undated_rows(files)
    digest = catalog.fingerprint(files)
    path = LISTS / "undated" / f"{len(rows)}-files_{digest}.json"
    write_once(path, json.dumps(rows))
    return str(path)


def write_once(path, text):
    """A content-addressed file (its name says what it holds): written only when missing."""
    if not path.exists():
        write_text_atomic(path, text, private=True)


write_raw_lists(BATCHES)
UNDATED_LIST = write_undated_list(UNDATED)
PREVIOUS_BUILD = changes.load_tree(RESULTS)


def raw_tree_now():
    """{path: [content hash, day]}: what a successful run records as built."""
    return {f.source_file: [f.content_hash, f.date] for f in CATALOG}


def rule_commands():
    """{rule: 'nanolab stage'}: the package entry each rule's shell runs (`python -m <module> <subcommand>`)."""
    found = {}
    for each in workflow.rules:
        match = re.search(
            r"python -m (nanolab[\w.]*)(?: ([a-z][\w-]*))?", each.shellcmd or ""
        )
        if match:
            found[each.name] = " ".join(filter(None, match.groups()))
    return found


@cache
def code_versions():
    """{command: fingerprint of the package modules it runs}, cached while the package is unchanged."""
    commands = sorted(set(rule_commands().values()))
    return codehash.code_versions(commands, LISTS / "code_versions.json")


def code_value(command):
    return f"code of {command}: {code_versions()[command]}"


# Each job's arguments (settings, raw-file list, code fingerprint) are one input file named by its
# content (nanolab.jobargs): new settings, raw files or code make a new file and rerun the job. The
# rules have no params of their own: comparing params makes Snakemake import pandas (~0.7 s a run).
ARGS = LISTS / "args"


def args_file(rule_name, label, args):
    """(path, content) of a job's arguments file; the content's first line says what it is for."""
    command = rule_commands()[rule_name]
    text = args_text(f"{rule_name} {label}; {code_value(command)}", args)
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return ARGS / rule_name / f"{label}_{digest}.args", text


def written_args(rule_name, label, args):
    path, text = args_file(rule_name, label, args)
    write_once(path, text)
    return str(path)


def stage_args(day, label):
    return [
        "--raw-root",
        RAW_ROOT,
        "--timezone",
        config["timezone"],
        "--voltage-column",
        SEGMENTATION["voltage_column"],
        "--dv-threshold",
        SEGMENTATION["dv_threshold"],
        "--min-segment-points",
        SEGMENTATION["min_segment_points"],
        "--raw-files-from",
        raw_list_path(day, label),
    ]


def analysis_args():
    return [
        "--poly-orders",
        *ANALYSIS_SETTINGS["poly_orders"],
        "--v-max-decimals",
        ANALYSIS_SETTINGS["v_max_decimals"],
        "--hysteresis-decimals",
        ANALYSIS_SETTINGS["hysteresis_decimals"],
        "--group-by",
        ANALYSIS_SETTINGS["group_by"],
    ]


def manifests_args():
    return [
        "--analysis-root",
        ANALYSIS,
        "--undated-rejects",
        UNDATED_LIST,
        "--iv-days",
        *iv_days(),
    ]


def shared_args():
    """{rule: arguments} of the rules whose jobs all take the same arguments (one file per rule)."""
    return {
        "analyse_month": analysis_args(),
        "iv_figures": [],
        "manifests": manifests_args(),
        "lab_analysis": lab_analysis_args(),
        "lab_figures": ["--order", config["lab_analysis"]["history_order"]],
    }


def all_args_files():
    """Every job's arguments file for the whole raw tree, whichever jobs this run needs."""
    jobs = [
        ("stage_batch", f"{day}_{label}", stage_args(day, label))
        for day, label in ALL_BATCHES
    ]
    jobs += [(rule_name, "all", args) for rule_name, args in shared_args().items()]
    return {str(args_file(*job)[0]) for job in jobs}


def get_stage_args(wildcards):
    label = f"{wildcards.date}_{wildcards.batch}"
    return written_args(
        "stage_batch", label, stage_args(wildcards.date, wildcards.batch)
    )


def get_shared_args(rule_name):
    """Input function: the arguments file every job of `rule_name` reads."""
    return lambda wildcards: written_args(rule_name, "all", shared_args()[rule_name])


def print_changes():
    """Before the job list of every run and dry run: what changed in the raw tree and the package code
    since results/ was last built successfully (counts, then up to 10 paths of each kind).
    """
    now = {f.source_file: f.content_hash for f in CATALOG}
    if PREVIOUS_BUILD is None:
        lines = [
            f"nanolab: {len(CATALOG)} raw files in {RAW_ROOT}; results/ has no record of a finished run yet"
        ]
    else:
        before = {path: entry[0] for path, entry in PREVIOUS_BUILD["files"].items()}
        lines = [changes.describe_changes(changes.diff_trees(before, now), len(now))]
        hashes = codehash.module_hashes()
        # which rules a code change reruns: the package is parsed only when it changed
        if PREVIOUS_BUILD.get("code", {}) != hashes:
            affected = {
                name: codehash.rule_closure(command)
                for name, command in rule_commands().items()
            }
            code = changes.describe_code_changes(
                PREVIOUS_BUILD.get("code", {}), hashes, affected
            )
            lines += [code] if code else []
    if UNDATED:
        lines.append(
            f"nanolab: {len(UNDATED)} raw files have no date (unreadable header, no date in the path): listed as rejects, no job"
        )
    if DAYS:
        lines.append(
            f"nanolab: only days {', '.join(sorted(DAYS))}; other days' results are left as they are"
        )
    logger.info(
        "\n".join(lines)
    )  # snakemake's own stream: before its job list, -n or not


def record_raw_root():
    """onstart: results/ now belongs to this raw tree (the first run that runs jobs records it)."""
    changes.record_root(RESULTS, str(RAW_ROOT))


def record_build():
    """onsuccess: the raw tree and code results/ now reflect; stale batch lists are removed."""
    document = changes.tree_after_run(
        PREVIOUS_BUILD, raw_tree_now(), codehash.module_hashes(), DAYS
    )
    if document != PREVIOUS_BUILD:
        changes.save_tree(RESULTS, document)
    keep = {str(raw_list_path(day, label)) for day, label in ALL_BATCHES}
    keep.add(UNDATED_LIST)
    keep |= all_args_files()
    # What the manifests just written list, read now rather than by the next run (a no-op then reads no Parquet)
    integrity.read_listed(batch_manifest_kinds(), LISTED_INDEX)
    for folder, pattern in (
        ("raw_lists", "*.json"),
        ("undated", "*.json"),
        ("args", "*/*.args"),
    ):
        for path in (LISTS / folder).glob(pattern):
            if str(path) not in keep:
                path.unlink(missing_ok=True)


wildcard_constraints:
    # a days=… run: other days' batch manifests match no rule, so they are used as they are
    date="|".join(sorted(DAYS)) if DAYS else r"\d{4}-\d{2}-\d{2}",
    batch=r"\d+-of-\d+",
    month=r"\d{4}-\d{2}",


def existing_other_days(root):
    """In a days=… run, the other days' batch manifests as they are on disk."""
    if not DAYS:
        return []
    found = sorted(Path(root, "_batches").glob("date=*/batch=*.parquet"))
    return [str(p) for p in found if p.parent.name.removeprefix("date=") not in DAYS]


def get_stage_batch_manifests(wildcards=None):
    current = [batch_job_outputs(day, label)[0] for day, label in BATCHES]
    return current + existing_other_days(STAGE)


def get_segment_batch_manifests(wildcards=None):
    """Every batch job writes a segment manifest too (empty without IV runs)."""
    current = [batch_job_outputs(day, label)[1] for day, label in BATCHES]
    return current + existing_other_days(SEGMENTS)


def iv_days(wildcards=None):
    """Measurement days with IV runs in the whole raw tree: the days analysed and drawn."""
    return sorted(
        {
            day
            for (day, _), files in ALL_BATCHES.items()
            if any(f.proc == "IV" for f in files)
        }
    )


def iv_months():
    """Analysis and figure jobs are per month: their imports (pyarrow ~0.35 s, matplotlib ~1 s CPU)
    are paid once for ~30 days, and a day always stays in its month. A days=… run redoes only the
    months of its days (with the other days' points as they are on disk)."""
    return sorted({day[:7] for day in iv_days() if not DAYS or day in DAYS})


def month_batches(month, kind):
    """`_points` or `_batches` (segment manifests) files of the month's batches holding IV runs."""
    return [
        f"{SEGMENTS}/{kind}/date={day}/batch={label}.parquet"
        for (day, label), files in ALL_BATCHES.items()
        if day.startswith(f"{month}-") and any(f.proc == "IV" for f in files)
    ]


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
    return f"{ANALYSIS}/_batches/month={month}.parquet"


def get_analysis():
    return [analysis_manifest(month) for month in iv_months()]


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
    return [
        *rules.manifests.output,
        *get_analysis(),
        *get_lab_analysis(),
        *get_figures(),
        *get_lab_figures(),
    ]


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


def skip_final_collection():
    """At exit: Python's last garbage collection walks every object Snakemake built for the DAG
    (~0.3 s of a ~2 s no-op at lab scale) only to free memory the process returns anyway. Frozen
    objects are skipped. Nothing relies on it: files are closed where they are written, and
    logging flushes its handlers in its own exit handler."""
    gc.freeze()


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
LISTED_INDEX = Path(OUTPUT_CHECKS, "listed_outputs.json")
MERGED_STAGE_MANIFEST = f"{STAGE}/_manifest/manifest.parquet"
OUTPUT_DAMAGE = None  # {job output: [Damage]}, computed on the first call of an input function below


def output_damage():
    global OUTPUT_DAMAGE
    if OUTPUT_DAMAGE is None:
        OUTPUT_DAMAGE = find_output_damage() if workflow.is_main_process else {}
    return OUTPUT_DAMAGE


def batch_manifest_kinds():
    """{batch manifest: kind} of every job whose manifest lists per-run or per-day files."""
    batches = dict.fromkeys(get_stage_batch_manifests(), "stage")
    batches |= dict.fromkeys(get_segment_batch_manifests(), "segment")
    batches |= dict.fromkeys(get_lab_analysis(), "analysis")
    return batches | {analysis_manifest(month): "analysis" for month in iv_months()}


def find_output_damage():
    """Check every job's outputs, write every check file, name the damaged ones on stderr."""
    damage = integrity.check_batch_manifests(batch_manifest_kinds(), LISTED_INDEX)
    record = str(Path(MERGED_STAGE_MANIFEST).parent / integrity.OUTPUT_SIZES)
    sizes = integrity.load_output_sizes(record)
    merged = list(rules.manifests.output)
    damage[MERGED_STAGE_MANIFEST] = integrity.check_declared(merged, sizes or {})
    if sizes is None and any(Path(p).exists() for p in merged):
        damage[MERGED_STAGE_MANIFEST].append(integrity.Damage(record, None, None))
    merged_exist = Path(MERGED_STAGE_MANIFEST).exists()
    for day, label in BATCHES:
        stage, segments, points = batch_job_outputs(day, label)
        damage[stage] += integrity.check_declared([points], {})  # truncated in place
        # Snakemake rebuilds a missing intermediate file only for a job that runs anyway: a batch job's
        # output deleted, or removed by Snakemake when the job failed, would stay missing behind up-to-date
        # merged manifests. Their job is marked instead; it needs the batch job, which rewrites all three.
        if merged_exist:
            damage[MERGED_STAGE_MANIFEST] += integrity.find_damage(
                integrity.Expected(path, None) for path in (stage, segments, points)
            )
    for month in iv_months():
        figures = [f for f in get_figures() if f.endswith(f"month={month}")]
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


def batch_job_outputs(day, label):
    """The stage, segment and points files the batch job of (day, label) declares."""
    batch = f"date={day}/batch={label}.parquet"
    return [
        f"{STAGE}/_batches/{batch}",
        f"{SEGMENTS}/_batches/{batch}",
        f"{SEGMENTS}/_points/{batch}",
    ]


def get_stage_output_check(wildcards):
    """One job writes the batch's stage and segment manifests: both checks are its inputs."""
    stage, segments, _ = batch_job_outputs(wildcards.date, wildcards.batch)
    return [checked(stage), checked(segments)]


def get_manifests_output_check(wildcards):
    return checked(MERGED_STAGE_MANIFEST)


def get_analysis_output_check(wildcards):
    return checked(analysis_manifest(wildcards.month))


def figures_output(month):
    return f"results/04_report/iv_days/month={month}"


def get_figures_output_check(wildcards):
    return checked(figures_output(wildcards.month))


# ---- output integrity: end ---------------------------------------------------------------------


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


# ---- lab analysis (issue 20): begin -----------------------------------------------------------------
# One job over every day (backward subtraction, coercive field, chip history) and one figure job; both
# take their settings through one content-named args file, so a geometry change reruns only them.
LAB_ANALYSIS_MANIFEST = f"{ANALYSIS}/_batches/lab_analysis.parquet"


def lab_analysis_args():
    lab = config["lab_analysis"]
    return [
        "--reference-v-max",
        lab["reference_v_max"],
        "--channel-length-um",
        lab["channel_length_um"],
        "--channel-width-um",
        lab["channel_width_um"],
        "--chip-geometry",
        json.dumps(lab["chips"], sort_keys=True),
        "--beam-to-sample-ratio",
        lab["beam_to_sample_ratio"],
        "--history-order",
        lab["history_order"],
    ]


def get_lab_analysis_inputs(wildcards):
    """Every month's analysis manifest: in a days=… run the other months' as they are on disk, so the
    chip history and the figures still cover every day."""
    current = get_analysis()
    others = sorted(Path(ANALYSIS, "_batches").glob("month=*.parquet")) if DAYS else []
    return current + [str(p) for p in others if str(p) not in current]


def get_lab_analysis_args(wildcards):
    return written_args("lab_analysis", "all", shared_args()["lab_analysis"])


def get_lab_analysis():
    return [LAB_ANALYSIS_MANIFEST] if iv_months() else []


def get_lab_analysis_output_check(wildcards):
    return checked(LAB_ANALYSIS_MANIFEST)


def get_lab_figures_args(wildcards):
    return written_args("lab_figures", "all", shared_args()["lab_figures"])


def get_lab_drawn_folder(wildcards, output):
    """Beside the declared folders, which Snakemake empties before the job (see get_drawn_folder)."""
    return str(Path(output.days).parent / "_lab_drawn")


def get_lab_figures():
    if not config["figures"] or not iv_months():
        return []
    return ["results/04_report/lab_days", "results/04_report/lab_chips"]

# ---- lab analysis (issue 20): end -------------------------------------------------------------------
