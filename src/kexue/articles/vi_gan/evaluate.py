"""Metrics and figures of one vi_gan run (the report gathers the seeds and the arms)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from kexue.articles.vi_gan import evaluation
from kexue.articles.vi_gan.data import load_images
from kexue.articles.vi_gan.model import VAE
from kexue.articles.vi_gan.vae import mean_elbo
from kexue.gan.saturation import discriminator_saturation
from kexue.io import load_torch
from kexue.plots import save_image_grid
from kexue.rng import named_generator
from kexue.training import RunContext, read_history

SYNTHETIC = "synthetic: ring of 8 Gaussians (radius 2, σ 0.02), sampled by code"


def evaluate(ctx: RunContext) -> dict:
    return {"gan": _evaluate_gan, "vae": _evaluate_vae, "em": _evaluate_em}[ctx.cfg.task](ctx)


def _evaluate_gan(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    generator, _ = evaluation.build_gan(cfg, evaluation.data_shape(ctx))
    generator.load_state_dict(load_torch(ctx.out_dir / "model.pt")["generator"])
    history = read_history(ctx.out_dir / "history.csv")
    judge = evaluation.GanJudge.for_run(ctx)
    final = judge(generator, cfg.iterations, ctx.artifacts)
    collapse, ever_diverse = evaluation.collapse_step(history, cfg.collapse_ratio)
    toy = evaluation.is_toy(cfg)
    meta = {} if toy else evaluation.data_meta(ctx)
    return {
        "task": "gan",
        **final,
        "collapse_step": collapse,
        "collapse_evaluation": collapse / cfg.eval_every if math.isfinite(collapse) else math.nan,
        "collapsed": math.isfinite(collapse),
        "ever_diverse": ever_diverse,
        "collapse_ratio": cfg.collapse_ratio,
        **discriminator_saturation(history).metrics(),  # reported, never a crash
        "iterations": cfg.iterations,
        "schedule": cfg.schedule,
        "snapshot_weight": cfg.snapshot_weight,
        "dataset": cfg.dataset,
        "data_label": SYNTHETIC if toy else meta["label"],
        "complete_data": bool(meta.get("complete", False)),
        "metric_note": "" if toy else (f"{judge.fid_label}: not Inception, never comparable "
                                       f"with published FIDs"),
    }


def _evaluate_vae(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    images = load_images(ctx.data_dir, cfg.dataset)
    x_test = images.unit(images.test)
    model = VAE(x_test.shape[1], cfg.vae.hidden, cfg.vae.latent_dim)
    model.load_state_dict(load_torch(ctx.out_dir / "model.pt"))
    elbo = mean_elbo(model, x_test, named_generator(ctx.seed, "test-elbo"), cfg.elbo_samples)
    _latent_figure(model, x_test, images.test_labels, ctx.artifacts / "latent_space.png")
    _manifold(model, images, ctx.artifacts / "manifold.png")
    return {"task": "vae", "test_elbo_nats": elbo, "dataset": cfg.dataset, "data_label": images.label,
            "n_test": len(x_test), "elbo_samples": cfg.elbo_samples,
            "metric_note": ("Bernoulli likelihood on grey levels scaled to [0, 1]: a "
                            "cross-entropy, not a bound on a discrete likelihood")}


@torch.no_grad()
def _latent_figure(model: VAE, x, labels, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model.eval()
    mean, _ = model.encode(x)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    points = ax.scatter(mean[:, 0], mean[:, 1], c=labels, cmap="tab10", s=6)
    fig.colorbar(points, ax=ax, label="digit")
    ax.set(xlabel="μ₁", ylabel="μ₂", title="test images in the 2-d latent space (means)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@torch.no_grad()
def _manifold(model: VAE, images, path, n: int = 15) -> None:
    """Decoded means over a grid of normal quantiles (5 %-95 %), as in Su's vae_keras.py."""
    from scipy.stats import norm

    model.eval()
    q = torch.tensor(norm.ppf(np.linspace(0.05, 0.95, n)), dtype=torch.float32)
    z = torch.stack(torch.meshgrid(q, q.flip(0), indexing="xy"), -1).reshape(-1, 2)
    side = images.train.shape[-1]
    decoded = torch.sigmoid(model.decode_logits(z)).reshape(-1, 1, side, side)
    save_image_grid(path, (decoded * 255).round().to(torch.uint8).numpy(), n,
                    upscale=max(1, 64 // side))


def _evaluate_em(ctx: RunContext) -> dict:
    state = load_torch(ctx.out_dir / "model.pt")
    history = [row["mean_log_likelihood"] for row in read_history(ctx.out_dir / "history.csv")]
    ours, reference = history[-1], float(state["sklearn_log_likelihood"])
    return {"task": "em", "em_mean_log_likelihood": ours, "sklearn_mean_log_likelihood": reference,
            "abs_difference_per_point": abs(ours - reference),
            "matches_sklearn": abs(ours - reference) < 1e-3,
            "monotone": all(b >= a - 1e-12 for a, b in itertools.pairwise(history)),
            "iterations": len(history) - 1,
            "data_label": "synthetic: 2-D mixture of three anisotropic Gaussians"}
