"""evaluate(): open-set top-1/5/10 retrieval inside the held-out groups (Su's rule and the
own-group variant), training-set accuracy (E2), retrieval examples and a 2-D map of held-out
encodings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kexue.io import load_torch, write_json
from kexue.metrics.retrieval import group_separation, ranked_neighbours, retrieval_metrics
from kexue.nn import parameter_count
from kexue.rng import named_generator
from kexue.training import RunContext, read_history

from .data import HELDOUT, TRAIN, load_prepared, load_texts
from .model import GroupClassifier
from .train import build_model, encode

MAP_GROUPS = 10  # held-out groups drawn in the 2-D map
NEIGHBOURS = 5  # shown per retrieval example


@torch.no_grad()
def training_accuracy(model: GroupClassifier, ids: torch.Tensor, labels: torch.Tensor, device,
                      batch: int = 1000) -> float:
    model.eval()
    hits = sum((model(ids[i:i + batch].to(device)).argmax(1).cpu() == labels[i:i + batch])
               .sum().item() for i in range(0, len(ids), batch))
    return hits / len(ids)


def best_epoch(history: list[dict]) -> int:
    """The epoch whose weights were kept: the best validation top-1, ties to the later one."""
    best = max(range(len(history)), key=lambda i: (history[i]["val_top1"], i))
    return int(history[best]["epoch"])


def evaluate(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    torch.set_num_threads(cfg.threads or ctx.threads)
    data = load_prepared(ctx.data_dir)
    model = build_model(cfg, data).to(ctx.device)
    model.load_state_dict(load_torch(ctx.out_dir / "model.pt", map_location=ctx.device))
    rows = np.flatnonzero(data.part == HELDOUT)
    ids, groups = (torch.from_numpy(a) for a in data.split(HELDOUT))
    enc = encode(model.encoder, ids, ctx.device)
    retrieval = retrieval_metrics(enc, groups)
    separation = group_separation(enc, groups)
    train_ids, train_labels = (torch.from_numpy(a) for a in data.split(TRAIN))
    history = read_history(ctx.out_dir / "history.csv")
    meta = data.meta
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    texts = load_texts(ctx.data_dir)
    _save_examples(enc, groups, [texts[i] for i in rows], cfg.examples, ctx.artifacts)
    _save_map(enc, groups, cfg.loss, meta["data_label"], ctx.artifacts)
    return {
        "loss": cfg.loss, **retrieval,
        "separation_same": separation["same"], "separation_other": separation["other"],
        "separation_gap": separation["gap"],
        "train_accuracy": training_accuracy(model, train_ids, train_labels, ctx.device),
        "best_epoch": best_epoch(history), "epochs": cfg.epochs,
        "val_top1_at_best": max(r["val_top1"] for r in history),
        "heldout_groups": meta["counts"]["heldout"]["groups"],
        "heldout_duplicated_sentences_before_dedup":
            meta["heldout_duplicated_sentences_before_dedup"],
        "duplicates_dropped": sum(meta["duplicates_dropped"].values()),
        # LCQMC: dev-split groups dropped for sharing a sentence with a training group
        "heldout_groups_dropped_for_sharing": meta.get(
            "dev_groups_dropped_for_sharing_a_sentence"),
        "n_classes": meta["n_classes"], "vocab_size": meta["vocab_size"],
        "min_count": meta["min_count"],  # Su: 5; LCQMC: 2 [deviation]
        "parameters": parameter_count(model),
        "encoder_parameters": parameter_count(model.encoder),
        "masked_deviation": cfg.model.masked,
        "data_label": meta["data_label"], "synthetic": meta["synthetic"],
        "complete_data": meta["complete_data"],
    }


def _save_examples(enc: torch.Tensor, groups: torch.Tensor, texts: list[str], n: int,
                   out: Path) -> None:
    """``n`` queries drawn with a fixed stream (the same for every run), their top neighbours
    with the query excluded, each marked as a hit (same group) or not."""
    n = min(n, len(texts))
    picks = torch.randperm(len(texts), generator=named_generator(0, "examples"))[:n]
    neighbours = ranked_neighbours(enc, NEIGHBOURS, exclude_self=True, queries=picks)
    examples = []
    for q, row in zip(picks.tolist(), neighbours.tolist()):
        examples.append({"query": texts[q], "neighbours": [
            {"text": texts[j], "cosine": float(enc[q] @ enc[j]),
             "hit": bool(groups[j] == groups[q])} for j in row]})
    write_json(out / "examples.json", examples)


def _save_map(enc: torch.Tensor, groups: torch.Tensor, loss: str, data_label: str,
              out: Path) -> None:
    """t-SNE of the held-out encodings of MAP_GROUPS groups (a fixed draw among the largest),
    coloured by group: ``map.npz`` (xy, group) and ``map.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    labels, counts = torch.unique(groups, return_counts=True)
    large = labels[counts >= counts.max().clamp(max=5)]
    chosen = large[torch.randperm(len(large), generator=named_generator(0, "map"))[:MAP_GROUPS]]
    rows = torch.isin(groups, chosen).nonzero().squeeze(1)
    x = enc[rows.to(enc.device)].cpu().numpy()
    xy = TSNE(2, perplexity=min(10, len(x) - 1), init="pca", random_state=0).fit_transform(x)
    g = groups[rows].numpy()
    np.savez(out / "map.npz", xy=xy, group=g)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(xy[:, 0], xy[:, 1], c=np.unique(g, return_inverse=True)[1], cmap="tab10", s=18)
    ax.set_title(f"{loss}: {len(np.unique(g))} held-out groups (t-SNE)\n{data_label[:60]}",
                 fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.savefig(out / "map.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
