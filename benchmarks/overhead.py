"""Workflow overhead with nothing to do: `snakemake -n` and `dvc status`, wall and CPU seconds.

    python benchmarks/overhead.py [--repeats 3]

Run it in a checkout whose DAG is complete (after `snakemake --cores all`): the goal (issue 15)
is that both commands together take at most 5 s there. The table also counts what the two
tools read: the DVC stages in dvc.yaml and the size of dvc.lock.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

COMMANDS = {
    "snakemake -n": ["snakemake", "-n", "--cores", "2"],
    "dvc status": ["dvc", "status"],
}
IDLE = {"snakemake -n": "Nothing to be done", "dvc status": "up to date"}
GOAL_S = 5.0


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall and CPU (user + system, children) seconds of one run, and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout + done.stderr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    stages = len(yaml.safe_load(Path("dvc.yaml").read_text())["stages"])
    lock = Path("dvc.lock")
    print(f"{stages} DVC stages; dvc.lock {lock.stat().st_size / 1e3:,.0f} kB"
          if lock.exists() else f"{stages} DVC stages; no dvc.lock yet")
    print(f"{'command':<14} {'wall s (median)':>16} {'CPU s (median)':>15}  runs (wall)")
    total = 0.0
    for name, cmd in COMMANDS.items():
        runs = [timed(cmd) for _ in range(args.repeats)]
        if IDLE[name] not in runs[-1][2]:
            sys.exit(f"{name} has work to do here: the overhead is measured on a complete DAG "
                     f"(run `snakemake --cores all` first)")
        wall = statistics.median(r[0] for r in runs)
        total += wall
        print(f"{name:<14} {wall:>16.2f} {statistics.median(r[1] for r in runs):>15.2f}  "
              + ", ".join(f"{r[0]:.2f}" for r in runs))
    verdict = "met" if total <= GOAL_S else "NOT met"
    print(f"{'together':<14} {total:>16.2f}  goal <= {GOAL_S:.0f} s: {verdict} "
          f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
