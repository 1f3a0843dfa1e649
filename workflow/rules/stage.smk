rule stage_batch:
    """Stage one day's batch of raw CSVs (one Parquet per file under raw_measurements/, one manifest
    row per file, ok or reject with a reason) and split its IV runs into sweep segments (one Parquet
    per segment under iv_segments/, one manifest row per IV run). One job for both: a job start-up
    costs ~0.3 s CPU, and a run staged fresh is segmented from memory, not read back."""
    input:
        schema=SCHEMA_COPY,
        args=get_stage_args,
        check=get_stage_checks,
    output:
        stage=layout.batch_outputs("{date}", "{batch}")[0],
        segments=layout.batch_outputs("{date}", "{batch}")[1],
        points=layout.batch_outputs("{date}", "{batch}")[2],
    log:
        "logs/stage/date={date}/batch={batch}.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=batch_mem_mb,
        runtime=batch_runtime,
    params:
        stage_root=output_root("stage", 2),
        segment_root=output_root("segments", 2),
    shell:
        "python -m nanolab batch @{input.args:q} --schema {input.schema:q}"
        " --stage-root {params.stage_root:q} --segment-root {params.segment_root:q}"
        " --stage-output {output.stage:q} --segment-output {output.segments:q} --points-output {output.points:q}"
        " --check {input.check:q} > {log:q} 2>&1"
