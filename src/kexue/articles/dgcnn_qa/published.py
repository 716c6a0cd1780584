"""Published numbers: the 2019 code's offline validation score (≈ 0.72, kexue.fm/archives/6906)
and the 2018 model's leaderboard score (0.7583, kexue.fm/archives/5409, k-fold fusion of the
word-level model). Comparable only at `full` on the official SogouQA + WebQA data. The 2018
variant (E2) runs with character substitutes for Su's word vectors: an ablation, listed without
a published number (never compared with 0.76 / 0.7583)."""

from __future__ import annotations

from kexue.comparison import ArticleResults, Comparison, Published, compare

SU_2019 = Published(0.72, "article 6906 (2019 code, offline validation, ≈)", "higher", 0.01)
LEADERBOARD_2018 = Published(0.7583, "article 5409 (2018 model, leaderboard, k-fold fusion)",
                             "higher", 0.0)
PRODUCT_GAIN = Published(0.01, "article 5409 (product vs sqrt decoding, ≈ +1 point)",
                         "two-sided", 0.01)


def _ablation_2018(results: ArticleResults, run, note: str) -> list[Comparison]:
    note += "; E2 ablation: the 2018 layout with character substitutes for the word vectors"
    return [compare(results, run, key, f"E2 (2018 variant): {label}", None, note)
            for key, label in (("score", "Sogou score"), ("accuracy", "accuracy"),
                               ("f1", "character F1"))]


def comparisons(results: ArticleResults) -> list[Comparison]:
    rows = []
    for run in results.runs.values():
        m = run.first
        note = f"{m['epochs']} epochs; data: {m['data_label']}"
        if m.get("variant") == "2018":
            rows += _ablation_2018(results, run, note)
            continue
        rows += [
            compare(results, run, "score", "Sogou score (2019 model)", SU_2019, note),
            compare(results, run, "score", "Sogou score vs the 2018 leaderboard",
                    LEADERBOARD_2018, note + "; 2018: word-level model, k-fold fusion"),
            compare(results, run, "accuracy", "accuracy", None, note),
            compare(results, run, "f1", "character F1", None, note),
            compare(results, run, "product_minus_sqrt", "E3: product − √ decoding (score)",
                    PRODUCT_GAIN, note),
        ]
    return rows
