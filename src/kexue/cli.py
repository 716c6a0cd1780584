"""``python -m kexue <stage> ...``: one call per workflow stage, plus ``list`` and ``dvc-yaml``.

Snakemake rules and the generated DVC stages run exactly these commands, so a stage behaves
the same whichever front door started it. A user error prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from kexue import config
from kexue.errors import UserError
from kexue.registry import ARTICLES, implemented_ids

EPILOG = """examples:
  python -m kexue list
  python -m kexue --profile smoke train nice su --seed 0
  snakemake --cores all            (the whole DAG; see README.md)"""


def _params(args) -> dict:
    params = config.load_params(args.params)
    # Snakemake passes its (possibly --config overridden) profile and source explicitly.
    if args.profile:
        params["profile"] = args.profile
    if args.source:
        params["data_source"] = args.source
    config.validate_params(params, where=args.params)
    return params


def _check_article(params: dict, article: str) -> None:
    if article not in params["articles"]:
        raise UserError(f"article {article!r} is not in params.yaml (articles there: "
                        f"{', '.join(params['articles'])}); add its block to run it")


def cmd_list(args, params) -> None:
    from kexue.data.registry import get_dataset

    for a in ARTICLES.values():
        print(f"{a.id}: {a.title}\n  {a.url}" + ("  [planned]" if a.planned else ""))
        if a.planned or a.id not in params["articles"]:
            continue
        for profile in config.PROFILES:
            p = {**params, "profile": profile}
            runs = [f"{r} (seeds {','.join(map(str, config.seeds(p, a.id, r)))})"
                    for r in config.run_names(p, a.id)]
            print(f"  runs at {profile}: {', '.join(runs)}")
        for source, names in a.datasets.items():
            kinds = ", ".join(f"{n} ({get_dataset(n).kind})" for n in names)
            print(f"  datasets, {source}: {kinds}")


def cmd_download(args, params) -> None:
    from kexue import stages

    stages.download(params, args.dataset)


def cmd_features(args, params) -> None:
    from kexue import stages

    stages.features(params, args.dataset, args.threads)


def cmd_prepare(args, params) -> None:
    from kexue import stages

    _check_article(params, args.article)
    stages.prepare(params, args.article)


def cmd_train(args, params) -> None:
    from kexue import stages

    _check_article(params, args.article)
    stages.train(params, args.article, args.run, args.seed, args.threads)


def cmd_evaluate(args, params) -> None:
    from kexue import stages

    _check_article(params, args.article)
    stages.evaluate(params, args.article, args.run, args.seed, args.threads)


def cmd_report(args, params) -> None:
    from kexue import stages

    _check_article(params, args.article)
    stages.report(params, args.article)


def cmd_summary(args, params) -> None:
    from kexue import stages

    stages.summary(params)


def cmd_dvc_yaml(args, params) -> None:
    from kexue.dvcgen import check_dvc_yaml, write_dvc_yaml

    if args.check:
        sys.exit(check_dvc_yaml(args.params))
    write_dvc_yaml(args.params)


def cmd_reference(args, params) -> None:
    from kexue.report import publish_reference

    publish_reference(params)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with where to look) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from kexue.data.registry import DATASETS

    p = _Parser(prog="python -m kexue", description=__doc__, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", default="params.yaml", help="the params file (default: %(default)s)")
    p.add_argument("--profile", choices=config.PROFILES, help="override params.yaml's profile")
    p.add_argument("--source", choices=config.DATA_SOURCES, help="override the data source")
    sub = p.add_subparsers(dest="stage", required=True, metavar="<stage>", parser_class=_Parser)

    sub.add_parser("list", help="the articles, their runs per profile and datasets per source"
                   ).set_defaults(func=cmd_list)
    for name, help_ in [("download", "fetch and verify a dataset (or check a user folder)"),
                        ("generate", "generate an embedded dataset")]:
        s = sub.add_parser(name, help=help_)
        s.add_argument("dataset", choices=sorted(DATASETS), metavar="dataset",
                       help=f"one of: {', '.join(sorted(DATASETS))}")
        s.set_defaults(func=cmd_download)
    article_help = f"one of: {', '.join(implemented_ids())}"
    s = sub.add_parser("features", help="train the feature network of an image dataset "
                                        "(GAN metrics)")
    s.add_argument("dataset")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_features)
    s = sub.add_parser("prepare", help="raw datasets -> the article's processed data")
    s.add_argument("article", choices=implemented_ids(), metavar="article", help=article_help)
    s.set_defaults(func=cmd_prepare)
    for name, func in [("train", cmd_train), ("evaluate", cmd_evaluate)]:
        s = sub.add_parser(name, help=f"{name} one run (one seed) of an article")
        s.add_argument("article", choices=implemented_ids(), metavar="article", help=article_help)
        s.add_argument("run", help="a run of the article (`python -m kexue list` shows them)")
        s.add_argument("--seed", type=int, help="one of the run's seeds (default: its first)")
        s.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                       help="CPU threads (default: all cores)")
        s.set_defaults(func=func)
    s = sub.add_parser("report", help="render the article's notebook to HTML")
    s.add_argument("article", choices=implemented_ids(), metavar="article", help=article_help)
    s.set_defaults(func=cmd_report)
    sub.add_parser("summary", help="results/<variant>/index.html and summary.csv"
                   ).set_defaults(func=cmd_summary)
    s = sub.add_parser("dvc-yaml", help="regenerate dvc.yaml from params.yaml and the registry")
    s.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml is stale")
    s.set_defaults(func=cmd_dvc_yaml)
    sub.add_parser("reference", help="copy this variant's index and reports into docs/reference"
                   ).set_defaults(func=cmd_reference)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args, _params(args))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
