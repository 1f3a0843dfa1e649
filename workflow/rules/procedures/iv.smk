# IV (drain-source sweeps): its registry entry is nanolab.procedures.IV; its paths nanolab.layout's.
IV = ANALYSED["IV"]


rule analyse_iv:
    """IV statistics, linear and polynomial fits, hysteresis and its peaks per day, chip and V_max group,
    for every day of a month (one Parquet per day and kind under 04_analysis/); a day whose points,
    settings and code are unchanged keeps its tables."""
    input:
        points=month_batches(IV, 2),
        segments=month_batches(IV, 1),
        args=shared_args(IV.analysis.rule),
        check=checked(layout.analysis_manifest(IV.slug, "{month}")),
    output:
        manifest=layout.analysis_manifest(IV.slug, "{month}"),
        fits=report(
            layout.month_table(IV.slug, "{month}"),
            caption="../../report/iv_fits.rst",
            category=f"{IV.title} analysis",
            labels={"month": "{month}", "table": "resistance and R²"},
        ),
    log:
        "logs/analysis/iv/month={month}.log",
    conda:
        "../../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=month_mem_mb,
        runtime=15,
    params:
        out_root=output_root("manifest", 2),
    shell:
        "python -m nanolab.analysis_job @{input.args:q} --out-root {params.out_root:q} --manifest {output.manifest:q}"
        " --fits-table {output.fits:q} --check {input.check:q} --segment-manifests {input.segments:q}"
        " -- {input.points:q} > {log:q} 2>&1"


rule draw_iv:
    """A figure and a runs table per measurement day of a month: every IV run (stand-out runs numbered),
    the mean traces with the fitted return and the hysteresis with its peaks per chip. One job per
    month: matplotlib's import (~1 s CPU) is paid once for ~30 days; a day whose inputs and code are
    unchanged is not redrawn (results/04_report/_drawn/ keeps it)."""
    input:
        points=month_batches(IV, 2),
        segments=month_batches(IV, 1),
        analysis=layout.analysis_manifest(IV.slug, "{month}"),
        args=shared_args(IV.figures.rule),
        check=checked(layout.figure_folders(IV.slug, "{month}")[0]),
    output:
        figures=report(
            directory(layout.figure_folders(IV.slug, "{month}")[0]),
            patterns=["date={date}.png"],
            caption="../../report/iv_day.rst",
            category=f"{IV.title} days",
            subcategory="{date}",
            labels={"day": "{date}", "content": "figure"},
        ),
        runs=report(
            directory(layout.figure_folders(IV.slug, "{month}")[1]),
            patterns=["date={date}.csv"],
            caption="../../report/iv_day_runs.rst",
            category=f"{IV.title} days",
            subcategory="{date}",
            labels={"day": "{date}", "content": "runs table"},
        ),
    log:
        "logs/figures/iv/month={month}.log",
    conda:
        "../../../envs/nanolab.yaml"
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


LAB_ANALYSIS = layout.further_outputs("lab_analysis")
LAB_FIGURES = layout.further_outputs("lab_figures")


rule lab_analysis:
    """The lab's further analysis per day from the day's analysis tables (never the segments): backward-
    subtracted hysteresis in A and E/J, coercive fields with the laser power of the calibration runs, and
    the chip history rows; one job for every day, a day whose inputs are unchanged keeps its tables.
    """
    input:
        analysis=W.all_analysis_manifests(IV),
        stage=layout.MANIFESTS["stage"],
        args=shared_args("lab_analysis"),
        check=checked(LAB_ANALYSIS[0]),
    output:
        manifest=LAB_ANALYSIS[0],
        history=report(
            LAB_ANALYSIS[1],
            caption="../../report/chip_history.rst",
            category=f"{IV.title} analysis",
            labels={"table": "chip history"},
        ),
    log:
        "logs/lab_analysis.log",
    conda:
        "../../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        out_root=output_root("manifest", 1),
    shell:
        "python -m nanolab.lab_analysis_job @{input.args:q} --out-root {params.out_root:q} --manifest {output.manifest:q}"
        " --history-table {output.history:q} --stage-manifest {input.stage:q} --check {input.check:q}"
        " -- {input.analysis:q} > {log:q} 2>&1"


rule lab_figures:
    """Per day the backward-subtracted J(E) curves of every chip's groups; per chip its coercive field
    against V_max and effective power and its history. One job (matplotlib's import is paid once); a
    figure whose data are unchanged is not redrawn (results/04_report/_lab_drawn/ keeps it).
    """
    input:
        analysis=LAB_ANALYSIS[0],
        args=shared_args("lab_figures"),
        check=checked(LAB_FIGURES[0]),
    output:
        days=report(
            directory(LAB_FIGURES[0]),
            patterns=["date={date}.png"],
            caption="../../report/lab_day.rst",
            category="Lab analysis",
            subcategory="{date}",
            labels={"day": "{date}", "figure": "backward-subtracted"},
        ),
        chips=report(
            directory(LAB_FIGURES[1]),
            patterns=["chip={chip}.png"],
            caption="../../report/lab_chip.rst",
            category="Lab analysis",
            subcategory="chips",
            labels={"chip": "{chip}", "figure": "coercive field and history"},
        ),
    log:
        "logs/lab_figures.log",
    conda:
        "../../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        drawn=drawn_beside("days", "_lab_drawn"),
    shell:
        "python -m nanolab.lab_plots @{input.args:q} --lab-manifest {input.analysis:q} --day-dir {output.days:q}"
        " --chip-dir {output.chips:q} --drawn-dir {params.drawn:q} --check {input.check:q} > {log:q} 2>&1"
