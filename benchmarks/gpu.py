"""The ``full`` runs of every article on a GPU: speed, memory, precision and projected budget.

    python benchmarks/gpu.py                             # every article, official data, CUDA
    python benchmarks/gpu.py --articles nice --steps 500
    python benchmarks/gpu.py --device cpu --steps 3 --source embedded   # a smoke check on CPU

Each run is the article's own ``train(ctx)`` on its prepared ``full`` data, in a scratch folder
(``--workdir``), with the training loop of the kit (``kexue.training.Run.fit``) capped at
``--warmup + --steps`` steps: every step goes through the article's real data path, model,
optimiser and precision. Per run it prints the median seconds per step after the warm-up,
samples per second (the RunConfig's ``batch_size``, or ``samples_per_step(cfg)`` of the
article's config module), peak
GPU memory, the mixed precision the step entered (any ``torch.autocast``) and the TF32 flags,
the mean GPU utilisation sampled by nvidia-smi during the timed steps (near 100 % means data
loading is not the bottleneck), one end-of-epoch evaluation (its second call: the first pays
any compilation), and the projected wall time of
the whole budget: steps x s/step + epochs x evaluation, per seed, times the run's seeds.
Articles plug in through the registry and params.yaml: nothing here names one, except the
published speeds it prints for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kexue import config, stages
from kexue.dag import datasets_of
from kexue.registry import get_article
from kexue.training import Run, seed_everything

ROOT = Path(__file__).resolve().parents[1]
# The articles' own hardware budgets, printed beside ours (not comparable hardware).
PUBLISHED = {
    "nice": "Su: 11 s per epoch (469 steps of 128) on a GTX 1070",
    "glow": "Su: 70 s per epoch (1,000 steps of 32) on a GTX 1070",
}


@dataclass
class Stage:
    """One ``Run.fit`` call of a run: its budget and what was measured of it."""

    total_steps: int
    steps_per_epoch: int
    step_times: list[float] = field(default_factory=list)
    eval_time: float = 0.0

    @property
    def s_per_step(self) -> float:
        return statistics.median(self.step_times)

    def projected(self) -> float:
        epochs = -(-self.total_steps // self.steps_per_epoch)
        return self.total_steps * self.s_per_step + epochs * self.eval_time


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class GpuUtilisation:
    """Mean utilisation (%) of one GPU, sampled by nvidia-smi every 0.2 s while active."""

    def __init__(self, device: torch.device):
        index = device.index if device.index is not None else torch.cuda.current_device()
        self.cmd = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                    "-i", str(index)]
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            done = subprocess.run(self.cmd, capture_output=True, text=True, check=False)
            if done.returncode == 0 and done.stdout.strip().isdigit():
                self.samples.append(float(done.stdout.strip()))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


class Autocasts:
    """Records every enabled ``torch.autocast`` entered while active (the step's precision)."""

    def __init__(self):
        self.seen: set[str] = set()

    def __enter__(self):
        cls = torch.amp.autocast_mode.autocast
        self._orig = cls.__enter__
        seen, orig = self.seen, self._orig

        def enter(ac):
            if ac._enabled:
                seen.add(f"{str(ac.fast_dtype).removeprefix('torch.')} autocast ({ac.device})")
            return orig(ac)

        cls.__enter__ = enter
        return self

    def __exit__(self, *exc):
        torch.amp.autocast_mode.autocast.__enter__ = self._orig


@contextlib.contextmanager
def measured_fit(stages_out: list[Stage], warmup: int, steps: int, device: torch.device,
                 utilisation: list[float]):
    """Cap every ``Run.fit`` at warmup + steps and time its steps and one (warm) evaluation."""
    original = Run.fit

    def fit(run, *, total_steps, steps_per_epoch, train_step, end_of_epoch=None, **kwargs):
        stage = Stage(total_steps, steps_per_epoch)
        stages_out.append(stage)
        cap = min(total_steps, warmup + steps)
        first = warmup if cap > warmup else 0  # a stage too short for a warm-up: time it all
        monitor = GpuUtilisation(device) if device.type == "cuda" else None

        def timed_step(step):
            if step == first and monitor:
                monitor.__enter__()
            sync(device)
            start = time.perf_counter()
            out = train_step(step)
            sync(device)
            if step >= first:
                stage.step_times.append(time.perf_counter() - start)
            if step == cap - 1 and monitor:
                monitor.__exit__(None, None, None)
                if monitor.mean is not None:
                    utilisation.append(monitor.mean)
            return out

        def timed_eval(epoch, row):
            # twice: the first call pays any one-off cost (a run long enough to compile its
            # evaluation compiles it there), the second is what every other epoch costs
            end_of_epoch(epoch, dict(row))
            sync(device)
            start = time.perf_counter()
            out = end_of_epoch(epoch, row)
            sync(device)
            stage.eval_time = time.perf_counter() - start
            return out

        return original(run, total_steps=cap, steps_per_epoch=steps_per_epoch,
                        train_step=timed_step, end_of_epoch=end_of_epoch and timed_eval, **kwargs)

    Run.fit = fit
    try:
        yield
    finally:
        Run.fit = original


def batch_size(article: str, cfg) -> int | None:
    """Examples per training step: the article config's ``samples_per_step(cfg)`` when it has
    one (runs with different batch fields), else the RunConfig's ``batch_size``."""
    declared = getattr(get_article(article).part("config"), "samples_per_step", None)
    if declared is not None:
        return declared(cfg)
    return getattr(cfg, "batch_size", None)


def tf32_flags(device: torch.device) -> str:
    if device.type != "cuda":
        return ""
    return (f"; TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}, "
            f"conv {'on' if torch.backends.cudnn.allow_tf32 else 'off'}")


def hms(seconds: float) -> str:
    h, rest = divmod(round(seconds), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def provide_data(params: dict, article: str) -> None:
    """Raw datasets (linked from the repository's data/raw when there) and the prepared data."""
    for name in datasets_of(params, article):
        raw = Path("data/raw") / name
        if not raw.exists():
            if (ROOT / raw).is_dir():
                raw.parent.mkdir(parents=True, exist_ok=True)
                raw.symlink_to(ROOT / raw)
            else:
                stages.download(params, name)
    prepared = Path(f"data/processed/{config.variant(params)}/{article}")
    if not prepared.exists():
        stages.prepare(params, article)


def bench_run(params, article, run, args, device) -> dict | None:
    """One run's row, or None when its train() does not go through Run.fit."""
    seeds = config.seeds(params, article, run)
    ctx = stages.context(params, article, run, seeds[0], args.threads)
    shutil.rmtree(ctx.ckpt_dir, ignore_errors=True)  # measure from step 0, never a resume
    measured: list[Stage] = []
    utilisation: list[float] = []
    seed_everything(ctx.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with measured_fit(measured, args.warmup, args.steps, device, utilisation), \
            Autocasts() as casts:
        get_article(article).part("train").train(ctx)
    if not measured:  # its own loop: nothing to cap or time
        return None
    batch = batch_size(article, ctx.cfg)
    step = sum(s.s_per_step for s in measured) / len(measured)
    return {
        "article": article, "run": run, "seeds": len(seeds),
        "s_per_step": step,
        "samples_per_s": batch / step if batch else None,
        "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30
        if device.type == "cuda" else None,
        "precision": (", ".join(sorted(casts.seen)) or "fp32") + tf32_flags(device),
        "gpu_util": statistics.mean(utilisation) if utilisation else None,
        "eval_s": sum(s.eval_time for s in measured),
        "budget_steps": sum(s.total_steps for s in measured),
        "projected_s": len(seeds) * sum(s.projected() for s in measured),
    }


def print_table(rows: list[dict], device_name: str) -> None:
    def opt(v, f):
        return "n/a" if v is None else f.format(v)

    print(f"\n{device_name}; median s/step after the warm-up; projected = the run's whole budget "
          f"x its seeds, including one end-of-epoch evaluation per epoch\n")
    print("| article | run | s/step | samples/s | peak GPU mem | precision | GPU util | "
          "eval (s) | budget steps | seeds | projected |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['article']} | {r['run']} | {r['s_per_step']:.4f} | "
              f"{opt(r['samples_per_s'], '{:,.0f}')} | {opt(r['peak_mem_gib'], '{:.2f} GiB')} | "
              f"{r['precision']} | {opt(r['gpu_util'], '{:.0f} %')} | {r['eval_s']:.2f} | "
              f"{r['budget_steps']:,} | {r['seeds']} | {hms(r['projected_s'])} |")
    print()
    for article in dict.fromkeys(r["article"] for r in rows):
        total = sum(r["projected_s"] for r in rows if r["article"] == article)
        note = f" ({PUBLISHED[article]})" if article in PUBLISHED else ""
        print(f"{article}: whole full budget {hms(total)}{note}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--articles", nargs="+", help="default: every article of params.yaml")
    p.add_argument("--runs", nargs="+", help="only these runs (default: all of each article)")
    p.add_argument("--steps", type=int, default=300, help="timed steps per training stage")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (CUDA init, "
                   "cuDNN autotuning, allocator)")
    p.add_argument("--source", choices=config.DATA_SOURCES, default="official")
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--workdir", type=Path, help="scratch folder for data, checkpoints and "
                   "outputs (default: a temporary one, removed afterwards)")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: use --device cpu for a smoke check")
    if device.type == "cpu":
        args.warmup = min(args.warmup, 1)
    params = config.load_params(ROOT / "params.yaml")
    params.update(profile="full", data_source=args.source, device=str(device))
    config.validate_params(params, where="params.yaml (profile full)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {name}, torch {torch.__version__}, profile full, source {args.source}, "
          f"{args.warmup} warm-up + {args.steps} timed steps per stage")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kexue-gpu-"))
    workdir.mkdir(parents=True, exist_ok=True)
    home = Path.cwd()
    os.chdir(workdir)
    rows, unmeasured = [], []
    try:
        for article in args.articles or config.article_ids(params):
            provide_data(params, article)
            for run in config.run_names(params, article):
                if args.runs and run not in args.runs:
                    continue
                r = bench_run(params, article, run, args, device)
                if r is None:
                    unmeasured.append(f"{article}/{run}")
                    continue
                rows.append(r)
                print(f"{article}/{run}: {r['s_per_step']:.4f} s/step, projected "
                      f"{hms(r['projected_s'])}", flush=True)
    finally:
        os.chdir(home)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows, name)
    if unmeasured:
        print(f"not measured (train() has its own loop, not kexue.training.Run.fit): "
              f"{', '.join(unmeasured)}")


if __name__ == "__main__":
    main()
