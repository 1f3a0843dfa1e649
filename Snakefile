# nanolab: raw PyMeasure CSVs -> staged Parquet -> IV sweep segments -> IV analysis and figures.
# Run `snakemake --cores 8` (profiles/default is picked up automatically).
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
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


print_changes()


rule all:
    default_target: True
    input:
        get_final_outputs(),
        rules.landing_page.output,


onstart:
    record_raw_root()
    mark_forced_jobs()
    without_local_rate_limit()


onsuccess:
    record_build()
    print_summary()


# Snakemake skips onsuccess when there is nothing to be done; the summary is printed then too.
atexit.register(print_summary_if_nothing_was_done)
atexit.register(skip_final_collection)
