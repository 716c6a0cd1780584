"""What the article claims, as comparison rows. Su publishes no number (spec §7): his GAN claims
are qualitative (E1 on CelebA: without the regulariser mode collapse begins after ~25 epochs,
with it training stays stable), so a claim is written as the share of seeds that collapse,
1 or 0. Only Su's own setting (full profile, complete official CelebA) can test it; the offline
analogues are shown, never held against it. The EM check compares with scikit-learn, not with
a publication, so it holds at any profile."""

from __future__ import annotations

import math

from kexue.comparison import ArticleResults, Comparison, Published, compare

SOURCE = "article 5716 / arXiv 1807.05936 (qualitative, CelebA E1)"
COLLAPSES = Published(1.0, SOURCE + ": collapse after ~25 epochs", "higher", 0.0)
STABLE = Published(0.0, SOURCE + ": stable throughout", "lower", 0.0)
EM_TOLERANCE = 1e-3  # nats per point (spec §6)


def comparisons(results: ArticleResults) -> list[Comparison]:
    rows = []
    for run in results.runs.values():
        m = run.first
        if m["task"] == "gan":
            rows.append(_collapse_row(results, run, m))
        elif m["task"] == "vae":
            rows.append(compare(results, run, "test_elbo_nats", "test ELBO (nats)", None,
                                f"no published number; {m['data_label']}"))
        else:
            reference = Published(m["sklearn_mean_log_likelihood"],
                                  "scikit-learn GaussianMixture, same start and steps",
                                  "two-sided", EM_TOLERANCE)
            rows.append(Comparison(run.run, "EM mean log-likelihood (nats / point)", reference,
                                   run.values("em_mean_log_likelihood"), True,
                                   m["data_label"]))
    return rows


def _collapse_row(results: ArticleResults, run, m: dict) -> Comparison:
    claim = STABLE if m["snapshot_weight"] > 0 else COLLAPSES
    celeba_e1 = m["dataset"] == "celeba" and m["schedule"] == "one_batch_each"
    steps = [s["collapse_step"] for s in run.seeds.values()]
    note = (f"{m['dataset']}, {m['schedule']}, λ = {m['snapshot_weight']:g}, "
            f"{m['iterations']:,} iterations; collapse = diversity ratio falls below "
            f"{m['collapse_ratio']:g} (or never reaches it); collapse at iteration(s) "
            + ", ".join(f"{s:,.0f}" if math.isfinite(s) else "never" for s in steps))
    if not celeba_e1:
        note += "; an analogue of Su's E1 claim, not his setting"
    return compare(results, run, "collapsed", "share of seeds that collapse",
                   claim if celeba_e1 else None, note,
                   complete_data=celeba_e1 and all(s.get("complete_data", False)
                                                   for s in run.seeds.values()))
