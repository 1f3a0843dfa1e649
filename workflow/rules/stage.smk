rule stage_batch:
    """Stage one day's batch of raw CSVs: one Parquet per file under raw_measurements/, one
    manifest row per file (ok or reject with a reason)."""
    input:
        schema=SCHEMA_FILE,
    output:
        f"{STAGE}/_batches/date={{date}}/batch={{batch}}.parquet",
    log:
        "logs/stage/date={date}/batch={batch}.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=batch_mem_mb,
        runtime=batch_runtime,
    params:
        raw_files=get_stage_raw_list,
        raw_root=str(RAW_ROOT),
        timezone=config["timezone"],
        out_root=get_out_root,
        code=code_of("stage_batch"),
    shell:
        "python -m nanolab stage --raw-root {params.raw_root:q} --out-root {params.out_root:q}"
        " --schema {input.schema:q} --timezone {params.timezone:q} --output {output:q}"
        " --raw-files-from {params.raw_files:q} > {log:q} 2>&1"
