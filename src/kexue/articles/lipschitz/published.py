"""Published numbers and Su's qualitative claims.

Su publishes no number (samples only); the SN-GAN paper's Inception scores (Part C) need
Inception weights, which an offline run does not have: those rows stay "not computed". The
claims are decided from the runs' own measurements, with the seed spread.
"""

from __future__ import annotations

import math
import statistics

from kexue.comparison import ArticleResults, Comparison, Published, compare, mean_sd

# SN-GAN (Miyato et al. 2018, arXiv 1802.05957, Table 2): standard CNN, standard loss, CIFAR-10
SNGAN_IS = Published(7.42, "paper (arXiv 1802.05957, Table 2; Inception Score)", "higher", 0.3)
SNGAN_FID = Published(29.3, "paper (arXiv 1802.05957, Table 2; Inception FID)", "lower", 3.0)
PART_C_NOTE = ("Part C not computed: Inception weights are not available offline, and feature "
               "FID from the self-trained network is not comparable with Inception FID")


def comparisons(results: ArticleResults) -> list[Comparison]:
    rows = []
    for run in results.runs.values():
        m = run.first
        if m["part"] == "A":
            for d in m["datasets"]:
                for b in m["batch_sizes"]:
                    rows.append(compare(results, run, f"{d}_test_acc_b{b}",
                                        f"{d} test accuracy, batch {b}", None,
                                        f"arm {m['arm']}; no published number (Part A is the "
                                        f"project's design after Yoshida & Miyato)"))
        else:
            for d in m["datasets"]:
                key = f"{d}_high_quality" if d == "ring" else f"{d}_fid"
                label = "high-quality share" if d == "ring" else "feature FID"
                rows.append(compare(results, run, key, f"{d}: {label} after training", None,
                                    "Su publishes samples only"))
    return rows


def _values(results: ArticleResults, part: str, arm: str, key: str) -> list[float]:
    return [float(m[key]) for run in results.runs.values() for m in run.seeds.values()
            if m["part"] == part and m["arm"] == arm and key in m]


def _spread(v: list[float]) -> str:
    if not v:
        return "—"
    mean, sd = mean_sd(v)
    return f"{mean:.4g} ± {sd:.2g} (n={len(v)})"


def _verdict(a: list[float], b: list[float], a_better: bool) -> str:
    """'supported' when a is better than b by more than the seeds' spread (sd of the
    difference of means), 'contradicted' when worse by more, otherwise 'inconclusive'."""
    if len(a) < 2 or len(b) < 2:
        return "inconclusive (fewer than 2 seeds)"
    diff = statistics.fmean(a) - statistics.fmean(b)
    noise = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    better = diff < 0 if not a_better else diff > 0
    if abs(diff) <= noise:
        return "inconclusive (within the seed spread)"
    return "supported" if better else "contradicted"


def claims(results: ArticleResults) -> list[dict]:
    """Su's and Yoshida & Miyato's claims against this run's measurements."""
    rows = []
    a_runs = [m for r in results.runs.values() for m in r.seeds.values() if m["part"] == "A"]
    for d in a_runs[0]["datasets"] if a_runs else ():
        largest = max(a_runs[0]["batch_sizes"])
        key = f"{d}_test_acc_b{largest}"
        snr, wd = _values(results, "A", "snr", key), _values(results, "A", "weight_decay", key)
        verdict = _verdict(snr, wd, a_better=True)
        if verdict == "inconclusive (within the seed spread)" and \
                statistics.fmean(snr) >= statistics.fmean(wd):
            verdict = "supported (SNR ≥ WD, difference within the seed spread)"
        rows.append({"claim": f"SNR at least as good as weight decay at large batch "
                              f"({d}: test accuracy, batch {largest})",
                     "source": "Yoshida & Miyato 2017 (cited by the article)",
                     "evidence": f"SNR {_spread(snr)} vs WD {_spread(wd)}",
                     "verdict": verdict})
    b_runs = [m for r in results.runs.values() for m in r.seeds.values() if m["part"] == "B"]
    datasets = sorted({d for m in b_runs for d in m["datasets"]})
    for d in datasets:
        quality = "high_quality" if d == "ring" else "fid"
        key = f"{d}_mean_curve_{quality}"
        su, gp = _values(results, "B", "wgan-sn-su", key), _values(results, "B", "wgan-gp", key)
        rows.append({"claim": f"WGAN-SN converges sooner than WGAN-GP ({d}: mean {quality} "
                              f"over the curve)",
                     "source": "article",
                     "evidence": f"SN(su) {_spread(su)} vs GP {_spread(gp)}",
                     "verdict": _verdict(su, gp, a_better=quality == "high_quality")})
        key = f"{d}_seconds_per_iteration"
        su, gp = _values(results, "B", "wgan-sn-su", key), _values(results, "B", "wgan-gp", key)
        rows.append({"claim": f"each WGAN-SN step is cheaper than a WGAN-GP step ({d}: seconds "
                              f"per G iteration, same machine)",
                     "source": "article",
                     "evidence": f"SN(su) {_spread(su)} s vs GP {_spread(gp)} s",
                     "verdict": _verdict(su, gp, a_better=False)})
    rows.append({"claim": f"SN-GAN, standard CNN, CIFAR-10: IS {SNGAN_IS.value}, "
                          f"FID {SNGAN_FID.value}", "source": SNGAN_IS.source,
                 "evidence": "—", "verdict": PART_C_NOTE})
    return rows
