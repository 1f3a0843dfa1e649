rule iv_figures:
    """The day's IV overview and one figure per flagged run (not exactly four segment types)."""
    input:
        get_segment_batch_manifests_of_day,
    output:
        overview=report(
            "results/04_report/iv_overview/date={date}.png",
            caption="../report/iv_overview.rst",
            category="IV overview",
            subcategory="{date}",
        ),
        flagged=report(
            directory("results/04_report/flagged_runs/date={date}"),
            patterns=["{run_id}.png"],
            caption="../report/flagged_run.rst",
            category="Flagged runs",
            subcategory="{date}",
        ),
    log:
        "logs/figures/date={date}.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        results=get_results_root,
        code=code_of("iv_figures"),
    shell:
        "python -m nanolab.plots day --results {params.results:q} --date {wildcards.date}"
        " --overview {output.overview:q} --flagged-dir {output.flagged:q}"
        " --segment-manifests {input:q} > {log:q} 2>&1"
