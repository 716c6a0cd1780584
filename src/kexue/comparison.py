"""Published-vs-reproduced rows: the unit of the reports and of the index.

One rule decides whether a reproduced number may be held against the published one
(:func:`comparable`): official, complete data at the ``full`` profile. A published number has
a direction (lower or higher is better, or two-sided) and a tolerance; a run with several
seeds is summarised by mean ± sd.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Direction = Literal["lower", "higher", "two-sided"]
_EPS = 1e-9  # float slack: 0.97 - 0.94 is 0.030000000000000027


def mean_sd(values: Iterable[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds, the one way every report computes them:
    nan where undefined (no value; one value for the sd). A non-finite value, or None (how
    metrics.json records one), makes both nan: a failed seed is never dropped."""
    v = np.array([math.nan if x is None else float(x) for x in values], dtype=np.float64)
    mean = float(v.mean()) if v.size else math.nan
    return mean, float(v.std(ddof=1)) if v.size > 1 else math.nan


def comparable(profile: str, source: str, complete_data: bool = True) -> bool:
    """The one rule: only official, complete data at the article's own scale compares."""
    return profile == "full" and source == "official" and complete_data


@dataclass(frozen=True)
class Published:
    value: float
    source: str  # e.g. "paper (arXiv 1410.8516, Table 1)", "article"
    direction: Direction = "two-sided"
    tolerance: float = 0.0  # how far on the wrong side still counts as reproduced

    def holds(self, reproduced: float) -> bool:
        slack = self.tolerance + _EPS * max(1.0, abs(self.value))
        if self.direction == "lower":
            return reproduced <= self.value + slack
        if self.direction == "higher":
            return reproduced >= self.value - slack
        return abs(reproduced - self.value) <= slack

    @property
    def band(self) -> str:
        sign = {"lower": "≤ +", "higher": "≥ −", "two-sided": "±"}[self.direction]
        return f"{sign}{self.tolerance:g}"


@dataclass(frozen=True)
class Comparison:
    run: str
    metric: str  # e.g. "test bits/dim"
    published: Published | None  # None when the article publishes no number for this
    values: tuple[float, ...]  # one per seed
    comparable: bool  # False when data or scale differ (embedded data, reduced profile)
    note: str = ""

    @property
    def mean(self) -> float:
        return mean_sd(self.values)[0]

    @property
    def sd(self) -> float | None:
        return mean_sd(self.values)[1] if len(self.values) > 1 else None

    @property
    def status(self) -> str:
        if not self.values or not all(math.isfinite(v) for v in self.values):
            return "failed"
        if self.published is None:
            return "no published number"
        if not self.comparable:
            return "not comparable"
        return "within band" if self.published.holds(self.mean) else "outside band"

    def as_row(self) -> dict:
        p = self.published
        return {
            "run": self.run,
            "metric": self.metric,
            "published": p.value if p else None,
            "published_source": p.source if p else "",
            "reproduced": self.mean,
            "sd": self.sd,
            "seeds": len(self.values),
            "band": p.band if p else "",
            "status": self.status,
            "note": self.note,
        }


@dataclass
class RunResults:
    """One run's metrics.json contents, one per seed."""

    run: str
    seeds: dict[int, dict] = field(default_factory=dict)

    def values(self, key: str) -> tuple[float, ...]:
        return tuple(float(m[key]) for m in self.seeds.values())

    @property
    def first(self) -> dict:
        return next(iter(self.seeds.values()))


@dataclass
class ArticleResults:
    article: str
    profile: str
    source: str
    runs: dict[str, RunResults]

    def comparable(self, complete_data: bool = True) -> bool:
        return comparable(self.profile, self.source, complete_data)


def compare(results: ArticleResults, run: RunResults, key: str, metric: str,
            published: Published | None, note: str = "",
            complete_data: bool | None = None) -> Comparison:
    """The row for metric ``key`` of ``run`` (mean over its seeds). ``complete_data`` defaults
    to the metrics' own ``complete_data`` flag (False for subsets and synthetic data)."""
    if complete_data is None:
        complete_data = all(m.get("complete_data", False) for m in run.seeds.values())
    return Comparison(run.run, metric, published, run.values(key),
                      results.comparable(complete_data), note)
