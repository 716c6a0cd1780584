"""The interface every article package implements (checked for each registered article by
``tests/test_article_contract.py``). See ``docs/architecture.md`` for the package layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kexue.comparison import ArticleResults, Comparison
from kexue.training import RunContext


@runtime_checkable
class ConfigPart(Protocol):
    """``config.py``: plain dataclasses, no torch. Defaults are the article's own settings."""

    DataConfig: type
    RunConfig: type  # has ``seed: int`` and an explicit model config


@runtime_checkable
class DataPart(Protocol):
    """``data.py``: raw datasets (``raw[name]`` is that dataset's folder) -> ``out``."""

    def prepare(self, cfg: Any, raw: dict[str, Path], out: Path, source: str) -> None: ...


@runtime_checkable
class TrainPart(Protocol):
    """``train.py``: writes ``model.pt`` and ``history.csv`` into ``ctx.out_dir``."""

    def train(self, ctx: RunContext) -> None: ...


@runtime_checkable
class EvaluatePart(Protocol):
    """``evaluate.py``: returns the metrics; figures go to ``ctx.artifacts``."""

    def evaluate(self, ctx: RunContext) -> dict: ...


@runtime_checkable
class PublishedPart(Protocol):
    """``published.py``: the published numbers with their sources, as comparison rows."""

    def comparisons(self, results: ArticleResults) -> list[Comparison]: ...


PROTOCOLS = {"config": ConfigPart, "data": DataPart, "train": TrainPart,
             "evaluate": EvaluatePart, "published": PublishedPart}
