# One papermill report per article, then the index over all articles of the variant.


rule report:
    input:
        inputs_of("report"),
    output:
        html=paths.REPORT.replace("{variant}", VARIANT),
        notebook=paths.REPORT_NOTEBOOK.replace("{variant}", VARIANT),
    log:
        f"logs/{VARIANT}/report--{{article}}.log",
    benchmark:
        f"logs/{VARIANT}/benchmarks/report--{{article}}.tsv"
    resources:
        mem_mb=requests("report", "mem_mb"),
        runtime=requests("report", "runtime"),
    params:
        cli=KEXUE,
    shell:
        "{params.cli} report {wildcards.article} 2>&1 | tee {log}"


rule summary:
    input:
        lambda wildcards: list(JOBS[-1].inputs),
    output:
        html=paths.SUMMARY_HTML.format(variant=VARIANT),
        csv=paths.SUMMARY_CSV.format(variant=VARIANT),
    log:
        f"logs/{VARIANT}/summary.log",
    params:
        cli=KEXUE,
    shell:
        "{params.cli} summary 2>&1 | tee {log}"
