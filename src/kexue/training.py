"""Shared training machinery: device, a resumable step loop, checkpoints, keep-the-best.

An article's ``train`` is its step function plus its config::

    run = Run(ctx)
    best = run.keep_best("min")
    result = run.fit(modules={"model": model, "opt": opt, "best": best}, total_steps=...,
                     steps_per_epoch=..., train_step=train_step, end_of_epoch=end_of_epoch,
                     checkpoint_every=cfg.checkpoint_every)
    run.finish(best.weights(), result.history)

The loop is step-based and every random draw of step ``s`` comes from
``kexue.rng.step_generator(seed, s)``, so a run killed at any point and resumed from its last
checkpoint replays exactly the batches it would have seen: resuming does not change the result.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kexue.errors import UserError
from kexue.io import atomic_path, load_torch, save_torch
from kexue.progress import progress_bar


class NonFiniteLoss(UserError, RuntimeError):
    """Training produced NaN/Inf; the message names the step and the last good checkpoint."""


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def effective_precision(device: torch.device, precision: str) -> str:
    """The precision a run really uses: bf16 autocast only on CUDA (on the CPU it is slower
    than fp32 and changes nothing we could compare), fp32 everywhere else. Reports show this."""
    return "bf16" if precision == "bf16" and device.type == "cuda" else "fp32"


def autocast(device: torch.device, precision: str):
    """The forward pass under ``precision`` ("fp32" | "bf16"): bf16 autocast of matmuls and
    convs on CUDA, a no-op otherwise."""
    return torch.autocast("cuda", dtype=torch.bfloat16,
                          enabled=effective_precision(device, precision) == "bf16")


@dataclass(frozen=True)
class CompileCost:
    """What torch.compile of a training step costs once and saves on every step, measured for an
    article at its reference size (benchmarks/peers.py --compile): compilation pays when the run's
    steps x step_s x saving exceed compile_s. Constants, not a timing of the run itself: the
    decision (and so the rounding of the weights) depends only on the config."""

    compile_s: float  # one-off compilation, seconds
    step_s: float  # one eager step, seconds
    saving: float  # the fraction of an eager step that the compiled step saves

    def break_even_steps(self) -> float:
        """The run length from which compilation pays (inf when it saves nothing)."""
        return self.compile_s / (self.step_s * self.saving) if self.saving > 0 else math.inf

    def pays(self, total_steps: int) -> bool:
        return total_steps > self.break_even_steps()


def compiled_if_long(fn: Callable, total_steps: int, mode: str = "auto",
                     cost: CompileCost | None = None) -> Callable:
    """``fn`` under torch.compile when ``mode`` is "on", or "auto" and ``cost`` says a run of
    ``total_steps`` repays the compilation; ``fn`` itself otherwise ("off", a short run, or no
    measured cost)."""
    if mode == "on" or (mode == "auto" and cost is not None and cost.pays(total_steps)):
        return torch.compile(fn)
    return fn


def compiled_for_batches(fn: Callable, batch: int, total_batches: int, mode: str = "auto",
                         cost: CompileCost | None = None) -> Callable:
    """``fn`` as ``compiled_if_long`` decides for ``total_batches`` calls, compiled for inputs of
    ``batch`` rows only: any other size (a split's last, smaller batch) runs ``fn`` eagerly
    rather than compiling a second graph for one call."""
    compiled = compiled_if_long(fn, total_batches, mode, cost)
    if compiled is fn:
        return fn
    return lambda x: compiled(x) if len(x) == batch else fn(x)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fingerprint(cfg: Any) -> str:
    """Short hash of a config dataclass: a checkpoint is only resumed by the same config."""
    blob = json.dumps(asdict(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class RunContext:
    """Everything a ``train`` or ``evaluate`` call of an article needs."""

    article: str
    run: str
    seed: int
    cfg: Any  # the article's RunConfig (its seed field set to ``seed``)
    data_cfg: Any  # the article's DataConfig
    data_dir: Path  # data/processed/<variant>/<article>
    out_dir: Path  # results/<variant>/<article>/<run>/seed<seed>
    ckpt_dir: Path  # checkpoints/...: not a workflow output, so it survives a kill
    device: torch.device
    profile: str
    source: str
    threads: int = 1

    @property
    def artifacts(self) -> Path:
        """Figures and samples written by ``evaluate``."""
        return self.out_dir / "artifacts"

    @property
    def train_artifacts(self) -> Path:
        """What training itself produces besides the model (e.g. samples per epoch)."""
        return self.out_dir / "training"

    @property
    def label(self) -> str:
        return f"{self.article}/{self.run}/seed{self.seed}"


class TrackedState(dict):
    """A dict that ``fit`` saves and restores with the checkpoint (e.g. the learning rate)."""

    def state_dict(self) -> dict:
        return dict(self)

    def load_state_dict(self, state: dict) -> None:
        self.clear()
        dict.update(self, state)  # not self.update: KeepBest's update means something else


class Checkpointer:
    """Atomic checkpoints tagged with the config fingerprint and a sha256 of their content.
    ``save`` keeps the previous ``last`` as ``previous``, so a truncated or corrupted last
    checkpoint (it fails to load, or its content no longer matches its sha256) falls back to
    it; with neither readable, training starts afresh. Each case prints one warning line."""

    def __init__(self, directory: Path, tag: str):
        self.directory = Path(directory)
        self.tag = tag

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.pt"

    def save(self, state: dict, name: str = "last") -> None:
        if name == "last" and self.path("last").exists():
            self.path("last").replace(self.path("previous"))
        state = {"tag": self.tag, **state}
        save_torch(self.path(name), {**state, "sha256": content_digest(state)})

    def load(self, name: str = "last", map_location: Any = "cpu") -> dict | None:
        names = (name, "previous") if name == "last" else (name,)
        broken = []
        for candidate in names:
            path = self.path(candidate)
            if not path.exists():
                continue
            problem, state = self._read(path, map_location)
            if problem:
                broken.append(path)
                print(f"warning: checkpoint {path} is unreadable ({problem}); "
                      f"{'trying the previous one' if candidate == 'last' else 'ignoring it'}",
                      file=sys.stderr)
                continue
            if state.get("tag") != self.tag:
                print(f"warning: checkpoint {path} was written by another config; ignoring it",
                      file=sys.stderr)
                return None
            return state
        if broken and name == "last":
            print(f"warning: no readable checkpoint in {self.directory}; starting afresh",
                  file=sys.stderr)
        return None

    @staticmethod
    def _read(path: Path, map_location: Any) -> tuple[str | None, dict | None]:
        try:
            state = load_torch(path, map_location=map_location)
        except Exception as e:  # noqa: BLE001 - truncated or corrupted: any load error
            return f"{type(e).__name__}: {' '.join(str(e).split())[:120]}", None
        if not isinstance(state, dict) or "sha256" not in state:
            return "no content checksum", None
        digest = state.pop("sha256")
        if digest != content_digest(state):
            return "content does not match its sha256: corrupted", None
        return None, state

    def clear(self) -> None:
        for p in self.directory.glob("*.pt"):
            p.unlink()


def content_digest(obj: Any) -> str:
    """sha256 of a checkpoint's content (tensors by dtype, shape and bytes; other values by
    repr): a flipped bit in a tensor loads without error, so the load alone cannot tell."""
    digest = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(x, dict):
            digest.update(f"D{len(x)}".encode())
            for k, v in x.items():
                feed(k)
                feed(v)
        elif isinstance(x, (list, tuple)):
            digest.update(f"L{len(x)}".encode())
            for v in x:
                feed(v)
        else:
            digest.update(f"V{x!r};".encode())

    feed(obj)
    return digest.hexdigest()


class KeepBest(TrackedState):
    """The best epoch by a score, with a direction; its weights are the ``best`` checkpoint.
    Ties go to the later epoch (as Keras' ModelCheckpoint with ``>=``)."""

    def __init__(self, ckpt: Checkpointer, mode: str):
        if mode not in ("min", "max"):
            raise ValueError(f"keep_best mode {mode!r}: expected 'min' or 'max'")
        super().__init__(score=None, epoch=0)
        self.ckpt, self.mode = ckpt, mode

    def is_better(self, score: float) -> bool:
        best = self["score"]
        if best is None:
            return True
        return score <= best if self.mode == "min" else score >= best

    def update(self, epoch: int, score: float, model: torch.nn.Module) -> bool:
        if not math.isfinite(score) or not self.is_better(score):
            return False
        dict.update(self, score=float(score), epoch=int(epoch))
        self.ckpt.save({"model": model.state_dict(), "epoch": epoch, "score": score}, "best")
        return True

    def weights(self, map_location: Any = "cpu") -> dict:
        state = self.ckpt.load("best", map_location=map_location)
        if state is None:
            raise RuntimeError(f"no best checkpoint in {self.ckpt.directory}")
        return state["model"]


def write_history(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def read_history(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
                for row in csv.DictReader(f)]


@dataclass
class LoopResult:
    history: list[dict]
    steps: int
    wall_time: float  # seconds of training (a resumed run adds its earlier time)


def fit(
    *,
    modules: dict[str, Any],
    total_steps: int,
    steps_per_epoch: int,
    train_step: Callable[[int], dict[str, float]],
    end_of_epoch: Callable[[int, dict[str, float]], dict[str, float]] | None,
    ckpt: Checkpointer,
    checkpoint_every: int,
    desc: str = "",
    device: torch.device | str = "cpu",
) -> LoopResult:
    """Run ``train_step(step)`` for steps [resume_step, total_steps).

    ``modules`` maps names to objects with ``state_dict``/``load_state_dict`` (model, optimiser,
    scheduler, KeepBest, ...): all are saved in the checkpoint. ``train_step`` returns floats to
    average over the epoch; its "loss" must be finite or training stops with ``NonFiniteLoss``.
    ``end_of_epoch(epoch, train_means)`` returns evaluation numbers for the history row.
    """
    state = ckpt.load(map_location=device)
    step, history, acc, elapsed = 0, [], {}, 0.0
    if state is not None:
        for name, obj in modules.items():
            obj.load_state_dict(state["modules"][name])
        step, history, acc, elapsed = state["step"], state["history"], state["acc"], state["wall"]
        print(f"[{desc}] resuming from step {step} ({ckpt.directory})", flush=True)
    start = time.perf_counter()

    def last_good() -> str:
        last = ckpt.path("last")
        return (f"The last good checkpoint is {last}" if last.exists()
                else f"There is no checkpoint yet in {ckpt.directory}")

    def save() -> None:
        # A checkpoint is never written with NaN/Inf weights: it stays the last good one.
        bad = _non_finite_parameter(modules)
        if bad:
            raise NonFiniteLoss(f"{desc}: parameter {bad} became NaN/Inf by step {step} (a "
                                f"non-finite gradient or batch); training stopped. {last_good()}")
        wall = elapsed + time.perf_counter() - start
        ckpt.save({"modules": {n: o.state_dict() for n, o in modules.items()}, "step": step,
                   "history": history, "acc": acc, "wall": wall})

    bar = progress_bar(total_steps, step, desc)
    try:
        while step < total_steps:
            out = train_step(step)
            loss = out.get("loss")
            if loss is not None and not math.isfinite(loss):
                raise NonFiniteLoss(
                    f"{desc}: loss became {loss} at step {step}; training stopped. {last_good()}")
            for k, v in out.items():
                acc[k] = acc.get(k, 0.0) + float(v)
            acc["_n"] = acc.get("_n", 0) + 1
            step += 1
            bar.set_postfix_str(f"loss={loss:.4g}" if loss is not None else "", refresh=False)
            bar.update(1)
            if step % steps_per_epoch == 0 or step == total_steps:
                history.append(_epoch_row(step, steps_per_epoch, acc, end_of_epoch))
                acc = {}
                # the time goes to the log only: history.csv is the same bytes on a retrain
                wall = elapsed + time.perf_counter() - start
                bar.write(f"[{desc}] " + "  ".join(_fmt(k, v) for k, v in history[-1].items())
                          + f"  wall_time={wall:.1f}s")
                save()
            elif step % checkpoint_every == 0:
                save()
    finally:
        bar.close()
    return LoopResult(history, step, elapsed + time.perf_counter() - start)


def _non_finite_parameter(modules: dict[str, Any]) -> str | None:
    """The first NaN/Inf parameter of the nn.Modules among ``modules`` ("model.fc.weight")."""
    for name, module in modules.items():
        if isinstance(module, torch.nn.Module):
            for pname, param in module.named_parameters():
                if not torch.isfinite(param).all():
                    return f"{name}.{pname}"
    return None


def _epoch_row(step, steps_per_epoch, acc, end_of_epoch) -> dict:
    epoch = math.ceil(step / steps_per_epoch)
    n = acc.pop("_n")
    row = {"epoch": epoch, "step": step, **{f"train_{k}": v / n for k, v in acc.items()}}
    if end_of_epoch is not None:
        row.update(end_of_epoch(epoch, row))
    return row


def _fmt(k: str, v: Any) -> str:
    return f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"


class Run:
    """One training run's checkpoints, loop and outputs (``stage`` separates the checkpoints
    of a run trained in several stages)."""

    def __init__(self, ctx: RunContext, stage: str = ""):
        self.ctx = ctx
        self.ckpt = Checkpointer(ctx.ckpt_dir / stage if stage else ctx.ckpt_dir,
                                 fingerprint(ctx.cfg))
        self.desc = ctx.label + (f" {stage}" if stage else "")
        ctx.train_artifacts.mkdir(parents=True, exist_ok=True)

    def keep_best(self, mode: str) -> KeepBest:
        return KeepBest(self.ckpt, mode)

    def fit(self, **kwargs) -> LoopResult:
        return fit(ckpt=self.ckpt, desc=self.desc, device=self.ctx.device, **kwargs)

    def finish(self, model_state: dict, history: list[dict]) -> None:
        """Write ``model.pt`` (weights only) and ``history.csv``, then drop the checkpoints."""
        save_torch(self.ctx.out_dir / "model.pt", model_state)
        write_history(self.ctx.out_dir / "history.csv", history)
        self.clear()

    def clear(self) -> None:
        self.ckpt.clear()
