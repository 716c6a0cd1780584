"""``python -m kexue <stage> ...``: one call per workflow stage.

Snakemake rules and the generated DVC stages run exactly these commands, so a stage behaves
the same whichever front door started it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from kexue import config, paths
from kexue.io import read_json, write_json
from kexue.registry import get_article
from kexue.training import RunContext, pick_device, provenance, seed_everything


def _params(args) -> dict:
    params = config.load_params(args.params)
    # Snakemake passes its (possibly --config overridden) profile and source explicitly.
    if args.profile:
        params["profile"] = args.profile
    if args.source:
        params["data_source"] = args.source
    config.validate_params(params, where=args.params)
    return params


def cmd_download(args, params) -> None:
    from kexue.data.fetch import materialise

    materialise(args.dataset, paths.path(paths.RAW, dataset=args.dataset), params)


def cmd_prepare(args, params) -> None:
    article = get_article(args.article)
    source = params["data_source"]
    raw = {name: paths.path(paths.RAW, dataset=name) for name in article.datasets_for(source)}
    out = paths.path(paths.PROCESSED, article=args.article)
    article.module.prepare(config.data_config(params, args.article), raw, out, source)


def _context(args, params) -> RunContext:
    torch.set_num_threads(max(1, args.threads))
    wc = {"article": args.article, "run": args.run}
    return RunContext(
        article=args.article,
        run=args.run,
        cfg=config.run_config(params, args.article, args.run),
        data_cfg=config.data_config(params, args.article),
        data_dir=paths.path(paths.PROCESSED, article=args.article),
        out_dir=paths.path(paths.RUN, **wc),
        ckpt_dir=paths.path(paths.CHECKPOINTS, **wc),
        device=pick_device(params.get("device", "auto")),
        profile=params["profile"],
        source=params["data_source"],
        threads=args.threads,
    )


def cmd_train(args, params) -> None:
    ctx = _context(args, params)
    seed_everything(ctx.cfg.seed)
    start = time.perf_counter()
    wall = get_article(args.article).module.train(ctx)
    info = provenance(ctx, ctx.cfg.seed, wall)
    info["process_wall_time_s"] = round(time.perf_counter() - start, 2)
    write_json(paths.path(paths.TRAIN_INFO, article=args.article, run=args.run), info)


def cmd_evaluate(args, params) -> None:
    ctx = _context(args, params)
    seed_everything(ctx.cfg.seed)
    metrics = get_article(args.article).module.evaluate(ctx)
    train_info = read_json(paths.path(paths.TRAIN_INFO, article=args.article, run=args.run))
    metrics["provenance"] = train_info
    write_json(paths.path(paths.METRICS, article=args.article, run=args.run), metrics)


def cmd_report(args, params) -> None:
    from kexue.report import render_notebook

    render_notebook(args.article, Path("results") / args.article,
                    paths.path(paths.REPORT, article=args.article))


def cmd_summary(args, params) -> None:
    from kexue.report import write_summary

    write_summary(config.article_ids(params), Path("results"), Path(paths.SUMMARY_CSV),
                  Path(paths.SUMMARY_HTML))


def cmd_dvc_yaml(args, params) -> None:
    from kexue.dvcgen import check_dvc_yaml, write_dvc_yaml

    if args.check:
        sys.exit(check_dvc_yaml())
    write_dvc_yaml()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kexue", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", default="params.yaml", help="the params file (default: %(default)s)")
    p.add_argument("--profile", choices=config.PROFILES, help="override params.yaml's profile")
    p.add_argument("--source", choices=config.DATA_SOURCES, help="override the data source")
    sub = p.add_subparsers(dest="stage", required=True)

    for name, help_ in [("download", "fetch and verify a remote dataset (or check a user folder)"),
                        ("generate", "generate an embedded dataset")]:
        s = sub.add_parser(name, help=help_)
        s.add_argument("dataset")
        s.set_defaults(func=cmd_download)
    s = sub.add_parser("prepare", help="raw datasets -> processed data of one article")
    s.add_argument("article")
    s.set_defaults(func=cmd_prepare)
    for name, func in [("train", cmd_train), ("evaluate", cmd_evaluate)]:
        s = sub.add_parser(name, help=f"{name} one run of an article")
        s.add_argument("article")
        s.add_argument("run")
        s.add_argument("--threads", type=int, default=torch.get_num_threads())
        s.set_defaults(func=func)
    s = sub.add_parser("report", help="render the article's notebook to HTML")
    s.add_argument("article")
    s.set_defaults(func=cmd_report)
    sub.add_parser("summary", help="results/index.html and results/summary.csv").set_defaults(
        func=cmd_summary)
    s = sub.add_parser("dvc-yaml", help="regenerate dvc.yaml from the Snakemake DAG")
    s.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml is stale")
    s.set_defaults(func=cmd_dvc_yaml)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = _params(args)
    except config.ConfigError as e:
        sys.exit(f"error: {e}")
    args.func(args, params)
