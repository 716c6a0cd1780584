# One folder per dataset, shared by every article that uses it.


rule download:
    output:
        directory(paths.RAW),
    log:
        "logs/download/{dataset}.log",
    wildcard_constraints:
        dataset=one_of(DOWNLOADED),
    params:
        cli=KEXUE,
    shell:
        "{params.cli} download {wildcards.dataset} > {log} 2>&1"


rule generate:
    output:
        directory(paths.RAW),
    log:
        "logs/generate/{dataset}.log",
    wildcard_constraints:
        dataset=one_of(EMBEDDED),
    params:
        cli=KEXUE,
    shell:
        "{params.cli} generate {wildcards.dataset} > {log} 2>&1"
