"""Shared training machinery: device and seeds, atomic resumable checkpoints, a step loop.

The loop is step-based and every random draw of step ``s`` comes from ``step_generator(seed, s)``,
so a run killed at any point and resumed from its last checkpoint replays exactly the batches it
would have seen: resuming does not change the result.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import platform
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kexue.io import atomic_path, load_torch, save_torch


class NonFiniteLoss(RuntimeError):
    """Training produced NaN/Inf; the last good checkpoint is kept on disk."""


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA (matmuls and convs only); a no-op on the CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def step_generator(seed: int, step: int, device: str | torch.device = "cpu") -> torch.Generator:
    """The RNG for one training step: a pure function of (seed, step), hence resumable."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + step) % (2**63 - 1))
    return g


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: a pure function of (seed, epoch), hence resumable."""
    g = torch.Generator()
    g.manual_seed((seed * 7_919 + epoch) % (2**63 - 1) + 1)
    return torch.randperm(n, generator=g)


def fingerprint(cfg: Any) -> str:
    """Short hash of a config dataclass: a checkpoint is only resumed by the same config."""
    blob = json.dumps(asdict(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class RunContext:
    """Everything a ``train`` or ``evaluate`` call of an article needs."""

    article: str
    run: str
    cfg: Any  # the article's RunConfig
    data_cfg: Any  # the article's DataConfig
    data_dir: Path  # data/processed/<article>
    out_dir: Path  # results/<article>/<run>
    ckpt_dir: Path  # checkpoints/<article>/<run>: not a workflow output, so it survives a kill
    device: torch.device
    profile: str
    source: str
    threads: int = 1
    extra: dict = field(default_factory=dict)


class TrackedState(dict):
    """A dict that ``fit`` saves and restores with the checkpoint (e.g. the best score so far)."""

    def state_dict(self) -> dict:
        return dict(self)

    def load_state_dict(self, state: dict) -> None:
        self.clear()
        self.update(state)


class Checkpointer:
    """Atomic checkpoints tagged with the config fingerprint."""

    def __init__(self, directory: Path, tag: str):
        self.directory = Path(directory)
        self.tag = tag

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.pt"

    def save(self, state: dict, name: str = "last") -> None:
        save_torch(self.path(name), {"tag": self.tag, **state})

    def load(self, name: str = "last", map_location: Any = "cpu") -> dict | None:
        path = self.path(name)
        if not path.exists():
            return None
        state = load_torch(path, map_location=map_location)
        if state.get("tag") != self.tag:
            print(f"[checkpoint] {path} was written by another config; starting afresh")
            return None
        return state

    def clear(self) -> None:
        for p in self.directory.glob("*.pt"):
            p.unlink()


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
    wall_time: float  # seconds spent in this process (a resumed run adds its earlier time)


def fit(
    *,
    modules: dict[str, Any],
    total_steps: int,
    steps_per_epoch: int,
    train_step: Callable[[int], dict[str, float]],
    end_of_epoch: Callable[[int, dict[str, float]], dict[str, float]] | None,
    ckpt: Checkpointer,
    checkpoint_every: int,
    log_prefix: str = "",
    device: torch.device | str = "cpu",
) -> LoopResult:
    """Run ``train_step(step)`` for steps [resume_step, total_steps).

    ``modules`` maps names to objects with ``state_dict``/``load_state_dict`` (model, optimiser,
    scheduler, ...): all are saved in the checkpoint. ``train_step`` returns floats to average
    over the epoch; its "loss" must be finite or training stops with ``NonFiniteLoss``.
    ``end_of_epoch(epoch, train_means)`` returns evaluation numbers for the history row.
    """
    state = ckpt.load(map_location=device)
    step, history, acc, elapsed = 0, [], {}, 0.0
    if state is not None:
        for name, obj in modules.items():
            obj.load_state_dict(state["modules"][name])
        step, history, acc, elapsed = state["step"], state["history"], state["acc"], state["wall"]
        print(f"{log_prefix}resuming from step {step} ({ckpt.path('last')})")
    start = time.perf_counter()

    def save() -> None:
        wall = elapsed + time.perf_counter() - start
        ckpt.save({"modules": {n: o.state_dict() for n, o in modules.items()}, "step": step,
                   "history": history, "acc": acc, "wall": wall})

    while step < total_steps:
        out = train_step(step)
        loss = out.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLoss(
                f"{log_prefix}loss became {loss} at step {step}; training stopped. The last good "
                f"checkpoint is kept at {ckpt.path('last')}")
        for k, v in out.items():
            acc[k] = acc.get(k, 0.0) + float(v)
        acc["_n"] = acc.get("_n", 0) + 1
        step += 1
        if step % steps_per_epoch == 0 or step == total_steps:
            epoch = math.ceil(step / steps_per_epoch)
            n = acc.pop("_n")
            row = {"epoch": epoch, "step": step, **{f"train_{k}": v / n for k, v in acc.items()}}
            acc = {}
            if end_of_epoch is not None:
                row.update(end_of_epoch(epoch, row))
            row["wall_time"] = elapsed + time.perf_counter() - start
            history.append(row)
            print(log_prefix + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in row.items()), flush=True)
            save()
        elif step % checkpoint_every == 0:
            save()
    return LoopResult(history, step, elapsed + time.perf_counter() - start)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(ctx: RunContext, seed: int, wall_time: float) -> dict[str, Any]:
    """What metrics.json records about how a number was produced."""
    import kexue

    device = ctx.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "article": ctx.article,
        "run": ctx.run,
        "profile": ctx.profile,
        "data_source": ctx.source,
        "seed": seed,
        "device": str(device),
        "device_name": name or platform.machine(),
        "threads": torch.get_num_threads(),  # what the run used (a RunConfig may pin it)
        "wall_time_s": round(wall_time, 2),
        "git_commit": git_commit(),
        "versions": {
            "kexue": kexue.__version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "config": asdict(ctx.cfg),
    }
