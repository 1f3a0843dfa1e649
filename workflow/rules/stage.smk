rule stage_batch:
    """Stage one day's batch of raw CSVs (one Parquet per file under raw_measurements/, one manifest
    row per file, ok or reject with a reason) and split its IV runs into sweep segments (one Parquet
    per segment under iv_segments/, one manifest row per IV run). One job for both: a job start-up
    costs ~0.3 s CPU, and a run staged fresh is segmented from memory, not read back."""
    input:
        schema=SCHEMA_COPY,
        args=get_stage_args,
        check=get_stage_output_check,
    output:
        stage=f"{STAGE}/_batches/date={{date}}/batch={{batch}}.parquet",
        segments=f"{SEGMENTS}/_batches/date={{date}}/batch={{batch}}.parquet",
        points=f"{SEGMENTS}/_points/date={{date}}/batch={{batch}}.parquet",
    log:
        "logs/stage/date={date}/batch={batch}.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=batch_mem_mb,
        runtime=batch_runtime,
    params:
        stage_root=get_stage_root,
        segment_root=get_segment_root,
    shell:
        "python -m nanolab batch @{input.args:q} --schema {input.schema:q}"
        " --stage-root {params.stage_root:q} --segment-root {params.segment_root:q}"
        " --stage-output {output.stage:q} --segment-output {output.segments:q} --points-output {output.points:q}"
        " --check {input.check:q} > {log:q} 2>&1"
