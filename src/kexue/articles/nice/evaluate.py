"""evaluate(): test NLL, bits/dim, Su's loss, and a sample grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from kexue.io import load_torch
from kexue.nn import parameter_count
from kexue.nn.flows import bits_per_dim
from kexue.training import RunContext

from .config import RunConfig
from .data import load_prepared
from .model import Nice, build_model
from .train import test_nll


def evaluate(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    _, x_test, meta = load_prepared(ctx.data_dir)
    model = build_model(meta["dims"], cfg).to(ctx.device)
    model.load_state_dict(load_torch(ctx.out_dir / "model.pt", map_location=ctx.device))
    nll = test_nll(model, x_test, meta, cfg, ctx.device)
    dims, levels = meta["dims"], meta["n_levels"]
    metrics = {
        "recipe": cfg.recipe,
        "dataset": meta["dataset"],
        "data_label": meta["data_label"],
        "complete_data": meta["complete_data"],
        "n_levels": levels,
        "dims": dims,
        "n_test": meta["n_test"],
        "parameters": parameter_count(model),
        "epochs": cfg.epochs,
        "test_nll_nats": nll,
        "test_log_likelihood_nats": -nll,
        "test_bpd": bits_per_dim(nll, dims, levels),
        "su_loss": nll - 0.5 * dims * math.log(2 * math.pi),
        "bpd_is_valid_bound": cfg.recipe == "original",
        "dequantisation": ("none at test; training noise x - 0.01*U[0,1)" if cfg.recipe == "su"
                           else f"(k + u)/{levels}, one noise draw per test image"),
    }
    _save_samples(model, cfg, meta, ctx.artifacts)
    return metrics


def _save_samples(model: Nice, cfg: RunConfig, meta: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = model.sample(cfg.n_samples, cfg.temperature, torch.Generator().manual_seed(cfg.seed))
    side, n = math.isqrt(meta["dims"]), math.isqrt(cfg.n_samples)
    imgs = x[: n * n].clamp(0, 1).cpu().numpy().reshape(n, n, side, side)  # clip for display
    padded = np.pad(imgs, ((0, 0), (0, 0), (0, 1), (0, 1)), constant_values=0.5)
    grid = padded.transpose(0, 2, 1, 3).reshape(n * (side + 1), n * (side + 1))
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "samples.npy", imgs)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(f"NICE {cfg.recipe}, T = {cfg.temperature}")
    fig.savefig(out / "samples.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
