rule segment_batch:
    """Split the batch's staged IV runs into sweep segments: one Parquet per segment under
    iv_segments/, one manifest row per IV run."""
    input:
        f"{STAGE}/_batches/date={{date}}/batch={{batch}}.parquet",
    output:
        f"{SEGMENTS}/_batches/date={{date}}/batch={{batch}}.parquet",
    log:
        "logs/segment/date={date}/batch={batch}.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=batch_mem_mb,
        runtime=batch_runtime,
    params:
        out_root=get_out_root,
        voltage_column=SEGMENTATION["voltage_column"],
        dv_threshold=SEGMENTATION["dv_threshold"],
        min_segment_points=SEGMENTATION["min_segment_points"],
        code=code_of("segment_batch"),
    shell:
        "python -m nanolab segment --stage-manifest {input:q} --out-root {params.out_root:q}"
        " --voltage-column {params.voltage_column:q} --dv-threshold {params.dv_threshold}"
        " --min-segment-points {params.min_segment_points} --output {output:q} > {log:q} 2>&1"
