"""Published numbers: Su's loss (article) and the NICE paper's MNIST log-likelihood."""

from __future__ import annotations

from kexue.comparison import ArticleResults, Comparison, Published, compare

SU_LOSS = Published(-2200.0, "article (Su's loss after ≤ 20 epochs)", "lower", 100.0)
SU_BPD = Published(5.28, "derived from the article's −2200", "lower", 0.2)
PAPER_LL = Published(1980.50, "paper (arXiv 1410.8516, Table 2)", "higher", 100.0)
PAPER_BPD = Published(4.36, "paper (1980.50 nats on MNIST)", "lower", 0.2)


def comparisons(results: ArticleResults) -> list[Comparison]:
    rows = []
    for run in results.runs.values():
        m = run.first
        note = f"{m['epochs']} epochs; data: {m['data_label']}"
        if m["recipe"] == "su":
            rows += [compare(results, run, "su_loss", "Su loss, clean test set (nats)", SU_LOSS,
                             note),
                     compare(results, run, "test_bpd", "bits/dim (not a valid bound)", SU_BPD,
                             note)]
        else:
            rows += [compare(results, run, "test_log_likelihood_nats",
                             "test log-likelihood (nats)", PAPER_LL, note + "; paper: 1500 epochs"),
                     compare(results, run, "test_bpd", "test bits/dim", PAPER_BPD,
                             note + "; paper: 1500 epochs")]
    return rows
