"""NICE (kexue.fm/archives/5776; Dinh et al., arXiv 1410.8516): additive-coupling flow.

Two recipes share one model class:

* ``su``: Su's Keras model. Reverse permutation + interleaved split before each of 4 couplings,
  h2 = x2 - m(x1) with a ReLU on m's output, exp-scale layer (Glorot-normal init), Gaussian
  prior, x/255 with the negative training noise x - 0.01*U[0,1). Not a likelihood bound.
* ``original``: the paper. Linear-output m, h2 = x2 + m(x1), logistic prior, proper
  dequantisation x = (k + u)/n_levels, so its bits/dim is a valid bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kexue.comparison import Comparison
from kexue.data.fetch import dataset_files
from kexue.data.idx import read_idx
from kexue.io import load_torch, read_json, save_torch, write_json
from kexue.nn import keras_init, parameter_count
from kexue.nn.flows import (
    AdditiveCoupling,
    ExpScale,
    FlowSequential,
    Reverse,
    bits_per_dim,
    gaussian_log_prob,
    logistic_log_prob,
    mlp,
)
from kexue.training import (
    Checkpointer,
    RunContext,
    TrackedState,
    autocast,
    epoch_permutation,
    fingerprint,
    fit,
    step_generator,
    write_history,
)


@dataclass
class DataConfig:
    digits_test_size: int = 360  # sklearn digits: 1,437 train / 360 test, stratified
    split_seed: int = 2018
    max_train: int = 0  # 0 = all training images (smoke runs use fewer)


@dataclass
class RunConfig:
    recipe: str = "su"  # "su" | "original"
    couplings: int = 4
    hidden: int = 1000
    depth: int = 5
    batch_size: int = 128
    epochs: int = 30
    lr: float = 1e-3
    adam_beta2: float = 0.999
    adam_eps: float = 1e-7  # Keras default; the paper's delta is 1e-4
    su_noise: float = 0.01  # width of Su's negative training noise
    scale_init_std: float = 0.05  # Keras glorot_normal on a (1, D) weight
    temperature: float = 0.75
    n_samples: int = 100
    seed: int = 0
    checkpoint_every: int = 200
    # bf16 for the coupling MLPs on CUDA: safe for additive coupling, whose inverse recomputes
    # m(x1) from the same x1; the scale layer, prior and every evaluation stay in fp32.
    amp: bool = True


# ---------------------------------------------------------------- model


class Nice(torch.nn.Module):
    def __init__(self, dims: int, cfg: RunConfig):
        super().__init__()
        su = cfg.recipe == "su"
        layers = []
        for _ in range(cfg.couplings):
            net = mlp(dims // 2, dims // 2, cfg.hidden, cfg.depth, out_act=su)
            # Reverse then interleave: consecutive couplings update alternating halves.
            layers += [Reverse(), AdditiveCoupling(net, "interleave", sign=-1.0 if su else 1.0)]
        layers.append(ExpScale(dims, init_std=cfg.scale_init_std))
        self.flow = FlowSequential(*layers)
        keras_init(self)  # Su's Keras Dense layers
        self.prior = "gaussian" if su else "logistic"
        self.dims = dims

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, logdet = self.flow(x)
        lp = gaussian_log_prob(z) if self.prior == "gaussian" else logistic_log_prob(z)
        return lp + logdet

    @torch.no_grad()
    def sample(self, n: int, temperature: float, generator: torch.Generator) -> torch.Tensor:
        device = next(self.parameters()).device
        if self.prior == "gaussian":
            z = torch.randn(n, self.dims, generator=generator)
        else:  # inverse CDF of the standard logistic
            u = torch.rand(n, self.dims, generator=generator).clamp(1e-6, 1 - 1e-6)
            z = torch.log(u) - torch.log1p(-u)
        # Temperature multiplies z before the inverse, on top of the learned scales.
        return self.flow.reverse(z.to(device) * temperature)


# ---------------------------------------------------------------- data


def prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None:
    """Write uint8 images (N, D) and their number of grey levels."""
    out.mkdir(parents=True, exist_ok=True)
    if source == "embedded":
        from sklearn.model_selection import train_test_split

        d = np.load(dataset_files(raw["digits"]) / "digits.npz")
        x, y = d["images"].reshape(len(d["images"]), -1).astype(np.uint8), d["labels"]
        x_train, x_test = train_test_split(x, test_size=cfg.digits_test_size, stratify=y,
                                           random_state=cfg.split_seed)
        n_levels, label = 17, "embedded: scikit-learn 8x8 digits (17 levels)"
    else:
        folder = dataset_files(raw["mnist"])
        x_train = read_idx(folder / "train-images-idx3-ubyte.gz").reshape(-1, 784)
        x_test = read_idx(folder / "t10k-images-idx3-ubyte.gz").reshape(-1, 784)
        origin = read_json(raw["mnist"] / "PROVENANCE.json")["source"]
        n_levels, label = 256, f"MNIST ({origin} files)"
    if cfg.max_train:
        x_train = x_train[: cfg.max_train]
    np.savez_compressed(out / "images.npz", train=x_train, test=x_test)
    write_json(out / "data.json", {"data_label": label, "n_levels": n_levels,
                                   "n_train": len(x_train), "n_test": len(x_test),
                                   "dims": int(x_train.shape[1]), "source": source})


def load_prepared(data_dir: Path):
    d = np.load(data_dir / "images.npz")
    meta = read_json(data_dir / "data.json")
    return torch.from_numpy(d["train"]), torch.from_numpy(d["test"]), meta


def to_unit(k: torch.Tensor, n_levels: int, recipe: str, noise: torch.Tensor | None):
    """Map integer levels to [0, 1] as each recipe does.

    ``su``: k / (n_levels - 1) (Su's x/255), minus ``su_noise * noise`` in training.
    ``original``: (k + u) / n_levels, u ~ U[0, 1) (u = 0.5 would be the bin centre).
    """
    k = k.float()
    if recipe == "su":
        x = k / (n_levels - 1)
        return x if noise is None else x - noise
    return (k + noise) / n_levels


# ---------------------------------------------------------------- train / evaluate


def _build(ctx: RunContext, meta: dict) -> Nice:
    torch.manual_seed(ctx.cfg.seed)
    return Nice(meta["dims"], ctx.cfg).to(ctx.device)


def _eval_noise(x: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.rand(x.shape, generator=torch.Generator().manual_seed(seed + 10_007))


@torch.no_grad()
def test_nll(model: Nice, x_test: torch.Tensor, meta: dict, cfg: RunConfig, device) -> float:
    """Mean test NLL in nats per image: clean x for ``su``, one fixed noise draw for ``original``."""
    model.eval()
    noise = None if cfg.recipe == "su" else _eval_noise(x_test, cfg.seed)
    total = 0.0
    for i in range(0, len(x_test), 1000):
        nz = None if noise is None else noise[i: i + 1000]
        x = to_unit(x_test[i: i + 1000], meta["n_levels"], cfg.recipe, nz).to(device)
        total += -model.log_prob(x).sum().item()
    model.train()
    return total / len(x_test)


def train(ctx: RunContext) -> float:
    cfg = ctx.cfg
    x_train, x_test, meta = load_prepared(ctx.data_dir)
    model = _build(ctx, meta)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.adam_beta2),
                           eps=cfg.adam_eps)
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    ckpt = Checkpointer(ctx.ckpt_dir, fingerprint(cfg))
    const = 0.5 * meta["dims"] * math.log(2 * math.pi)  # Su's loss omits it

    def train_step(step: int) -> dict:
        epoch, i = divmod(step, steps_per_epoch)
        perm = epoch_permutation(len(x_train), cfg.seed, epoch)
        idx = perm[i * cfg.batch_size: (i + 1) * cfg.batch_size]
        g = step_generator(cfg.seed, step)
        noise = torch.rand(len(idx), meta["dims"], generator=g)
        if cfg.recipe == "su":
            noise = noise * cfg.su_noise
        x = to_unit(x_train[idx], meta["n_levels"], cfg.recipe, noise).to(ctx.device)
        with autocast(ctx.device, cfg.amp):
            nll = -model.log_prob(x).mean()
        opt.zero_grad(set_to_none=True)
        nll.backward()
        opt.step()
        return {"loss": nll.item(), "su_loss": nll.item() - const}

    best = TrackedState(val=math.inf)

    def end_of_epoch(epoch: int, row: dict) -> dict:
        nll = test_nll(model, x_test, meta, cfg, ctx.device)
        if nll <= best["val"]:  # Su keeps the best val_loss weights
            best["val"] = nll
            ckpt.save({"model": model.state_dict(), "epoch": epoch}, "best")
        return {"val_nll": nll, "val_su_loss": nll - const,
                "val_bpd": bits_per_dim(nll, meta["dims"], meta["n_levels"])}

    result = fit(modules={"model": model, "opt": opt, "best": best}, total_steps=cfg.epochs * steps_per_epoch,
                 steps_per_epoch=steps_per_epoch, train_step=train_step,
                 end_of_epoch=end_of_epoch, ckpt=ckpt, checkpoint_every=cfg.checkpoint_every,
                 log_prefix=f"[nice/{ctx.run}] ", device=ctx.device)
    # su ships the best val_loss weights as Su's ModelCheckpoint did; original the last ones.
    final = ckpt.load("best")["model"] if cfg.recipe == "su" else model.state_dict()
    save_torch(ctx.out_dir / "model.pt", final)
    write_history(ctx.out_dir / "history.csv", result.history)
    ckpt.clear()
    return result.wall_time


def evaluate(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    _, x_test, meta = load_prepared(ctx.data_dir)
    model = _build(ctx, meta)
    model.load_state_dict(load_torch(ctx.out_dir / "model.pt", map_location=ctx.device))
    nll = test_nll(model, x_test, meta, cfg, ctx.device)
    dims, levels = meta["dims"], meta["n_levels"]
    metrics = {
        "recipe": cfg.recipe,
        "data_label": meta["data_label"],
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
    _save_samples(model, cfg, meta, ctx.out_dir / "artifacts")
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


# ---------------------------------------------------------------- published numbers


def comparisons(metrics: dict[str, dict], source: str) -> list[Comparison]:
    rows = []
    mnist = source == "official"
    note = "" if mnist else "embedded 8x8 digits: not comparable with MNIST"
    for run, m in metrics.items():
        ep = f"{m['epochs']} epochs"
        if m["recipe"] == "su":
            rows.append(Comparison(run, "Su loss, clean test set (nats)", -2200.0, "article", 
                                   m["su_loss"], 100.0, mnist, note or f"{ep}; article: ≤ 20"))
            rows.append(Comparison(run, "bits/dim (not a valid bound)", 5.28, "derived from article",
                                   m["test_bpd"], 0.2, mnist, note or ep))
        else:
            rows.append(Comparison(run, "test log-likelihood (nats)", 1980.50, "paper",
                                   m["test_log_likelihood_nats"], 100.0, mnist,
                                   note or f"{ep}; paper: 1500"))
            rows.append(Comparison(run, "test bits/dim", 4.36, "paper", m["test_bpd"], 0.2, mnist,
                                   note or f"{ep}; paper: 1500"))
    return rows
