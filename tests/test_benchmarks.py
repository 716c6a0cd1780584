"""The benchmark scripts run (on CPU, a few steps) and print what they promise."""

import math

import pytest

from conftest import REPO, run
from kexue import config


def test_gpu_benchmark_smoke_check_on_cpu_projects_the_whole_budget():
    out = run(["python", "benchmarks/gpu.py", "--device", "cpu", "--steps", "2", "--source",
               "embedded", "--articles", "nice", "--threads", "1"], REPO).stdout
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in out.splitlines() if line.startswith("| nice |")}
    assert set(rows) == {"su", "original"}
    params = config.load_params(REPO / "params.yaml")
    params.update(profile="full", data_source="embedded")
    n_train = 1437  # sklearn digits minus the 360 test images
    for run_name, cells in rows.items():
        cfg = config.run_config(params, "nice", run_name)
        assert int(cells[8].replace(",", "")) == cfg.epochs * math.ceil(n_train / cfg.batch_size)
        assert float(cells[2]) > 0 and cells[5] == "fp32"  # no autocast on the CPU
    assert "nice: whole full budget" in out


def test_peer_benchmark_prints_matched_parameter_counts_and_ratios():
    pytest.importorskip("normflows")
    out = run(["python", "benchmarks/peers.py", "--cases", "glow-small", "--pairs", "2",
               "--warmup", "1", "--eval-images", "32", "--threads", "1"], REPO).stdout
    assert "parameters ours 809,196, peer 806,088" in out
    rows = [line for line in out.splitlines() if line.startswith("| Glow")]
    assert len(rows) == 3 and all(float(r.split("|")[5]) > 0 for r in rows)
