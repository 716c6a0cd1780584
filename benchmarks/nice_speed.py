"""NICE training speed: seconds per epoch (60,000 MNIST images, batch 128) per configuration
and precision.

    python benchmarks/nice_speed.py [--steps 20] [--device auto]

Times a few real training steps on random 8-bit data and extrapolates to one epoch; the table
says so. Su reports 11 s/epoch on a GTX 1070 for the article's model (`su`, 5 x 1000). The
precision column is what ran: bf16 autocast exists on CUDA only, so the CPU times fp32 alone.
"""

import argparse
import math
import time
from dataclasses import replace

import torch

from kexue.articles.nice.config import NiceModel, RunConfig
from kexue.articles.nice.model import build_model
from kexue.training import autocast, effective_precision, pick_device

CONFIGS = {
    "default (MNIST, 5x512)": RunConfig(model=NiceModel(hidden=512)),
    "full su (5x1000)": RunConfig(),
    "full original (5x1000)": RunConfig(recipe="original"),
}
EPOCH_STEPS = math.ceil(60_000 / 128)


def steps_per_second(cfg: RunConfig, device: torch.device, steps: int) -> float:
    model = build_model(784, cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    x = (torch.randint(0, 256, (cfg.batch_size, 784)) / 255).to(device)
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with autocast(device, cfg.precision):
            loss = -model.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}, threads: {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"| config | precision | steps/s | s/epoch ({EPOCH_STEPS} steps, extrapolated) |")
    print("|---|---|---|---|")
    for label, cfg in CONFIGS.items():
        for precision in sorted({effective_precision(device, p) for p in ("fp32", "bf16")}):
            rate = steps_per_second(replace(cfg, precision=precision), device, args.steps)
            print(f"| {label} | {precision} | {rate:.2f} | {EPOCH_STEPS / rate:.1f} |")


if __name__ == "__main__":
    main()
