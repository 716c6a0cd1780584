"""Published numbers (spec §7) and the comparison rows."""

from __future__ import annotations

from kexue.comparison import ArticleResults, Comparison, Published, compare

SU = Published(0.82, "article (Su, preliminary round, macro-F1 0.82+)", "higher", 0.02)
FIRST = Published(0.83, "article (first place, quoting the leaderboard, 0.83+)", "higher", 0.02)
MNIST1D_CNN = Published(0.94, "peer (greydanus/mnist1d README, CNN test accuracy)", "higher",
                        0.03)


def comparisons(results: ArticleResults) -> list[Comparison]:
    rows = []
    for run in results.runs.values():
        m = run.first
        if m["task"] == "mnist1d":
            rows.append(compare(results, run, "test_accuracy",
                                "MNIST-1D test accuracy (adapted network)", MNIST1D_CNN,
                                f"the article's blocks adapted to length 40 ({m['parameters']:,} "
                                f"parameters, larger than the published CNN); {m['steps']} steps"))
            continue
        tag = " (SYNTHETIC data)" if m["synthetic"] else ""
        note = f"data: {m['data_label']}" + (
            "; SYNTHETIC spectra, not the competition data" if m["synthetic"]
            else "; published scores are on the competition's test set")
        rows += [
            compare(results, run, "val_macro_f1_stage1",
                    f"val macro-F1, stage 1 cross-entropy{tag}", SU, note),
            compare(results, run, "val_macro_f1_stage2", f"val macro-F1, stage 2 soft-F1{tag}",
                    SU, note),
            compare(results, run, "macro_f1", f"{m['eval_set']} macro-F1, shipped model{tag}",
                    FIRST, note),
        ]
    return rows
