"""evaluate(): test bits/dim on every test image, and sample grids per temperature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kexue.io import load_torch
from kexue.metrics.images import alternation
from kexue.metrics.likelihood import bits_per_dim, dequantise
from kexue.nn import parameter_count
from kexue.plots import save_image_grid, to_uint8
from kexue.rng import named_generator
from kexue.training import RunContext, effective_precision, read_history

from .config import RunConfig
from .model import Glow
from .train import OFFSET, evaluation_log_prob, nll, openai_beta2, setup


def evaluate(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    x_test, meta, model = setup(ctx, "test")
    levels, dims = meta["n_levels"], int(np.prod(meta["shape"]))
    model.load_state_dict(load_torch(ctx.out_dir / "model.pt", map_location=ctx.device))
    test = nll(model, x_test, levels, cfg.seed, ctx.device,
               log_prob=evaluation_log_prob(model, len(x_test), 1, cfg.compile))
    history = read_history(ctx.out_dir / "history.csv")
    last = history[-1] if history else {}
    out = ctx.artifacts
    samples = sample_grids(model, cfg, meta, out)
    return {
        "recipe": cfg.recipe,
        "dataset": meta["dataset"],
        "data_label": meta["data_label"],
        "test_split": meta["test_split"],
        "complete_data": meta["complete_data"],
        "n_train": meta["n_train"],
        "n_val": meta["n_val"],
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
        "net_init": cfg.model.net_init,
        "net_actnorm": cfg.model.net_actnorm,
        "zero_conv_gain": cfg.model.zero_conv_gain,
        "logscale_factor": cfg.model.logscale_factor,
        "optimiser": cfg.optimiser,
        "adamax_beta2": openai_beta2(meta["n_train"], cfg.batch_size)
        if cfg.optimiser == "adamax_openai" else None,
        "augment_shift": cfg.augment_shift,
        "precision": effective_precision(ctx.device, cfg.precision),
        "batch_size": cfg.batch_size,
        "parameters": parameter_count(model),
        "epochs_run": int(last.get("epoch", 0)),
        "steps_run": int(last.get("step", 0)),
        "images_seen": int(last.get("step", 0)) * cfg.batch_size,
        "collapse_guard_fired": int(sum(r.get("collapse_guard", 0) for r in history)),
        "test_nll_nats": test,
        "test_bpd": bits_per_dim(test, dims, levels),
        "final_train_bpd": last.get("train_bpd"),
        "dequantisation": f"x = (k + u)/{levels} - 0.5, one U[0,1) draw per test image "
                          f"(the run's evaluation stream); bpd = NLL/(D ln 2) + log2({levels})",
        "samples": {t: f"samples_T{t}.png" for t in samples},
        # the highest-frequency column/row pattern (kexue.metrics.images.alternation), of the
        # test images and of the samples: stripes show as columns >> the test images' value
        "alternation": {"test": _alternation(dequantise(
            x_test, torch.rand(x_test.shape, generator=named_generator(cfg.seed, "alternation")),
            levels, OFFSET)), **{f"T{t}": _alternation(x) for t, x in samples.items()}},
    }


def _alternation(x: torch.Tensor) -> dict:
    return {"columns": alternation(x, -1), "rows": alternation(x, -2)}


def sample_grids(model: Glow, cfg: RunConfig, meta: dict, out: Path) -> dict[str, torch.Tensor]:
    """One PNG grid per temperature, from the same base noise (so grids differ only in T);
    returns the samples by temperature label."""
    h = meta["shape"][1]
    samples = {}
    for t in cfg.temperatures:
        x = model.sample(cfg.n_samples, t, named_generator(cfg.seed, "samples"))
        # back to the integer levels of the data, clipped for display; 8x8 digits upscaled
        save_image_grid(out / f"samples_T{t:g}.png", to_uint8(x, meta["n_levels"], OFFSET),
                        upscale=max(1, 64 // h))
        samples[f"{t:g}"] = x.cpu()
    return samples
