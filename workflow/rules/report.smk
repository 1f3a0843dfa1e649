rule iv_figures:
    """A figure and a runs table per measurement day of a month: every IV run (stand-out runs numbered),
    the mean traces with the fitted return and the hysteresis with its peaks per chip. One job per
    month: matplotlib's import (~1 s CPU) is paid once for ~30 days; a day whose inputs and code are
    unchanged is not redrawn (results/04_report/_drawn/ keeps it)."""
    input:
        points=get_points_of_month,
        segments=get_segment_batch_manifests_of_month,
        analysis=f"{ANALYSIS}/_batches/month={{month}}.parquet",
        args=get_shared_args("iv_figures"),
        check=get_figures_output_check,
    output:
        figures=report(
            directory("results/04_report/iv_days/month={month}"),
            patterns=["date={date}.png"],
            caption="../report/iv_day.rst",
            category="IV days",
            subcategory="{date}",
            labels={"day": "{date}", "content": "figure"},
        ),
        runs=report(
            directory("results/04_report/iv_day_runs/month={month}"),
            patterns=["date={date}.csv"],
            caption="../report/iv_day_runs.rst",
            category="IV days",
            subcategory="{date}",
            labels={"day": "{date}", "content": "runs table"},
        ),
    log:
        "logs/figures/month={month}.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=month_mem_mb,
        runtime=15,
    params:
        drawn=get_drawn_folder,
    shell:
        "python -m nanolab.plots @{input.args:q} --analysis-manifest {input.analysis:q} --figure-dir {output.figures:q}"
        " --runs-dir {output.runs:q} --drawn-dir {params.drawn:q} --segment-manifests {input.segments:q} --points {input.points:q}"
        " --check {input.check:q} > {log:q} 2>&1"


# ~0.3 s of work: on a cluster it runs beside the main snakemake process instead of queueing.
localrules:
    landing_page,


rule landing_page:
    """The report's first page (what results/ holds, from which raw tree and code, the counts, the
    rejects and the flagged runs) and its tables as sortable HTML, from the merged manifests and the
    report's CSV tables: one short job (no matplotlib, no pandas) when any of them changed.
    """
    input:
        stage=rules.manifests.output.stage,
        segments=rules.manifests.output.segments,
        tables=get_landing_tables,
        args=get_shared_args("landing_page"),
    output:
        landing=report(
            f"{REPORT}/landing.html",
            caption="../report/landing.rst",
            category="Overview",
        ),
        rejects=report(
            f"{REPORT}/tables/rejects.html",
            caption="../report/rejects.rst",
            category="Staging",
        ),
        fits=report(
            directory(f"{REPORT}/tables/iv_fits"),
            patterns=["month={month}.html"],
            caption="../report/tables.rst",
            category="IV analysis",
            labels={"month": "{month}", "table": "resistance and R², sortable"},
        ),
        runs=report(
            directory(f"{REPORT}/tables/iv_day_runs"),
            patterns=["date={date}.html"],
            caption="../report/tables.rst",
            category="IV days",
            subcategory="{date}",
            labels={"day": "{date}", "content": "runs table, sortable"},
        ),
    log:
        "logs/landing_page.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m nanolab.landing @{input.args:q} --stage-manifest {input.stage:q} --segment-manifest {input.segments:q}"
        " --landing {output.landing:q} --rejects-table {output.rejects:q} --fits-tables {output.fits:q} --runs-tables {output.runs:q}"
        " > {log:q} 2>&1"
