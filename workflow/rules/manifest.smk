rule stage_manifest:
    """One row per raw file found; removes staged runs no raw file produces any more."""
    input:
        get_stage_batch_manifests,
    output:
        manifest=f"{STAGE}/_manifest/manifest.parquet",
        rejects=f"{STAGE}/_manifest/rejects.csv",
    log:
        "logs/manifest/stage.log",
    conda:
        "../../envs/nanolab.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        out_root=get_out_root,
    shell:
        "python -m nanolab merge --kind stage --out-root {params.out_root:q} --output {output.manifest:q}"
        " --rejects {output.rejects:q} -- {input:q} > {log:q} 2>&1"


rule segment_manifest:
    """One row per IV run; removes segments no staged run produces any more."""
    input:
        get_segment_batch_manifests,
    output:
        f"{SEGMENTS}/_manifest/manifest.parquet",
    log:
        "logs/manifest/segment.log",
    conda:
        "../../envs/nanolab.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        out_root=get_out_root,
    shell:
        "python -m nanolab merge --kind segment --out-root {params.out_root:q} --output {output:q}"
        " -- {input:q} > {log:q} 2>&1"


rule summary:
    """Counts printed at the end of every run that did work."""
    input:
        stage=rules.stage_manifest.output.manifest,
        rejects=rules.stage_manifest.output.rejects,
        segments=rules.segment_manifest.output[0],
    output:
        "results/summary.txt",
    log:
        "logs/manifest/summary.log",
    conda:
        "../../envs/nanolab.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "python -m nanolab summary --stage-manifest {input.stage:q} --segment-manifest {input.segments:q}"
        " --rejects {input.rejects:q} --output {output:q} > {log:q} 2>&1"
