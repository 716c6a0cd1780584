# prepare -> train -> evaluate, generic over {article}, its {run}s and their {seed}s. Outputs
# sit under the variant (profile-data source), so variants never overwrite each other.
RUN = paths.RUN.replace("{variant}", VARIANT)
JOB = "{article}--{run}--seed{seed}"


rule prepare:
    input:
        inputs_of("prepare"),
    output:
        directory(paths.PROCESSED.replace("{variant}", VARIANT)),
    log:
        f"logs/{VARIANT}/prepare--{{article}}.log",
    benchmark:
        f"logs/{VARIANT}/benchmarks/prepare--{{article}}.tsv"
    resources:
        mem_mb=requests("prepare", "mem_mb"),
        runtime=requests("prepare", "runtime"),
    params:
        cli=KEXUE,
    shell:
        "{params.cli} prepare {wildcards.article} 2>&1 | tee {log}"


rule train:
    input:
        inputs_of("train"),
    output:
        model=f"{RUN}/model.pt",
        history=f"{RUN}/history.csv",
        info=f"{RUN}/train.json",
        training=directory(f"{RUN}/training"),
    log:
        f"logs/{VARIANT}/train--{JOB}.log",
    benchmark:
        f"logs/{VARIANT}/benchmarks/train--{JOB}.tsv"
    threads: run_threads
    resources:
        mem_mb=requests("train", "mem_mb"),
        runtime=requests("train", "runtime"),
        gpu=requests("train", "gpu"),
    params:
        cli=KEXUE,
    shell:
        "{params.cli} train {wildcards.article} {wildcards.run} --seed {wildcards.seed}"
        " --threads {threads} 2>&1 | tee {log}"


rule evaluate:
    input:
        inputs_of("evaluate"),
    output:
        metrics=f"{RUN}/metrics.json",
        artifacts=directory(f"{RUN}/artifacts"),
    log:
        f"logs/{VARIANT}/evaluate--{JOB}.log",
    benchmark:
        f"logs/{VARIANT}/benchmarks/evaluate--{JOB}.tsv"
    threads: run_threads
    resources:
        mem_mb=requests("evaluate", "mem_mb"),
        runtime=requests("evaluate", "runtime"),
        gpu=requests("evaluate", "gpu"),
    params:
        cli=KEXUE,
    shell:
        "{params.cli} evaluate {wildcards.article} {wildcards.run} --seed {wildcards.seed}"
        " --threads {threads} 2>&1 | tee {log}"
