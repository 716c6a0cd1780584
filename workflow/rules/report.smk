# One papermill report per article, then the index over all articles.


rule report:
    input:
        "workflow/notebooks/{article}.ipynb",
        article_outputs(paths.METRICS),
        article_outputs(paths.HISTORY),
    output:
        html=paths.REPORT,
        notebook=paths.REPORT_NOTEBOOK,
    log:
        "logs/report/{article}.log",
    params:
        cli=KEXUE,
    shell:
        "{params.cli} report {wildcards.article} > {log} 2>&1"


rule summary:
    input:
        expand(paths.REPORT, article=ARTICLES),
        [paths.METRICS.format(article=a, run=r) for a in ARTICLES for r in runs_of(a)],
    output:
        html=paths.SUMMARY_HTML,
        csv=paths.SUMMARY_CSV,
    log:
        "logs/summary.log",
    params:
        cli=KEXUE,
    shell:
        "{params.cli} summary > {log} 2>&1"
