# prepare -> train -> evaluate, generic over {article} and its {run}s.


rule prepare:
    input:
        raw_inputs,
    output:
        directory(paths.PROCESSED),
    log:
        "logs/prepare/{article}.log",
    params:
        cli=KEXUE,
        data=data_params,
    shell:
        "{params.cli} prepare {wildcards.article} > {log} 2>&1"


rule train:
    input:
        paths.PROCESSED,
    output:
        model=paths.MODEL,
        history=paths.HISTORY,
        info=paths.TRAIN_INFO,
    log:
        "logs/train/{article}/{run}.log",
    threads: JOB_THREADS
    resources:
        gpu=GPU,
    params:
        cli=KEXUE,
        run=run_params,
    shell:
        "{params.cli} train {wildcards.article} {wildcards.run} --threads {threads} > {log} 2>&1"


rule evaluate:
    input:
        paths.PROCESSED,
        paths.MODEL,
        paths.TRAIN_INFO,
    output:
        metrics=paths.METRICS,
        artifacts=directory(paths.ARTIFACTS),
    log:
        "logs/evaluate/{article}/{run}.log",
    threads: JOB_THREADS
    params:
        cli=KEXUE,
        run=run_params,
    shell:
        "{params.cli} evaluate {wildcards.article} {wildcards.run} --threads {threads} > {log} 2>&1"
