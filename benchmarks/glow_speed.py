"""Glow training speed: steps/s and seconds per epoch of the params.yaml configurations.

A few training steps (forward, backward, optimiser step on random 8-bit images of the run's
shape) are timed after two warm-up steps; seconds per epoch and per run are *extrapolated* from
them (steps_per_epoch x s/step; the per-epoch test evaluation is not included).

    .venv/bin/python benchmarks/glow_speed.py                 # default-profile runs + full su
    .venv/bin/python benchmarks/glow_speed.py --threads 1 --steps 10
    .venv/bin/python benchmarks/glow_speed.py --runs su original --profiles full --device cuda
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import yaml

from kexue.articles import glow

ROOT = Path(__file__).resolve().parents[1]
# input shape of each profile's embedded data, and of the official data
SHAPES = {"smoke": (1, 8, 8), "default": (3, 16, 16), "full": (3, 32, 32)}


def glow_block() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    block = (params.get("articles") or {}).get("glow")
    if block is None:  # not merged yet: the fragment
        block = yaml.safe_load((ROOT / "workflow/params.d/glow.yaml").read_text())["glow"]
    return block


def time_steps(cfg: glow.RunConfig, shape, device, steps: int) -> float:
    model = glow.build_model(cfg, shape).to(device)
    opt = glow._optimiser(cfg, model.parameters())
    g = torch.Generator().manual_seed(0)
    k = torch.randint(0, 256, (cfg.batch_size, *shape), generator=g, dtype=torch.uint8)
    x = glow.dequantise(k, torch.rand(k.shape, generator=g), 256).to(device)
    for i in range(steps + 2):
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        loss = -model.log_prob(x).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--profiles", nargs="+", default=["default", "full"])
    p.add_argument("--runs", nargs="+", default=None,
                   help="default: every default-profile run, and su for the full profile")
    p.add_argument("--steps", type=int, default=5, help="timed steps per config")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="intra-op thread counts to compare (default: 1 and all cores)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    threads = args.threads or sorted({1, torch.get_num_threads()})
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    block = glow_block()
    rows = []
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for profile in args.profiles:
            runs = args.runs or (list(block[profile]["runs"]) if profile != "full" else ["su"])
            for run in runs:
                cfg = glow.RunConfig(**(block[profile]["runs"][run] or {}))
                few = profile == "full" and device.type == "cpu"  # seconds per step
                steps = min(args.steps, 3) if few else args.steps
                dt = time_steps(cfg, SHAPES[profile], device, steps)
                rows.append((f"{profile}/{run}", "x".join(map(str, SHAPES[profile])),
                             f"L{cfg.levels} K{cfg.depth} w{cfg.width}", n_threads,
                             cfg.batch_size, steps, dt, cfg.steps_per_epoch, cfg.epochs))
    head = (f"{'config':34} {'input':8} {'model':13} {'thr':>3} {'batch':>5} {'timed':>5} "
            f"{'s/step':>8} {'steps/s':>8} {'steps/ep':>8} {'s/epoch*':>9} {'run h:mm*':>9}")
    print(f"device: {name} ({device}), torch {torch.__version__}")
    print(head)
    print("-" * len(head))
    for cfg_name, shape, model, n_threads, batch, steps, dt, spe, epochs in rows:
        run_s = dt * spe * epochs
        hm = f"{int(run_s // 3600)}:{math.floor(run_s % 3600 / 60):02d}"
        print(f"{cfg_name:34} {shape:8} {model:13} {n_threads:3d} {batch:5d} {steps:5d} "
              f"{dt:8.3f} {1 / dt:8.2f} {spe:8d} {dt * spe:9.1f} {hm:>9}")
    print("* extrapolated from the timed steps (training only; per-epoch test evaluation and "
          "data loading not included)")


if __name__ == "__main__":
    main()
