"""Every job of the workflow for a params.yaml, as data: what the Snakemake rules build, and
what ``dvc.yaml`` is generated from (a test checks that Snakemake plans exactly these jobs).

No torch here: Snakemake imports this while it parses the DAG.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kexue import config, paths
from kexue.data.registry import get_dataset
from kexue.registry import get_article

NOTEBOOK = "workflow/notebooks/{article}.ipynb"


@dataclass(frozen=True)
class Job:
    rule: str
    name: str  # "<rule>--<variant>--<wildcards...>": the DVC stage name and the log name
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    wildcards: dict = field(default_factory=dict, compare=False)
    article: str = ""  # the article whose code the job runs ("" for dataset and summary jobs)


def datasets_of(params: dict, article_id: str) -> tuple[str, ...]:
    """The datasets an article reads: its DataConfig's ``datasets`` when set, else the
    registry's for the data source."""
    chosen = getattr(config.data_config(params, article_id), "datasets", ())
    return tuple(chosen) or get_article(article_id).datasets_for(params["data_source"])


def feature_nets_of(params: dict, article_id: str) -> tuple[str, ...]:
    """The image datasets, among those the article reads, whose feature network its runs use
    (the registry's ``feature_nets`` for the data source)."""
    wanted = get_article(article_id).feature_nets.get(params["data_source"], ())
    return tuple(d for d in wanted if d in datasets_of(params, article_id))


def dataset_rule(dataset: str) -> str:
    return "generate" if get_dataset(dataset).kind == "embedded" else "download"


def run_outputs(variant: str, article: str, run: str, seed: int) -> dict[str, str]:
    wc = {"variant": variant, "article": article, "run": run, "seed": seed}
    return {k: getattr(paths, k.upper()).format(**wc)
            for k in ("model", "history", "train_info", "train_artifacts", "metrics", "artifacts")}


def jobs(params: dict) -> list[Job]:
    variant = config.variant(params)
    out: list[Job] = []
    datasets = sorted({d for a in config.article_ids(params) for d in datasets_of(params, a)})
    for d in datasets:
        rule = dataset_rule(d)
        out.append(Job(rule, f"{rule}--{d}", (paths.RAW.format(dataset=d),),
                       wildcards={"dataset": d}))
    # one feature network per image dataset, shared by every article that scores samples
    for d in sorted({d for a in config.article_ids(params) for d in feature_nets_of(params, a)}):
        out.append(Job("features", f"features--{variant}--{d}",
                       (paths.FEATURES.format(variant=variant, dataset=d),),
                       (paths.RAW.format(dataset=d),), {"dataset": d}))
    reports = []
    for a in config.article_ids(params):
        processed = paths.PROCESSED.format(variant=variant, article=a)
        features = tuple(paths.FEATURES.format(variant=variant, dataset=d)
                         for d in feature_nets_of(params, a))
        raw = tuple(paths.RAW.format(dataset=d) for d in datasets_of(params, a))
        out.append(Job("prepare", f"prepare--{variant}--{a}", (processed,), raw,
                       {"article": a}, a))
        evaluated = []
        for run in config.run_names(params, a):
            for seed in config.seeds(params, a, run):
                o = run_outputs(variant, a, run, seed)
                wc = {"article": a, "run": run, "seed": seed}
                tag = f"{variant}--{a}--{run}--seed{seed}"
                out.append(Job("train", f"train--{tag}",
                               (o["model"], o["history"], o["train_info"], o["train_artifacts"]),
                               (processed, *features), wc, a))
                out.append(Job("evaluate", f"evaluate--{tag}", (o["metrics"], o["artifacts"]),
                               (processed, *features, o["model"]), wc, a))
                evaluated += [o["metrics"], o["history"], o["train_info"], o["train_artifacts"]]
        report = paths.REPORT.format(variant=variant, article=a)
        reports.append(report)
        out.append(Job("report", f"report--{variant}--{a}",
                       (report, paths.REPORT_NOTEBOOK.format(variant=variant, article=a)),
                       (NOTEBOOK.format(article=a), *evaluated), {"article": a}, a))
    out.append(Job("summary", f"summary--{variant}",
                   (paths.SUMMARY_HTML.format(variant=variant),
                    paths.SUMMARY_CSV.format(variant=variant)), tuple(reports)))
    return out
