"""The workflow stages, one function each: what ``python -m kexue <stage>`` runs.

Each stage imports only the article part it runs (``data``, ``train``, ``evaluate``, ...), so
the code a stage depends on is exactly what ``dvc.yaml`` lists for it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from kexue import config, paths
from kexue.dag import datasets_of, feature_nets_of
from kexue.errors import ConfigError, UserError
from kexue.io import write_json
from kexue.registry import get_article

if TYPE_CHECKING:
    from kexue.data.images import ImageOptions


def _need(path: Path, hint: str) -> Path:
    if not path.exists():
        raise UserError(f"{path} does not exist: {hint}")
    return path


def _variant(params: dict) -> str:
    return config.variant(params)



def download(params: dict, dataset: str) -> None:
    from kexue.data.fetch import materialise

    materialise(dataset, paths.path(paths.RAW, dataset=dataset),
                mirror=config.mirror(params), local_dir=config.data_dir_override(params, dataset))


def feature_net_images(params: dict, dataset: str) -> ImageOptions:
    """The ImageOptions the ``features`` job reads ``dataset`` with: those of the articles that
    score samples with its network (their ``data.images``), so that it is trained on the images
    they score (size, crop, split). ConfigError when they disagree on an option this dataset's
    reader reads."""
    from dataclasses import replace

    from kexue.data.images import ImageOptions, options_read

    users = [a for a in config.article_ids(params) if dataset in feature_nets_of(params, a)]
    read = {a: options_read(dataset, getattr(config.data_config(params, a), "images",
                                             ImageOptions())) for a in users}
    if len({tuple(sorted(r.items())) for r in read.values()}) > 1:
        raise ConfigError(
            f"params.yaml: the {dataset} feature network is shared, but the articles reading "
            f"it disagree on data.images: " + "; ".join(
                f"articles.{a}.{params['profile']}.data.images {r}" for a, r in read.items())
            + ": give them the same values")
    return replace(ImageOptions(), **next(iter(read.values()), {}))


def features(params: dict, dataset: str, threads: int) -> None:
    """Train the feature network of an image dataset on its training split (the GAN articles'
    FID/KID and collapse detector score samples with it), read as those articles read it."""
    import torch

    from kexue.data.images import load_image_dataset, options_read
    from kexue.metrics.features import TRAINING, build_feature_net

    torch.set_num_threads(max(1, threads))
    options = feature_net_images(params, dataset)
    raw = _need(paths.path(paths.RAW, dataset=dataset),
                f"run `python -m kexue download {dataset}` (or snakemake) first")
    images = load_image_dataset(dataset, raw, options)

    def tensor(a):
        return None if a is None else torch.from_numpy(a)

    out = paths.path(paths.FEATURES, variant=_variant(params), dataset=dataset)
    start = time.perf_counter()
    info = build_feature_net(out, tensor(images.train), tensor(images.train_labels),
                             tensor(images.test), tensor(images.test_labels), images.n_levels,
                             TRAINING[params["profile"]],
                             {"dataset": dataset, "data_label": images.label,
                              "test_split": images.test_split,
                              "image_options": options_read(dataset, options)})
    print(f"[features] {dataset}: {info['kind']} in {time.perf_counter() - start:.1f} s; "
          + ", ".join(f"{k}={info[k]:.4g}" for k in ("test_accuracy", "test_reconstruction_mse")
                      if k in info))


def prepare(params: dict, article_id: str) -> None:
    article = get_article(article_id)
    raw = {}
    for name in datasets_of(params, article_id):
        raw[name] = _need(paths.path(paths.RAW, dataset=name),
                          f"run `python -m kexue download {name}` (or snakemake) first")
    out = paths.path(paths.PROCESSED, variant=_variant(params), article=article_id)
    out.mkdir(parents=True, exist_ok=True)
    article.part("data").prepare(config.data_config(params, article_id), raw, out,
                                 params["data_source"])


def context(params: dict, article_id: str, run: str, seed: int | None, threads: int):
    import torch

    from kexue.training import RunContext, pick_device

    cfg = config.run_config(params, article_id, run, seed)
    torch.set_num_threads(max(1, threads))
    where = {"variant": _variant(params), "article": article_id, "run": run, "seed": cfg.seed}
    data_dir = paths.path(paths.PROCESSED, variant=where["variant"], article=article_id)
    _need(data_dir, f"run `python -m kexue prepare {article_id}` (or snakemake) first")
    return RunContext(article=article_id, run=run, seed=cfg.seed, cfg=cfg,
                      data_cfg=config.data_config(params, article_id), data_dir=data_dir,
                      out_dir=paths.path(paths.RUN, **where),
                      ckpt_dir=paths.path(paths.CHECKPOINTS, **where),
                      device=pick_device(params.get("device", "auto")),
                      profile=params["profile"], source=params["data_source"], threads=threads)


def _record(ctx) -> dict:
    from dataclasses import asdict

    from kexue.provenance import machine

    return {"article": ctx.article, "run": ctx.run, "seed": ctx.seed, "profile": ctx.profile,
            "data_source": ctx.source, "config": asdict(ctx.cfg), **machine(ctx.device)}


def train(params: dict, article_id: str, run: str, seed: int | None, threads: int) -> None:
    from kexue.training import seed_everything

    ctx = context(params, article_id, run, seed, threads)
    seed_everything(ctx.seed)
    start = time.perf_counter()
    get_article(article_id).part("train").train(ctx)
    # no timing in train.json (the report reads it): the same model gives the same bytes; the
    # job's runtime is in this log line and in its Snakemake benchmark file
    write_json(ctx.out_dir / "train.json", _record(ctx))
    print(f"[{ctx.label}] trained in {time.perf_counter() - start:.1f} s", flush=True)


def evaluate(params: dict, article_id: str, run: str, seed: int | None, threads: int) -> None:
    from kexue.training import seed_everything

    ctx = context(params, article_id, run, seed, threads)
    _need(ctx.out_dir / "model.pt", f"train it first: `python -m kexue train {article_id} {run}"
                                    f" --seed {ctx.seed}` (or snakemake)")
    seed_everything(ctx.seed)
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    metrics = get_article(article_id).part("evaluate").evaluate(ctx)
    # no timing here: the same model must give the same metrics.json (DVC and Snakemake see
    # an unchanged file); the job's runtime is in its Snakemake benchmark file
    metrics["provenance"] = _record(ctx)
    write_json(ctx.out_dir / "metrics.json", metrics)


def report(params: dict, article_id: str) -> None:
    from kexue.report import render_notebook

    variant = _variant(params)
    results = paths.path(paths.RESULTS, variant=variant) / article_id
    if not any(results.glob("*/seed*/metrics.json")):
        raise UserError(f"{results} holds no evaluated run: run `python -m kexue evaluate "
                        f"{article_id} <run>` (or snakemake) first")
    render_notebook(article_id, paths.path(paths.RESULTS, variant=variant) / article_id,
                    paths.path(paths.REPORT, variant=variant, article=article_id))


def summary(params: dict) -> None:
    from kexue.report import write_summary

    for article_id in config.article_ids(params):
        _need(paths.path(paths.REPORT, variant=_variant(params), article=article_id),
              f"run `python -m kexue report {article_id}` (or snakemake) first")
    write_summary(params, paths.path(paths.RESULTS, variant=_variant(params)))
