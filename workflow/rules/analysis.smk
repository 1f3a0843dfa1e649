rule analyse_month:
    """IV statistics, linear and polynomial fits, hysteresis and its peaks per day, chip and V_max group,
    for every day of a month (one Parquet per day and kind under 04_analysis/); a day whose points,
    settings and code are unchanged keeps its tables."""
    input:
        points=get_points_of_month,
        segments=get_segment_batch_manifests_of_month,
        args=get_shared_args("analyse_month"),
        check=get_analysis_output_check,
    output:
        manifest=f"{ANALYSIS}/_batches/month={{month}}.parquet",
        fits=report(
            "results/04_report/iv_fits/month={month}.csv",
            caption="../report/iv_fits.rst",
            category="IV analysis",
            labels={"month": "{month}", "table": "resistance and R²"},
        ),
    log:
        "logs/analysis/month={month}.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=month_mem_mb,
        runtime=15,
    params:
        out_root=get_analysis_root,
    shell:
        "python -m nanolab.analysis_job @{input.args:q} --out-root {params.out_root:q} --manifest {output.manifest:q}"
        " --fits-table {output.fits:q} --check {input.check:q} --segment-manifests {input.segments:q}"
        " -- {input.points:q} > {log:q} 2>&1"


rule lab_analysis:
    """The lab's further analysis per day from the day's analysis tables (never the segments): backward-
    subtracted hysteresis in A and E/J, coercive fields with the laser power of the calibration runs, and
    the chip history rows; one job for every day, a day whose inputs are unchanged keeps its tables.
    """
    input:
        analysis=get_lab_analysis_inputs,
        stage=MERGED_STAGE_MANIFEST,
        args=get_shared_args("lab_analysis"),
        check=get_lab_analysis_output_check,
    output:
        manifest=LAB_ANALYSIS_MANIFEST,
        history=report(
            "results/04_report/chip_history.csv",
            caption="../report/chip_history.rst",
            category="IV analysis",
            labels={"table": "chip history"},
        ),
    log:
        "logs/lab_analysis.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        out_root=get_analysis_root,
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
        analysis=LAB_ANALYSIS_MANIFEST,
        args=get_shared_args("lab_figures"),
        check=get_lab_figures_output_check,
    output:
        days=report(
            directory("results/04_report/lab_days"),
            patterns=["date={date}.png"],
            caption="../report/lab_day.rst",
            category="Lab analysis",
            subcategory="{date}",
            labels={"day": "{date}", "figure": "backward-subtracted"},
        ),
        chips=report(
            directory("results/04_report/lab_chips"),
            patterns=["chip={chip}.png"],
            caption="../report/lab_chip.rst",
            category="Lab analysis",
            subcategory="chips",
            labels={"chip": "{chip}", "figure": "coercive field and history"},
        ),
    log:
        "logs/lab_figures.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        drawn=get_lab_drawn_folder,
    shell:
        "python -m nanolab.lab_plots @{input.args:q} --lab-manifest {input.analysis:q} --day-dir {output.days:q}"
        " --chip-dir {output.chips:q} --drawn-dir {params.drawn:q} --check {input.check:q} > {log:q} 2>&1"
