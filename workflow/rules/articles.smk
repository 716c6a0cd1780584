# prepare -> train -> evaluate, generic over {article} and its {run}s.


rule prepare:
    input:
        raw_inputs,
    output:
        directory(paths.PROCESSED),
    params:
        data=data_params,
    log:
        "logs/prepare/{article}.log",
    shell:
        "{KEXUE} prepare {wildcards.article} > {log} 2>&1"


rule train:
    input:
        paths.PROCESSED,
    output:
        model=paths.MODEL,
        history=paths.HISTORY,
        info=paths.TRAIN_INFO,
    params:
        run=run_params,
    threads: workflow.cores
    resources:
        gpu=1,
    log:
        "logs/train/{article}/{run}.log",
    shell:
        "{KEXUE} train {wildcards.article} {wildcards.run} --threads {threads} > {log} 2>&1"


rule evaluate:
    input:
        paths.PROCESSED,
        paths.MODEL,
        paths.TRAIN_INFO,
    output:
        metrics=paths.METRICS,
        artifacts=directory(paths.ARTIFACTS),
    params:
        run=run_params,
    threads: workflow.cores
    log:
        "logs/evaluate/{article}/{run}.log",
    shell:
        "{KEXUE} evaluate {wildcards.article} {wildcards.run} --threads {threads} > {log} 2>&1"
