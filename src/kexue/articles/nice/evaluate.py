"""evaluate(): test NLL, bits/dim and Su's loss once on the test set, and a sample grid."""

from __future__ import annotations

import math

from kexue.io import load_torch
from kexue.metrics.likelihood import bits_per_dim
from kexue.nn import parameter_count
from kexue.plots import save_image_grid, to_uint8
from kexue.rng import named_generator
from kexue.training import RunContext, effective_precision, read_history

from .data import load_prepared
from .model import build_model
from .train import nll


def evaluate(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    x_test, meta = load_prepared(ctx.data_dir, "test")
    model = build_model(meta["dims"], cfg).to(ctx.device)
    model.load_state_dict(load_torch(ctx.out_dir / "model.pt", map_location=ctx.device))
    test = nll(model, x_test, meta["n_levels"], cfg, ctx.device)
    dims, levels = meta["dims"], meta["n_levels"]
    history = read_history(ctx.out_dir / "history.csv")
    best = min(history, key=lambda r: (r["val_nll"], -r["epoch"]))
    side = math.isqrt(dims)
    x = model.sample(cfg.n_samples, cfg.temperature, named_generator(cfg.seed, "samples"))
    # su's data are k/(n-1) and original's (k+u)/n: both map back to levels by x*(n-1) or x*n
    scale = levels - 1 if cfg.recipe == "su" else levels
    images = to_uint8(x.reshape(-1, 1, side, side) * scale / levels, levels)
    save_image_grid(ctx.artifacts / "samples.png", images, upscale=max(1, 96 // side))
    return {
        "recipe": cfg.recipe,
        "dataset": meta["dataset"],
        "data_label": meta["data_label"],
        "test_split": meta["test_split"],
        "complete_data": meta["complete_data"],
        "n_levels": levels,
        "dims": dims,
        "n_test": meta["n_test"],
        "parameters": parameter_count(model),
        "epochs": cfg.epochs,
        "precision": cfg.precision,  # asked for; effective_precision is what training used
        "effective_precision": effective_precision(ctx.device, cfg.precision),
        "best_epoch": int(best["epoch"]),
        "val_nll_nats": best["val_nll"],
        "test_nll_nats": test,
        "test_log_likelihood_nats": -test,
        "test_bpd": bits_per_dim(test, dims, levels),
        "su_loss": test - 0.5 * dims * math.log(2 * math.pi),
        "bpd_is_valid_bound": cfg.recipe == "original",
        "dequantisation": ("none at test; training noise x - 0.01*U[0,1)" if cfg.recipe == "su"
                           else f"(k + u)/{levels}, one noise draw per test image"),
    }
