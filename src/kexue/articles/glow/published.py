"""Published numbers: Glow and RealNVP on CIFAR-10 (Su publishes samples only)."""

from __future__ import annotations

import itertools

from kexue.comparison import ArticleResults, Comparison, Published, compare

# bits/dim: seed-to-seed and Polyak-averaging differences are ~0.01-0.03
GLOW_CIFAR = Published(3.35, "paper (arXiv 1807.03039, Table 2)", "lower", 0.05)
PEER_CIFAR = Published(3.39, "peer (y0ast/Glow-PyTorch, 1 GPU)", "lower", 0.05)
REALNVP_CIFAR = Published(3.49, "paper (arXiv 1605.08803, via Glow Table 2)", "lower", 0.15)


def comparisons(results: ArticleResults) -> list[Comparison]:
    rows = []
    for run in results.runs.values():
        m = run.first
        where = m.get("data_label", "")
        if m["recipe"] == "original":
            # only the paper's own model and data compare: CIFAR-10 at K32 L3
            paper_setup = m["dataset"] == "cifar10" and m["depth"] == 32 and m["levels"] == 3
            note = (f"{m['steps_run']} steps of batch {m['batch_size']}; no Polyak averaging"
                    if paper_setup else f"not CIFAR-10 at K32 L3: {where}")
            complete = m["complete_data"] and paper_setup
            rows += [compare(results, run, "test_bpd", "CIFAR-10 test bits/dim", p, note,
                             complete_data=complete) for p in (GLOW_CIFAR, PEER_CIFAR)]
        elif m["recipe"] == "su":
            # Su published samples only. RealNVP's 3.49 is context, never a target.
            rows.append(compare(
                results, run, "test_bpd", "test bits/dim (context: RealNVP)", REALNVP_CIFAR,
                f"context only: Su publishes samples, no bits/dim; his K6 additive model is "
                f"expected above Glow's 3.35. Data: {where}", complete_data=False))
    return rows


def ablation_rows(results: ArticleResults) -> list[dict]:
    """Test bits/dim of the permutation x coupling grid, mean ± sd over seeds."""
    rows = []
    for run in results.runs.values():
        m = run.first
        if m["recipe"] != "ablation":
            continue
        row = compare(results, run, "test_bpd", "test bits/dim", None)  # no published number
        rows.append({"permutation": m["permutation"], "coupling": m["coupling"],
                     "test bits/dim": row.mean, "sd": row.sd, "seeds": len(row.values)})
    return rows


def ordering(rows: list[dict], coupling: str) -> str:
    """The permutations ordered by mean bits/dim, saying where neighbours are within noise
    (their means differ by less than the sum of their sds, or there is only one seed)."""
    ranked = sorted((r for r in rows if r["coupling"] == coupling), key=lambda r: r["test bits/dim"])
    text = ranked[0]["permutation"] if ranked else ""
    for a, b in itertools.pairwise(ranked):
        noise = (a["sd"] or 0) + (b["sd"] or 0)
        resolved = a["sd"] is not None and b["sd"] is not None and \
            b["test bits/dim"] - a["test bits/dim"] > noise
        text += (" < " if resolved else " ≈ ") + b["permutation"]
    return text
