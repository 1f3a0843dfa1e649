rule stage_batch:
    """Stage one day's batch of raw CSVs: one Parquet per file under raw_measurements/, one
    manifest row per file (ok or reject with a reason)."""
    input:
        schema=SCHEMA_FILE,
        check=get_stage_output_check,
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
        raw_files=get_stage_raw_files,
        fingerprint=get_stage_fingerprint,
        raw_root=config["raw_root"],
        timezone=config["timezone"],
        out_root=get_out_root,
    shell:
        "python -m nanolab stage --raw-root {params.raw_root:q} --out-root {params.out_root:q}"
        " --schema {input.schema:q} --timezone {params.timezone:q} --output {output:q}"
        " -- {params.raw_files:q} > {log:q} 2>&1"
