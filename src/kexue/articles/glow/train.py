"""train(): maximum likelihood on dequantised images, with Su's collapse guard."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from kexue.data.augment import random_shift
from kexue.metrics.likelihood import EVAL_BATCH, bits_per_dim, dequantise, test_nll
from kexue.nn.flows import data_dependent_init
from kexue.rng import epoch_permutation, named_generator, step_generator
from kexue.training import (
    Checkpointer,
    CompileCost,
    Run,
    RunContext,
    TrackedState,
    autocast,
    compiled_for_batches,
    compiled_if_long,
)

from .config import RunConfig
from .data import load_prepared
from .model import Glow, build_model

# Su's x/256 - 0.5 + U[0, 1/256): the data cube centred on 0
OFFSET = -0.5

# Channels-last (NHWC) parameters: oneDNN's CPU convolutions on the first level's 16x16 maps ran
# 2.4x faster so (3x3 then 1x1 conv of width 128, batch 128, 1 thread); against normflows' Glow
# (benchmarks/peers.py, L3 K4 W128) evaluation went from 0.98x to 0.70x (README "Speed").
MEMORY_FORMAT = torch.channels_last
# torch.compile of the loss, measured by benchmarks/peers.py --compile (L3 K4 W128, 16x16, batch
# 32, 1 thread, channels-last; README "Speed"): 72 s of compilation (cold cache), a 75 ms eager
# step (fused Adam), 18 % of it saved (ours/peer 0.65 compiled against 0.74 eager). Pays from
# ~5,300 steps: the full profile's 150k, not default's <= 2.4k. Larger Glows step slower and
# repay it sooner.
COMPILE_COST = CompileCost(compile_s=72.0, step_s=0.075, saving=0.18)


# torch.compile of the evaluation's log-likelihood, measured on nll() itself (L3 K4 W128, 16x16,
# 1 thread, 1,000 images a pass, six alternating passes; the log-likelihood alone saves more:
# 0.47x the peer's time against 0.83x eager in benchmarks/peers.py --compile --eval-batch 500):
# 45 s of compilation (cold cache), a 0.31 s eager batch of 500 images, 15 % of it saved. Pays
# from ~970 batches: the full profile's validation of every epoch, not default's 12 batches
# nor a single pass over a test split.
EVAL_COMPILE_COST = CompileCost(compile_s=45.0, step_s=0.31, saving=0.15)


def evaluation_log_prob(model: Glow, n_images: int, passes: int, mode: str):
    """``model.log_prob`` for ``passes`` evaluations of ``n_images``, compiled where that many
    batches repay it (the last, smaller batch of each pass runs eagerly)."""
    return compiled_for_batches(model.log_prob, EVAL_BATCH, passes * (n_images // EVAL_BATCH),
                                mode, EVAL_COMPILE_COST)


def nll(model: Glow, k: torch.Tensor, n_levels: int, seed: int, device, limit: int = 0,
        log_prob=None) -> float:
    """Mean NLL (nats / image) of dequantised images, one fixed noise draw per image;
    ``log_prob`` defaults to the model's own."""
    was_training = model.training
    model.eval()
    with torch.inference_mode():  # no autograd state for a forward-only pass
        value = test_nll(log_prob or model.log_prob, k[:limit] if limit else k,
                         lambda kk, u: dequantise(kk, u, n_levels, OFFSET), seed, device)
    model.train(was_training)
    return value


class CollapseGuard:
    """Su's guard: keep the weights of the lowest epoch loss; once the 0-based epoch index (as
    Keras counts) exceeds ``cfg.collapse_after``, an epoch loss above 0 (worse than the uniform
    density on the data cube, i.e. bpd > log2(n_levels)) means the flow has collapsed: reload
    the best weights, lr -> collapse_lr. ``epoch`` is 1-based, as in the history."""

    def __init__(self, cfg: RunConfig, model: nn.Module, opt, state: TrackedState,
                 ckpt: Checkpointer):
        self.cfg, self.model, self.opt, self.state, self.ckpt = cfg, model, opt, state, ckpt

    def __call__(self, epoch: int, loss: float) -> bool:
        if loss <= self.state["best_loss"]:
            self.state["best_loss"] = loss
            self.ckpt.save({"model": self.model.state_dict(), "epoch": epoch}, "best")
            return False
        if not (self.cfg.collapse_guard and epoch - 1 > self.cfg.collapse_after and loss > 0):
            return False
        best = self.ckpt.load("best", map_location=next(self.model.parameters()).device)
        self.model.load_state_dict(best["model"])
        self.state["lr"] = self.cfg.collapse_lr
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.collapse_lr
        self.state["collapses"] = self.state.get("collapses", 0) + 1
        print(f"[glow] collapse guard: epoch {epoch} loss {loss:.4g} > 0; reloaded the weights "
              f"of epoch {best['epoch']}, lr -> {self.cfg.collapse_lr:g}", flush=True)
        return True


def openai_beta2(n_train: int, batch_size: int) -> float:
    """openai/glow's beta2 = 1 - 1/(train_its * polyak_epochs), train_its = the steps of one
    pass over the training set, polyak_epochs = 1."""
    return 1.0 - 1.0 / math.ceil(n_train / batch_size)


