"""Glow diagnostics (issue 17): train one run of a profile with overrides into a scratch folder,
evaluate it, and print the numbers behind the stripe question as JSON.

    PYTHONPATH=src python scripts/glow_stripes.py su --out /tmp/g/su \
        --data data/processed/default-embedded/glow --set lr=1.0e-3 --set model.net_init=torch
    PYTHONPATH=src python scripts/glow_stripes.py su --out /tmp/g/su --model-only   # reuse model.pt

Printed: test bits/dim; the column/row alternation (kexue.metrics.images) of the test images,
of the mode image (all z = 0) and of samples at T = 0.7; samples with the noise in one level
only; the std per channel of each level's z on test images (a standard-normal prior wants 1);
the learned top's log-scales.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
import yaml

from kexue import config
from kexue.articles.glow.evaluate import evaluate
from kexue.articles.glow.train import OFFSET, train
from kexue.io import load_torch
from kexue.metrics.images import alternation
from kexue.metrics.likelihood import dequantise
from kexue.rng import named_generator
from kexue.training import RunContext


def _override(values: dict, key: str, text: str) -> None:
    *parents, leaf = key.split(".")
    for p in parents:
        values = values.setdefault(p, {})
    values[leaf] = yaml.safe_load(text)


def _config(profile: str, run: str, sets: list[str]):
    params = config.load_params("params.yaml")
    params["profile"], params["data_source"] = profile, "embedded"
    cfg = config.run_config(params, "glow", run)
    values = dataclasses.asdict(cfg)
    for item in sets:
        key, text = item.split("=", 1)
        _override(values, key, text)
    return config.build(type(cfg), values, "overrides"), config.data_config(params, "glow")


def _alt(x: torch.Tensor) -> dict:
    return {"columns": round(alternation(x, -1), 4), "rows": round(alternation(x, -2), 4)}


@torch.no_grad()
def stripes(model, k_test: torch.Tensor, seed: int) -> dict:
    model.eval()
    x = dequantise(k_test, torch.rand(k_test.shape, generator=named_generator(seed, "diag")), 256,
                   OFFSET)
    zs, _ = model(x)
    g = named_generator(seed, "diag-samples")
    zero = [torch.zeros(256, *z.shape[1:]) for z in zs]
    one_level = {}
    for i in range(len(zs)):
        noisy = [z.clone() for z in zero]
        noisy[i] = torch.randn(noisy[i].shape, generator=g) * 0.7
        one_level[f"level {i}"] = _alt(model.reverse(noisy))
    top = model.levels[-1][-1]
    return {
        "test images": _alt(x),
        "mode image (z = 0)": _alt(model.reverse([z[:1] for z in zero])),
        "samples T0.7": _alt(model.sample(256, 0.7, g)),
        "T0.7 noise in one level only": one_level,
        "z std per channel of test images (min/median/max)":
            {f"level {i}": [round(v, 3) for v in (s.min().item(), s.median().item(), s.max().item())]
             for i, z in enumerate(zs) for s in [z.std((0, 2, 3))]},
        "learned top log-scales (min/max)": [round(top._log_s().min().item(), 3),
                                             round(top._log_s().max().item(), 3)],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--data", type=Path, default=Path("data/processed/default-embedded/glow"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--set", action="append", default=[], help="key=value (model.width=64)")
    ap.add_argument("--model-only", action="store_true", help="skip training, use out/model.pt")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg, data_cfg = _config(args.profile, args.run, args.set)
    ctx = RunContext(article="glow", run=args.run, seed=cfg.seed, cfg=cfg, data_cfg=data_cfg,
                     data_dir=args.data, out_dir=args.out, ckpt_dir=args.out / "ckpt",
                     device=torch.device("cpu"), profile=args.profile, source="embedded",
                     threads=1)
    if not args.model_only:
        train(ctx)
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    metrics = evaluate(ctx)
    from kexue.articles.glow.data import load_prepared
    from kexue.articles.glow.model import build_model

    k_test, meta = load_prepared(args.data, cfg.dataset, "test")
    model = build_model(cfg, meta["shape"])
    model.load_state_dict(load_torch(args.out / "model.pt"))
    report = {"overrides": args.set, "test_bpd": round(metrics["test_bpd"], 4),
              **stripes(model, k_test[:1000], cfg.seed)}
    print(json.dumps(report, indent=1))
    (args.out / "diagnosis.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
