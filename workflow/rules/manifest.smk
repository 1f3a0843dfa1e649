rule manifests:
    """Whole-run manifests (one row per raw file, one per IV run), the rejects list and the
    summary; removes outputs that no current raw file produces (deleted, or moved to another day).
    """
    input:
        stage=get_stage_batch_manifests,
        segments=get_segment_batch_manifests,
        args=get_shared_args("manifests"),
        check=get_manifests_output_check,
    output:
        stage=f"{STAGE}/_manifest/manifest.parquet",
        rejects=report(
            f"{STAGE}/_manifest/rejects.csv",
            caption="../report/rejects.rst",
            category="Staging",
        ),
        segments=f"{SEGMENTS}/_manifest/manifest.parquet",
        summary="results/summary.txt",
        staging_summary=report(
            "results/04_report/staging_summary.csv",
            caption="../report/staging_summary.rst",
            category="Staging",
        ),
        segmentation_qc=report(
            "results/04_report/segmentation_qc.csv",
            caption="../report/segmentation_qc.rst",
            category="Segmentation QC",
        ),
        segment_points=report(
            "results/04_report/segment_points.csv",
            caption="../report/segment_points.rst",
            category="Segmentation QC",
        ),
    log:
        "logs/manifests.log",
    conda:
        "../../envs/nanolab.yaml"
    threads: 1
    resources:
        mem_mb=manifests_mem_mb,
        runtime=10,
    params:
        stage_root=get_stage_root,
        segment_root=get_segment_root,
    shell:
        "python -m nanolab manifests @{input.args:q}"
        " --stage-root {params.stage_root:q} --segment-root {params.segment_root:q}"
        " --stage-manifest {output.stage:q} --segment-manifest {output.segments:q}"
        " --rejects {output.rejects:q} --summary {output.summary:q}"
        " --staging-summary {output.staging_summary:q} --segmentation-qc {output.segmentation_qc:q}"
        " --segment-points {output.segment_points:q}"
        " --stage-batches {input.stage:q} --segment-batches {input.segments:q} > {log:q} 2>&1"
