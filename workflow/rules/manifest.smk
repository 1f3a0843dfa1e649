rule manifests:
    """Whole-run manifests (one row per raw file, one per IV run), the rejects list and the
    summary; removes outputs that no current raw file produces (deleted, or moved to another day).
    """
    input:
        stage=W.batch_manifests(0),
        segments=W.batch_manifests(1),
        args=shared_args("manifests"),
        check=checked(layout.MANIFESTS["stage"]),
    output:
        stage=layout.MANIFESTS["stage"],
        rejects=report(
            layout.MANIFESTS["rejects"],
            caption="../report/rejects.rst",
            category="Staging",
        ),
        segments=layout.MANIFESTS["segments"],
        summary=layout.MANIFESTS["summary"],
        staging_summary=report(
            layout.MANIFESTS["staging_summary"],
            caption="../report/staging_summary.rst",
            category="Staging",
        ),
        segmentation_qc=report(
            layout.MANIFESTS["segmentation_qc"],
            caption="../report/segmentation_qc.rst",
            category="Segmentation QC",
        ),
        segment_points=report(
            layout.MANIFESTS["segment_points"],
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
        stage_root=output_root("stage", 1),
        segment_root=output_root("segments", 1),
    shell:
        "python -m nanolab manifests @{input.args:q}"
        " --stage-root {params.stage_root:q} --segment-root {params.segment_root:q}"
        " --stage-manifest {output.stage:q} --segment-manifest {output.segments:q}"
        " --rejects {output.rejects:q} --summary {output.summary:q}"
        " --staging-summary {output.staging_summary:q} --segmentation-qc {output.segmentation_qc:q}"
        " --segment-points {output.segment_points:q}"
        " --stage-batches {input.stage:q} --segment-batches {input.segments:q} > {log:q} 2>&1"
