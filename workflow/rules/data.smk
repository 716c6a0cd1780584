# One folder per dataset, shared by every article and variant that uses it.


rule download:
    output:
        directory(paths.RAW),
    log:
        "logs/download/{dataset}.log",
    benchmark:
        "logs/benchmarks/download--{dataset}.tsv"
    wildcard_constraints:
        dataset=one_of(DOWNLOADED),
    params:
        cli=KEXUE_DATA,
    shell:
        "{params.cli} download {wildcards.dataset} 2>&1 | tee {log}"


rule generate:
    output:
        directory(paths.RAW),
    log:
        "logs/generate/{dataset}.log",
    benchmark:
        "logs/benchmarks/generate--{dataset}.tsv"
    wildcard_constraints:
        dataset=one_of(EMBEDDED),
    params:
        cli=KEXUE_DATA,
    shell:
        "{params.cli} generate {wildcards.dataset} 2>&1 | tee {log}"
