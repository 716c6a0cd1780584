# The feature network of each image dataset that an article scores generated samples with
# (registry: Article.feature_nets): trained once per variant, an input of those runs.
FEATURE_DATASETS = sorted(
    {j.wildcards["dataset"] for j in JOBS if j.rule == "features"}
)


rule features:
    input:
        inputs_of("features"),
    output:
        directory(paths.FEATURES.replace("{variant}", VARIANT)),
    log:
        f"logs/{VARIANT}/features--{{dataset}}.log",
    benchmark:
        f"logs/{VARIANT}/benchmarks/features--{{dataset}}.tsv"
    wildcard_constraints:
        dataset=one_of(FEATURE_DATASETS),
    threads: 1  # a small CNN: one thread, so other jobs run beside it
    resources:
        mem_mb=requests("features", "mem_mb"),
        runtime=requests("features", "runtime"),
    params:
        cli=KEXUE,
    shell:
        "{params.cli} features {wildcards.dataset} --threads {threads} 2>&1 | tee {log}"
