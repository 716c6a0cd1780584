"""The benchmark scripts run (on CPU, a few steps) and print what they promise."""

import importlib
import json
import math

import pytest
import torch

from conftest import REPO, run
from kexue import config


def test_gpu_benchmark_smoke_check_on_cpu_projects_the_whole_budget(tmp_path):
    out = run(["python", "benchmarks/gpu.py", "--device", "cpu", "--steps", "2", "--source",
               "embedded", "--articles", "nice", "--threads", "1", "--workdir", str(tmp_path)],
              REPO).stdout
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in out.splitlines() if line.startswith("| nice |")}
    params = config.load_params(REPO / "params.yaml")
    params.update(profile="full", data_source="embedded")
    assert set(rows) == set(config.run_names(params, "nice"))
    meta = json.loads((tmp_path / "data" / "processed" / config.variant(params) / "nice" /
                       "data.json").read_text())
    for run_name, cells in rows.items():
        cfg = config.run_config(params, "nice", run_name)
        budget = cfg.epochs * math.ceil(meta["n_train"] / cfg.batch_size)
        assert int(cells[8].replace(",", "")) == budget
        assert float(cells[2]) > 0 and cells[5] == "fp32"  # no autocast on the CPU
    assert "nice: whole full budget" in out


def test_peer_benchmark_prints_matched_parameter_counts_and_ratios():
    pytest.importorskip("normflows")
    out = run(["python", "benchmarks/peers.py", "--cases", "glow-small", "--pairs", "2",
               "--warmup", "1", "--eval-images", "32", "--threads", "1"], REPO).stdout
    assert "parameters ours 809,196, peer 806,088" in out
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| Glow")]
    assert len(rows) == 3 and all(float(r[5]) > 0 for r in rows)
    for cells in rows:  # both sides' FLOP rates and the floor under our time
        assert all(float(rate) > 0 for rate in cells[7].split(","))
        assert 0 < float(cells[8])
    assert "matrix-product peak" in out


def test_peer_benchmark_counts_the_flops_of_a_training_step(monkeypatch):
    pytest.importorskip("normflows")
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    peers = importlib.import_module("peers")
    layer, x = torch.nn.Linear(3, 5, bias=False), torch.randn(4, 3)
    # forward 2*4*3*5; backward: the weight's gradient only (x needs none)
    assert peers.flops(lambda: layer(x).sum().backward()) == 2 * 120
