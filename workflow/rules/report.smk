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
        tables=W.landing_tables(IV),  # the landing page shows IV's tables (IVg's join them with its issue)
        args=shared_args("landing_page"),
    output:
        landing=report(
            layout.LANDING,
            caption="../report/landing.rst",
            category="Overview",
        ),
        rejects=report(
            f"{layout.TABLES}/rejects.html",
            caption="../report/rejects.rst",
            category="Staging",
        ),
        fits=report(
            directory(f"{layout.TABLES}/{IV.slug}_fits"),
            patterns=["month={month}.html"],
            caption="../report/tables.rst",
            category=f"{IV.title} analysis",
            labels={"month": "{month}", "table": "resistance and R², sortable"},
        ),
        runs=report(
            directory(f"{layout.TABLES}/{IV.slug}_day_runs"),
            patterns=["date={date}.html"],
            caption="../report/tables.rst",
            category=f"{IV.title} days",
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
