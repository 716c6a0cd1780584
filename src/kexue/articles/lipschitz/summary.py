"""Seed-aggregated tables and curves for the report (no torch: reads metrics and histories)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from kexue.comparison import ArticleResults, mean_sd

A_KEYS = ("test_acc", "train_acc", "gap", "lipschitz_bound", "lipschitz_proxy",
          "lipschitz_lower", "lam")
B_KEYS = ("fid", "fid_floor", "kid", "modes_covered", "high_quality", "lipschitz_real",
          "lipschitz_fake", "lipschitz_interpolated", "seconds_per_iteration")


def part_a_rows(results: ArticleResults) -> list[dict]:
    """One row per (dataset, arm, batch size): mean and sd over seeds of every Part A number."""
    rows = []
    for run in results.runs.values():
        first = run.first
        if first["part"] != "A":
            continue
        for d in first["datasets"]:
            for b in first["batch_sizes"]:
                row = {"dataset": d, "arm": first["arm"], "batch_size": b,
                       "seeds": len(run.seeds)}
                for key in A_KEYS:
                    row[key], row[f"{key}_sd"] = mean_sd(
                        [m[f"{d}_{key}_b{b}"] for m in run.seeds.values()])
                rows.append(row)
    return rows


def part_b_rows(results: ArticleResults) -> list[dict]:
    """One row per (dataset, arm): final quality, measured Lipschitz constants and seconds per
    G iteration, mean and sd over seeds."""
    rows = []
    for run in results.runs.values():
        first = run.first
        if first["part"] != "B":
            continue
        for d in first["datasets"]:
            row = {"dataset": d, "arm": first["arm"], "seeds": len(run.seeds)}
            for key in B_KEYS:
                if f"{d}_{key}" in first:
                    row[key], row[f"{key}_sd"] = mean_sd(
                        [m[f"{d}_{key}"] for m in run.seeds.values()])
            rows.append(row)
    return rows


def read_curve(path: Path, dataset: str) -> list[dict]:
    """The curve points of one dataset from a Part B history.csv."""
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("dataset") == dataset:
                out.append({k: float(v) for k, v in row.items()
                            if k != "dataset" and v not in ("", None)})
    return out


def curve_band(histories: list[list[dict]], x: str, y: str) -> tuple[list, list, list]:
    """(x, mean y, sd y) over seeds at each curve point (points are at the same iterations
    for every seed; x is averaged too, which matters for wall-clock seconds)."""
    n = min((len(h) for h in histories), default=0)
    xs, means, sds = [], [], []
    for i in range(n):
        xs.append(mean_sd(h[i][x] for h in histories)[0])
        m, s = mean_sd([h[i][y] for h in histories])
        means.append(m)
        sds.append(0.0 if math.isnan(s) else s)
    return xs, means, sds
