"""evaluate(): Part A measures each kept classifier once on the test set; Part B measures each
final generator and critic, and summarises the training curves."""

from __future__ import annotations

import csv
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from kexue.gan.samples import generate, to_uint8
from kexue.io import atomic_path, load_torch
from kexue.plots import save_image_grid
from kexue.rng import named_generator
from kexue.training import RunContext

from .classifier import build_classifier, measure
from .data import load_classifier_set
from .gan import RING, Target, build_nets, critic_lipschitz, critic_saturation, get_arm
from .store import group


def evaluate(ctx: RunContext) -> dict:
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    weights = load_torch(ctx.out_dir / "model.pt", map_location=ctx.device)
    if ctx.cfg.part == "A":
        return evaluate_classifiers(ctx, weights)
    return evaluate_gans(ctx, weights, read_rows(ctx.out_dir / "history.csv"))


def read_rows(path) -> list[dict]:
    """history.csv with its text columns (the dataset) kept as text."""
    def value(v: str):
        try:
            return float(v) if v != "" else math.nan
        except ValueError:
            return v

    with open(path, newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def evaluate_classifiers(ctx: RunContext, weights: dict) -> dict:
    cfg = ctx.cfg.classifier
    out = {"part": "A", "arm": cfg.arm, "datasets": list(cfg.datasets), "epochs": cfg.epochs,
           "batch_sizes": list(cfg.batch_sizes), "by_dataset": {}}
    labels, complete = [], True
    for dataset in cfg.datasets:
        data, meta = load_classifier_set(ctx.data_dir, dataset)
        labels.append(meta["label"])
        complete = complete and meta["complete"]
        by_batch = {}
        for batch_size in cfg.batch_sizes:
            kept = group(weights, f"{dataset}/b{batch_size}")
            model = build_classifier(cfg, meta, ctx.seed)
            lam, val_acc = float(kept.pop("_lam")), float(kept.pop("_val_acc"))
            model.load_state_dict(kept)
            m = measure(model, data, meta, cfg.gradient_inputs)
            m.update(lam=lam, val_acc=val_acc)
            by_batch[str(batch_size)] = m
            for key in ("test_acc", "train_acc", "gap", "lipschitz_bound", "lipschitz_proxy",
                        "lipschitz_lower", "lam"):
                out[f"{dataset}_{key}_b{batch_size}"] = m[key]
        out["by_dataset"][dataset] = {"test_split": meta["test_split"], "by_batch": by_batch}
        _plot_layer_norms(ctx, dataset, by_batch)
    out.update(data_label="; ".join(labels), complete_data=complete)
    return out


def _plot_layer_norms(ctx: RunContext, dataset: str, by_batch: dict) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for b, m in by_batch.items():
        layers = m["layer_norms"]
        x = range(len(layers))
        ax.plot(x, [r["exact"] for r in layers], "o-", label=f"batch {b}: operator norm")
        ax.plot(x, [r["reshaped"] for r in layers], "x--", label=f"batch {b}: reshaped kernel")
    ax.set(xlabel="layer", ylabel="σ", yscale="log", title=f"{dataset}: per-layer spectral norms")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(ctx.artifacts / f"layer_norms_{dataset}.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def evaluate_gans(ctx: RunContext, weights: dict, history: list[dict]) -> dict:
    cfg = ctx.cfg.gan
    arm = get_arm(cfg.arm)
    out = {"part": "B", "arm": cfg.arm, "datasets": list(cfg.datasets), "by_dataset": {},
           "spectral_recipe": arm.spectral or "none", "complete_data": False}
    labels = []
    for dataset in cfg.datasets:
        target = Target(ctx, dataset, cfg.batch_size)
        labels.append(target.info["label"])
        critic, generator, latent = build_nets(arm, cfg, dataset, target.shape, ctx.seed)
        critic.load_state_dict(group(weights, f"{dataset}/critic"))
        generator.load_state_dict(group(weights, f"{dataset}/generator"))
        z = torch.randn(cfg.eval_samples, latent, generator=named_generator(ctx.seed, "final-z"))
        samples = generate(generator, z)
        rng = named_generator(ctx.seed, "final-lipschitz")
        n = cfg.lipschitz_points
        m = {**target.quality(samples, ctx.seed),
             **critic_lipschitz(critic, target.real(n, rng), samples[:n], rng)}
        rows = [r for r in history if r.get("dataset") == dataset]
        m.update(curve_summary(rows, dataset, cfg.iterations[dataset]))
        m.update(critic_saturation(arm, rows))  # reported, never a crash
        if dataset != RING:
            m["fid_floor"] = target.fid_floor()
        # KL to uniform is undefined when no sample is near a mode: recorded as null
        m = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in m.items()}
        out["by_dataset"][dataset] = m
        for key, value in m.items():
            out[f"{dataset}_{key}"] = value
        _save_samples(ctx, dataset, samples, target)
    out["data_label"] = "; ".join(labels)
    return out


def curve_summary(rows: list[dict], dataset: str, iterations: int) -> dict:
    """Seconds per G iteration (training only) and the mean quality over the curve points: a
    lower mean FID (a higher mean high-quality share on the ring) converges sooner."""
    key = "high_quality" if dataset == RING else "fid"
    seconds = rows[-1]["train_seconds"]
    return {"seconds_per_iteration": seconds / iterations, "train_seconds": seconds,
            "iterations": iterations,
            f"mean_curve_{key}": sum(r[key] for r in rows) / len(rows) if rows else math.nan}


def _save_samples(ctx: RunContext, dataset: str, samples: torch.Tensor, target: Target) -> None:
    path = ctx.artifacts / f"samples_{dataset}.png"
    if dataset != RING:
        images = to_uint8(samples[:64])
        save_image_grid(path, images, nrow=8, upscale=max(1, 64 // images.shape[-1]))
        return
    fig, ax = plt.subplots(figsize=(4, 4))
    pts = samples[:2000].numpy()
    ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, label="generated")
    c = target.ring.centre_tensor().numpy()
    ax.scatter(c[:, 0], c[:, 1], marker="x", color="red", label="modes")
    ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal", title="ring of 8 (synthetic)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
