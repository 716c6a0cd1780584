"""The article registry: the one list that Snakemake, DVC, the CLI and the summary all read.

Adding an article means adding its module under ``kexue.articles``, its notebook under
``workflow/notebooks/`` and one entry here (plus its block in ``params.yaml``); the rules and
``dvc.yaml`` follow from this table.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    url: str
    # data source ("embedded" | "official") -> dataset names from kexue.data.registry
    datasets: dict[str, tuple[str, ...]]

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(f"kexue.articles.{self.id}")

    def datasets_for(self, source: str) -> tuple[str, ...]:
        if source not in self.datasets:
            raise ValueError(f"article {self.id!r} has no data source {source!r}; "
                             f"choose one of {sorted(self.datasets)}")
        return self.datasets[source]


ARTICLES: dict[str, Article] = {
    a.id: a
    for a in [
        Article(
            id="nice",
            title="NICE: additive-coupling flow (细水长flow之NICE)",
            url="https://kexue.fm/archives/5776",
            datasets={"embedded": ("digits",), "official": ("mnist",)},
        ),
        Article(
            id="spectra_conv1d",
            title="Conv1D spectral classification (基于Conv1D的光谱分类模型)",
            url="https://kexue.fm/archives/5505",
            datasets={
                "embedded": ("synthetic_spectra", "mnist1d"),
                "official": ("tianchi_spectra", "mnist1d"),
            },
        ),
        Article(
            id="glow",
            title="RealNVP and Glow (细水长flow之RealNVP与Glow)",
            url="https://kexue.fm/archives/5807",
            datasets={"embedded": ("digits", "image_patches"), "official": ("cifar10", "celeba")},
        ),
    ]
}


def get_article(article_id: str) -> Article:
    try:
        return ARTICLES[article_id]
    except KeyError:
        raise KeyError(f"unknown article {article_id!r}; known: {sorted(ARTICLES)}") from None
