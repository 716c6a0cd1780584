"""evaluate(): test bits/dim on every test image, and sample grids per temperature."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import torch

from kexue.io import load_torch
from kexue.nn import parameter_count
from kexue.nn.flows import bits_per_dim
from kexue.training import RunContext, read_history

from .config import RunConfig
from .model import Glow
from .train import _setup, test_nll


def evaluate(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    _, x_test, meta, model = _setup(ctx)
    levels, dims = meta["n_levels"], int(np.prod(meta["shape"]))
    model.load_state_dict(load_torch(ctx.out_dir / "model.pt", map_location=ctx.device))
    nll = test_nll(model, x_test, levels, cfg.seed, ctx.device)
    history = read_history(ctx.out_dir / "history.csv")
    last = history[-1] if history else {}
    out = ctx.artifacts
    samples = save_sample_grids(model, cfg, meta, out)
    return {
        "recipe": cfg.recipe,
        "dataset": meta["dataset"],
        "data_label": meta["data_label"],
        "test_split": meta["test_split"],
        "complete_data": meta["complete_data"],
        "n_train": meta["n_train"],
        "n_test": meta["n_test"],
        "n_levels": levels,
        "dims": dims,
        "shape": meta["shape"],
        "levels": cfg.model.levels,
        "depth": cfg.model.depth,
        "width": cfg.model.width,
        "coupling": cfg.model.coupling,
        "permutation": cfg.model.permutation,
        "actnorm": cfg.model.actnorm,
        "batch_size": cfg.batch_size,
        "parameters": parameter_count(model),
        "epochs_run": int(last.get("epoch", 0)),
        "steps_run": int(last.get("step", 0)),
        "images_seen": int(last.get("step", 0)) * cfg.batch_size,
        "collapse_guard_fired": int(sum(r.get("collapse_guard", 0) for r in history)),
        "test_nll_nats": nll,
        "test_bpd": bits_per_dim(nll, dims, levels),
        "final_train_bpd": last.get("train_bpd"),
        "dequantisation": f"x = (k + u)/{levels} - 0.5, one U[0,1) draw per test image "
                          f"(seed {cfg.seed + 10_007}); bpd = NLL/(D ln 2) + log2({levels})",
        "samples": samples,
    }


def save_sample_grids(model: Glow, cfg: RunConfig, meta: dict, out: Path) -> dict:
    """One PNG grid per temperature, from the same base noise (so grids differ only in T)."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    n = math.isqrt(cfg.n_samples)
    c, h, w = meta["shape"]
    upscale = max(1, 64 // h)  # 8x8 digits are unreadable at 1:1
    files = {}
    for t in cfg.temperatures:
        x = model.sample(n * n, t, torch.Generator().manual_seed(cfg.seed + 7))
        # back to the integer levels of the data, clipped for display
        k = torch.floor((x.float().cpu() + 0.5) * meta["n_levels"]).clamp(0, meta["n_levels"] - 1)
        img = (k / (meta["n_levels"] - 1) * 255).round().to(torch.uint8).numpy()
        grid = img.reshape(n, n, c, h, w).transpose(0, 3, 1, 4, 2).reshape(n * h, n * w, c)
        pil = Image.fromarray(grid[..., 0] if c == 1 else grid)
        pil = pil.resize((n * w * upscale, n * h * upscale), Image.NEAREST)
        name = f"samples_T{t:g}.png"
        pil.save(out / name)
        files[f"{t:g}"] = name
    return files
