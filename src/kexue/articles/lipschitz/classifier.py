"""Part A: one classifier per (batch size, λ), λ picked on the validation split; the measured
Lipschitz quantities of the kept model."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from kexue.nn.lipschitz import SpectralPenalty, input_gradient_norms, lipschitz_bound
from kexue.rng import derive_seed, epoch_permutation, named_generator
from kexue.training import Run, RunContext

from .config import ClassifierConfig
from .data import load_classifier_set
from .model import VGGClassifier


def build_classifier(cfg: ClassifierConfig, meta: dict, seed: int) -> VGGClassifier:
    """The same initial weights for every batch size and λ of a seed (fair comparisons)."""
    shape = meta["shape"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        return VGGClassifier(shape[0], meta["n_classes"], tuple(cfg.widths), len(shape) - 1,
                             spectral="original" if cfg.arm == "sn" else None)


def learning_rate(cfg: ClassifierConfig, batch_size: int, step: int, total: int) -> float:
    """Cosine from the (optionally linearly scaled) base lr to 0: the same schedule shape at
    every batch size, a pure function of the step (resumable)."""
    base = cfg.lr * (batch_size / cfg.base_batch if cfg.lr_scaling == "linear" else 1.0)
    return base * 0.5 * (1 + math.cos(math.pi * step / total))


def _optimiser(model: nn.Module, cfg: ClassifierConfig, lam: float) -> torch.optim.SGD:
    """SGD with momentum; weight decay (SGD's λW, the gradient of (λ/2)‖W‖_F²) on the conv and
    linear weights only, never on biases."""
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d,
                                                                   nn.Linear))
               and not hasattr(m, "parametrizations")]
    ids = {id(p) for p in weights}
    rest = [p for p in model.parameters() if id(p) not in ids]
    decay = lam if cfg.arm == "weight_decay" else 0.0
    return torch.optim.SGD([{"params": weights, "weight_decay": decay},
                            {"params": rest, "weight_decay": 0.0}],
                           lr=cfg.lr, momentum=cfg.momentum)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    was_training = model.training
    model.eval()
    hits = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(batch),
                                                                         y.split(batch)))
    model.train(was_training)
    return hits / len(x)


def train_one(ctx: RunContext, dataset: str, data: dict, meta: dict, batch_size: int,
              lam: float) -> tuple[float, dict, list[dict]]:
    """Train one model; returns (final validation accuracy, weights, history rows)."""
    cfg: ClassifierConfig = ctx.cfg.classifier
    seed = ctx.seed
    model = build_classifier(cfg, meta, seed).to(ctx.device)
    opt = _optimiser(model, cfg, lam)
    snr = (SpectralPenalty.for_model(model, named_generator(seed, "snr")).to(ctx.device)
           if cfg.arm == "snr" else None)
    x, y = data["x_train"], data["y_train"]
    steps_per_epoch = math.ceil(len(x) / batch_size)  # the last partial batch is kept
    total = cfg.epochs * steps_per_epoch
    run = Run(ctx, stage=stage_name(dataset, batch_size, lam))

    def train_step(step: int) -> dict:
        epoch, i = divmod(step, steps_per_epoch)
        rows = epoch_permutation(len(x), seed, epoch)[i * batch_size:(i + 1) * batch_size]
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, batch_size, step, total)
        ce = F.cross_entropy(model(x[rows].to(ctx.device)), y[rows].to(ctx.device))
        loss = ce if snr is None else ce + snr(lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "ce": ce.item()}

    def end_of_epoch(epoch: int, row: dict) -> dict:
        return {"dataset": dataset, "batch_size": batch_size, "lam": lam,
                "val_acc": accuracy(model, data["x_val"].to(ctx.device),
                                    data["y_val"].to(ctx.device))}

    modules = {"model": model, "opt": opt, **({"snr": snr} if snr is not None else {})}
    result = run.fit(modules=modules, total_steps=total, steps_per_epoch=steps_per_epoch,
                     train_step=train_step, end_of_epoch=end_of_epoch,
                     checkpoint_every=ctx.cfg.checkpoint_every)
    return result.history[-1]["val_acc"], model.state_dict(), result.history


def stages(cfg: ClassifierConfig) -> list[tuple[str, int, float]]:
    return [(d, b, lam) for d in cfg.datasets for b in cfg.batch_sizes
            for lam in cfg.lambdas or (0.0,)]


def stage_name(dataset: str, batch_size: int, lam: float) -> str:
    return f"{dataset}-b{batch_size}-lam{lam:g}"


def train_classifiers(ctx: RunContext) -> tuple[dict, list[dict]]:
    """Every dataset and batch size; at each, every λ of the grid, keeping the best on
    validation (the final epoch's accuracy; ties go to the first λ). Returns (weights grouped
    "<dataset>/b<batch>", with the chosen λ and its validation accuracy as "_lam" and
    "_val_acc", history). A finished stage keeps its last checkpoint until the run finishes,
    so a resumed job skips it."""
    kept, history, loaded = {}, [], {}
    for dataset, batch_size, lam in stages(ctx.cfg.classifier):
        if dataset not in loaded:
            loaded = {dataset: load_classifier_set(ctx.data_dir, dataset)}
        data, meta = loaded[dataset]
        val_acc, state, rows = train_one(ctx, dataset, data, meta, batch_size, lam)
        history += rows
        key = f"{dataset}/b{batch_size}"
        if key not in kept or val_acc > float(kept[key]["_val_acc"]):
            kept[key] = {**state, "_lam": torch.tensor(lam, dtype=torch.float64),
                         "_val_acc": torch.tensor(val_acc, dtype=torch.float64)}
    return kept, history


def measure(model: nn.Module, data: dict, meta: dict, gradient_inputs: int) -> dict:
    """Accuracies, the gap, the Lipschitz bound (exact operator norms), the reshaped-kernel
    proxy (not a bound) and the empirical lower bound max ‖∇ₓ logit_y‖ over test inputs."""
    train_acc = accuracy(model, data["x_train"], data["y_train"])
    test_acc = accuracy(model, data["x_test"], data["y_test"])
    bound = lipschitz_bound(model, tuple(meta["shape"]))
    n = gradient_inputs or len(data["x_test"])
    model.eval()
    lower = float(input_gradient_norms(model, data["x_test"][:n], data["y_test"][:n]).max())
    return {"train_acc": train_acc, "test_acc": test_acc, "gap": train_acc - test_acc,
            "lipschitz_bound": bound["bound"], "lipschitz_proxy": bound["proxy"],
            "lipschitz_lower": lower, "layer_norms": bound["layers"]}
