"""train(): the article's two stages on spectra, or the MNIST-1D adaptation (spec §4, §8)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kexue.data.embedded import load_npz
from kexue.data.spectra import CLASSES
from kexue.metrics.classification import macro_f1, per_class_f1
from kexue.rng import epoch_permutation, step_generator
from kexue.training import KeepBest, LoopResult, Run, RunContext, autocast

from .data import ClassMixSampler, load_prepared, to_input
from .model import SpectraNet, build_model, score_loss

STAGE_STEP_OFFSET = 10**8  # stage 2 draws from other (seed, step) generators than stage 1


@torch.no_grad()
def predict(model: SpectraNet, x: np.ndarray, device: torch.device, batch: int,
            scale: bool = True, precision: str = "fp32") -> np.ndarray:
    """Softmax probabilities (N, classes) in eval mode (no dropout)."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        chunk = np.asarray(x[i: i + batch], dtype=np.float32)
        xb = to_input(chunk) if scale else torch.from_numpy(chunk).unsqueeze(1)
        with autocast(device, precision):
            out.append(torch.softmax(model(xb.to(device)).float(), 1).cpu())
    model.train(was_training)
    return torch.cat(out).numpy()


def _stage(ctx: RunContext, model: SpectraNet, stage: int, data, sampler: ClassMixSampler,
           bar: float | None = None) -> tuple[LoopResult, Run, KeepBest]:
    """One stage; its KeepBest saves only epochs scoring at least ``bar`` (and its own best)."""
    cfg, device = ctx.cfg, ctx.device
    epochs, lr = (cfg.epochs1, cfg.lr1) if stage == 1 else (cfg.epochs2, cfg.lr2)
    run = Run(ctx, f"stage{stage}")
    # A fresh Adam each stage: stage 2 must not inherit stage 1's moments.
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=cfg.adam_eps,
                           fused=True)
    best = run.keep_best("max")
    if bar is not None:  # epoch 0: nothing of this stage saved yet (a resume restores its own)
        best.load_state_dict({"score": bar, "epoch": 0})
    x_train, y_train = data.flux[: data.n_train], data.labels[: data.n_train]
    x_val, y_val = data.flux[data.n_train:], data.labels[data.n_train:]

    def train_step(step: int) -> dict:
        g = step_generator(cfg.seed, step + STAGE_STEP_OFFSET * (stage - 1))
        idx = np.sort(sampler(g))  # sorted: a memmap reads in file order (no BatchNorm here)
        xb = to_input(x_train[idx]).to(device)
        yb = torch.from_numpy(y_train[idx]).to(device)
        with autocast(device, cfg.precision):
            logits = model(xb, generator=g).float()
        loss = F.cross_entropy(logits, yb) if stage == 1 else score_loss(logits, yb, cfg.loss_eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def end_of_epoch(epoch: int, row: dict) -> dict:
        pred = predict(model, x_val, device, cfg.eval_batch, precision=cfg.precision).argmax(1)
        score = macro_f1(y_val, pred)
        best.update(epoch, score, model)  # Keras ModelCheckpoint-like, but a later tie wins
        f1 = per_class_f1(y_val, pred)
        return {"val_macro_f1": score, **{f"val_f1_{c}": float(v) for c, v in zip(CLASSES, f1)}}

    result = run.fit(modules={"model": model, "opt": opt, "best": best},
                     total_steps=epochs * cfg.steps_per_epoch,
                     steps_per_epoch=cfg.steps_per_epoch, train_step=train_step,
                     end_of_epoch=end_of_epoch, checkpoint_every=cfg.checkpoint_every)
    return result, run, best


def _train_spectra(ctx: RunContext) -> None:
    cfg = ctx.cfg
    data = load_prepared(ctx.data_dir)
    sampler = ClassMixSampler(data.labels[: data.n_train], cfg.batch_mix)
    torch.manual_seed(cfg.seed)
    model = build_model("spectra", cfg.model.dropout).to(ctx.device)
    r1, run1, best1 = _stage(ctx, model, 1, data, sampler)
    # Stage 2 starts from the best stage-1 weights (soft-F1 alone does not converge). Su reuses
    # the stage-1 callback, so stage 2 saves only weights scoring at least the stage-1 best.
    model.load_state_dict(best1.weights(ctx.device))
    r2, run2, best2 = _stage(ctx, model, 2, data, sampler, bar=best1["score"])
    shipped = best2 if best2["epoch"] else best1
    rows = ([{"stage": 1, "epoch_total": r["epoch"], **r} for r in r1.history]
            + [{"stage": 2, "epoch_total": r["epoch"] + cfg.epochs1, **r} for r in r2.history])
    weights = shipped.weights(ctx.device)
    run1.clear()
    run2.finish(weights, rows)


def _train_mnist1d(ctx: RunContext) -> None:
    """The length-40 adaptation: shuffled batches of 100, cross-entropy, Adam 1e-3."""
    cfg, device = ctx.cfg, ctx.device
    d = load_npz(Path(ctx.data_dir) / "mnist1d.npz", {"x_train": ("f", 2), "y_train": ("i", 1)})
    x_train, y_train = torch.from_numpy(d["x_train"]).float(), torch.from_numpy(d["y_train"])
    torch.manual_seed(cfg.seed)
    model = build_model("mnist1d", cfg.model.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.mnist_lr, eps=cfg.adam_eps, fused=True)
    steps_per_epoch = math.ceil(len(x_train) / cfg.mnist_batch)
    run = Run(ctx, "mnist1d")

    def train_step(step: int) -> dict:
        epoch, i = divmod(step, steps_per_epoch)
        idx = epoch_permutation(len(x_train), cfg.seed, epoch)[
            i * cfg.mnist_batch: (i + 1) * cfg.mnist_batch]
        xb, yb = x_train[idx].unsqueeze(1).to(device), y_train[idx].to(device)
        with autocast(device, cfg.precision):
            logits = model(xb, generator=step_generator(cfg.seed, step)).float()
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "acc": (logits.argmax(1) == yb).float().mean().item()}

    # the last weights ship, as the published CNN's; the test set is evaluated once, later
    result = run.fit(modules={"model": model, "opt": opt}, total_steps=cfg.mnist_steps,
                     steps_per_epoch=steps_per_epoch, train_step=train_step,
                     end_of_epoch=None, checkpoint_every=cfg.checkpoint_every)
    run.finish(model.state_dict(), result.history)


def train(ctx: RunContext) -> None:
    if ctx.cfg.task == "spectra":
        _train_spectra(ctx)
    else:
        _train_mnist1d(ctx)
