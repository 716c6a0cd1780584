"""The article registry: the one list that Snakemake, DVC, the CLI and the index all read.

Adding an article means adding its package under ``kexue.articles`` (the shape is in
``docs/architecture.md``), its notebook ``workflow/notebooks/<id>.ipynb``, one entry here and
its block in ``params.yaml``; the rules and ``dvc.yaml`` follow from this table. An entry with
``planned=True`` has no package yet: the index lists it as planned.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from kexue.errors import ConfigError

# The parts every article package has, by stage (see kexue.article.ArticleParts).
PARTS = ("config", "model", "data", "train", "evaluate", "published")


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    url: str
    # data source ("embedded" | "official") -> dataset names from kexue.data.registry
    datasets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    planned: bool = False

    def part(self, name: str) -> ModuleType:
        """The article's module ``name`` (one of PARTS), imported on first use."""
        if self.planned:
            raise ConfigError(f"article {self.id!r} is planned, not implemented yet")
        return importlib.import_module(f"kexue.articles.{self.id}.{name}")

    def datasets_for(self, source: str) -> tuple[str, ...]:
        if source not in self.datasets:
            raise ConfigError(f"article {self.id!r} has no data source {source!r}; "
                              f"choose one of {', '.join(sorted(self.datasets))}")
        return self.datasets[source]


ARTICLES: dict[str, Article] = {
    a.id: a
    for a in [
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
            id="dgcnn_qa",
            title="DGCNN reading-comprehension QA (基于CNN的阅读理解式问答模型：DGCNN)",
            url="https://kexue.fm/archives/5409",
            planned=True,
        ),
        Article(
            id="amsoftmax_sim",
            title="Sentence similarity with GRU + AM-Softmax (基于GRU和AM-Softmax的句子相似度模型)",
            url="https://kexue.fm/archives/5743",
            planned=True,
        ),
        Article(
            id="vi_gan",
            title="A variational-inference view of VAE and GAN (用变分推断统一理解生成模型)",
            url="https://kexue.fm/archives/5716",
            planned=True,
        ),
        Article(
            id="nice",
            title="NICE: additive-coupling flow (细水长flow之NICE)",
            url="https://kexue.fm/archives/5776",
            datasets={"embedded": ("digits",), "official": ("mnist",)},
        ),
        Article(
            id="glow",
            title="RealNVP and Glow (细水长flow之RealNVP与Glow)",
            url="https://kexue.fm/archives/5807",
            datasets={"embedded": ("image_patches",), "official": ("cifar10", "celeba")},
        ),
        Article(
            id="fgan",
            title="f-GAN: GANs from f-divergences (f-GAN简介：GAN模型的生产车间)",
            url="https://kexue.fm/archives/6016",
            planned=True,
        ),
        Article(
            id="lipschitz",
            title="Lipschitz constraints in deep learning (深度学习中的Lipschitz约束)",
            url="https://kexue.fm/archives/6051",
            planned=True,
        ),
    ]
}


def get_article(article_id: str) -> Article:
    try:
        return ARTICLES[article_id]
    except KeyError:
        raise ConfigError(f"unknown article {article_id!r} (known: "
                          f"{', '.join(ARTICLES)})") from None


def implemented_ids() -> list[str]:
    return [a.id for a in ARTICLES.values() if not a.planned]
