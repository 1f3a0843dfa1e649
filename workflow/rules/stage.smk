rule stage_batch:
    """Stage one day's batch of raw CSVs (one Parquet per file under raw_measurements/, one manifest
    row per file, ok or reject with a reason) and split its IV runs into sweep segments (one Parquet
    per segment under iv_segments/, one manifest row per IV run). One job for both: a job start-up
    costs ~0.3 s CPU, and a run staged fresh is segmented from memory, not read back."""
    input:
        schema=SCHEMA_FILE,
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
        raw_files=get_stage_raw_list,
        raw_root=str(RAW_ROOT),
        timezone=config["timezone"],
        stage_root=get_stage_root,
        segment_root=get_segment_root,
        voltage_column=SEGMENTATION["voltage_column"],
        dv_threshold=SEGMENTATION["dv_threshold"],
        min_segment_points=SEGMENTATION["min_segment_points"],
        code=code_of("stage_batch"),
    shell:
        "python -m nanolab batch --raw-root {params.raw_root:q} --schema {input.schema:q} --timezone {params.timezone:q}"
        " --stage-root {params.stage_root:q} --segment-root {params.segment_root:q}"
        " --voltage-column {params.voltage_column:q} --dv-threshold {params.dv_threshold}"
        " --min-segment-points {params.min_segment_points}"
        " --stage-output {output.stage:q} --segment-output {output.segments:q} --points-output {output.points:q}"
        " --raw-files-from {params.raw_files:q} > {log:q} 2>&1"
