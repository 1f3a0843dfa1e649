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
