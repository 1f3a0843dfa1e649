rule analyse_month:
    """IV statistics, linear and polynomial fits, hysteresis and its peaks per day, chip and V_max group,
    for every day of a month (one Parquet per day and kind under 04_analysis/); a day whose points,
    settings and code are unchanged keeps its tables."""
    input:
        points=get_points_of_month,
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
        poly_orders=ANALYSIS_SETTINGS["poly_orders"],
        v_max_decimals=ANALYSIS_SETTINGS["v_max_decimals"],
        hysteresis_decimals=ANALYSIS_SETTINGS["hysteresis_decimals"],
        group_by=ANALYSIS_SETTINGS["group_by"],
        code=code_of("analyse_month"),
    shell:
        "python -m nanolab.analysis_job --out-root {params.out_root:q} --manifest {output.manifest:q}"
        " --fits-table {output.fits:q} --poly-orders {params.poly_orders}"
        " --v-max-decimals {params.v_max_decimals} --hysteresis-decimals {params.hysteresis_decimals}"
        " --group-by {params.group_by} -- {input.points:q} > {log:q} 2>&1"
