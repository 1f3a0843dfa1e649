# nanolab: raw PyMeasure CSVs -> staged Parquet -> IV sweep segments -> each analysed procedure's day
# analysis and figures (nanolab.procedures). Run `snakemake --cores 8` (profiles/default is picked up).
import atexit
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# The workflow's defaults, then the run folder's own config.yaml and lab.yaml (the lab's settings, at
# least raw_root, git-ignored) when present: `--directory <folder>` runs on that folder's settings.
# --config and --configfile still win.
configfile: f"{workflow.basedir}/config.yaml"


if Path("config.yaml").exists() and not Path("config.yaml").samefile(
    f"{workflow.basedir}/config.yaml"
):

    configfile: "config.yaml"


if Path("lab.yaml").exists():

    configfile: "lab.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/stage.smk"
include: "workflow/rules/manifest.smk"


# Each analysed procedure's rules (its registry entry in nanolab.procedures names its slug).
for procedure in ANALYSED.values():

    include: f"workflow/rules/procedures/{procedure.slug}.smk"


include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        W.final_outputs,
        rules.landing_page.output,


onstart:
    changes.record_root(RESULTS, str(RAW_ROOT))
    snakehooks.mark_forced_jobs(workflow, wiring.CHECKS, PLAN.days)
    snakehooks.without_local_rate_limit(workflow)


onsuccess:
    wiring.record_build(W, RESULTS, PREVIOUS_BUILD)
    print_summary()


atexit.register(snakehooks.at_exit(workflow, print_summary))