def _optimiser(cfg: RunConfig, params, n_train: int):
    if cfg.optimiser == "adam":
        # fused: one kernel for all ~140 parameter tensors (ours/peer 0.86 against 0.92)
        return torch.optim.Adam(params, lr=cfg.lr, fused=True)
    if cfg.optimiser == "adamax":
        return torch.optim.Adamax(params, lr=cfg.lr)
    if cfg.optimiser == "adamax_openai":
        # PyTorch's Adamax with openai's beta2; the sqrt(1 - beta2^t) factor is in _lr_factor.
        # (openai adds eps after the max, PyTorch to |g| inside it: a 1e-8 difference.)
        return torch.optim.Adamax(params, lr=cfg.lr,
                                  betas=(0.9, openai_beta2(n_train, cfg.batch_size)))
    raise ValueError(f"unknown optimiser {cfg.optimiser!r} (adam | adamax | adamax_openai)")


def _lr_factor(cfg: RunConfig, opt, step: int) -> float:
    """Linear warm-up, times openai's sqrt(1 - beta2^t) step scaling (t = step + 1)."""
    factor = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    if cfg.optimiser == "adamax_openai":
        factor *= math.sqrt(1.0 - opt.defaults["betas"][1] ** (step + 1))
    return factor


class _Batches:
    """Batch ``step`` = images [step * B, (step + 1) * B) of an endless stream of epoch
    permutations: every image once per pass, a pure function of (seed, step)."""

    def __init__(self, n: int, batch: int, seed: int):
        self.n, self.batch, self.seed, self.cache = n, batch, seed, {}

    def _perm(self, p: int) -> torch.Tensor:
        if p not in self.cache:
            self.cache = {p: epoch_permutation(self.n, self.seed, p)}
        return self.cache[p]

    def __call__(self, step: int) -> torch.Tensor:
        pos = torch.arange(step * self.batch, (step + 1) * self.batch)
        passes, idx = pos // self.n, pos % self.n
        return torch.cat([self._perm(int(p))[idx[passes == p]] for p in passes.unique()])


def setup(ctx: RunContext, part: str):
    """Threads, one part of the prepared data and a freshly built model on the run's device."""
    torch.set_num_threads(ctx.cfg.threads or ctx.threads)
    k, meta = load_prepared(ctx.data_dir, ctx.cfg.dataset, part)
    return k, meta, build_model(ctx.cfg, meta["shape"]).to(ctx.device,
                                                            memory_format=MEMORY_FORMAT)


def train(ctx: RunContext) -> None:
    cfg = ctx.cfg
    x_train, meta, model = setup(ctx, "train")
    x_val, _ = load_prepared(ctx.data_dir, cfg.dataset, "val")
    levels, dims = meta["n_levels"], int(np.prod(meta["shape"]))
    opt = _optimiser(cfg, model.parameters(), len(x_train))
    run = Run(ctx)
    ckpt = run.ckpt
    state = TrackedState(lr=cfg.lr, best_loss=math.inf, collapses=0)
    batches = _Batches(len(x_train), cfg.batch_size, cfg.seed)
    guard = CollapseGuard(cfg, model, opt, state, ckpt)

    if ckpt.load() is None:  # a resumed run keeps its saved init (and must not redo it)
        g = named_generator(cfg.seed, "actnorm-init")
        k = x_train[torch.randperm(len(x_train), generator=g)[: cfg.actnorm_init_images]]
        x = dequantise(k, torch.rand(k.shape, generator=g), levels, OFFSET).to(ctx.device)
        if data_dependent_init(model, x):
            print(f"[glow/{ctx.run}] data-dependent actnorm init on {len(x)} images")

    mean_nll = compiled_if_long(lambda x: -model.log_prob(x).mean(),
                                cfg.epochs * cfg.steps_per_epoch, cfg.compile, COMPILE_COST)

    def train_step(step: int) -> dict:
        k = x_train[batches(step)]
        g = step_generator(cfg.seed, step)
        if cfg.augment_shift:
            k = random_shift(k, cfg.augment_shift, g)
        x = dequantise(k, torch.rand(k.shape, generator=g), levels, OFFSET).to(ctx.device)
        for group in opt.param_groups:
            group["lr"] = state["lr"] * _lr_factor(cfg, opt, step)
        with autocast(ctx.device, cfg.precision):
            loss = mean_nll(x)
        if not torch.isfinite(loss):  # leave the weights alone: fit stops on this loss
            return {"loss": loss.item()}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        return {"loss": loss.item(), "bpd": bits_per_dim(loss.item(), dims, levels)}

    n_val = min(cfg.eval_images, len(x_val)) if cfg.eval_images else len(x_val)
    val_log_prob = evaluation_log_prob(model, n_val, cfg.epochs, cfg.compile)

    def end_of_epoch(epoch: int, row: dict) -> dict:
        collapsed = guard(epoch, row["train_loss"])
        val = nll(model, x_val, levels, cfg.seed, ctx.device, cfg.eval_images, val_log_prob)
        return {"val_nll": val, "val_bpd": bits_per_dim(val, dims, levels),
                "lr": state["lr"], "collapse_guard": int(collapsed)}

    result = run.fit(modules={"model": model, "opt": opt, "state": state},
                     total_steps=cfg.epochs * cfg.steps_per_epoch,
                     steps_per_epoch=cfg.steps_per_epoch, train_step=train_step,
                     end_of_epoch=end_of_epoch, checkpoint_every=cfg.checkpoint_every)
    run.finish(model.state_dict(), result.history)
