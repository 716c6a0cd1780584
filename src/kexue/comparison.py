"""Published-vs-reproduced rows: the unit of the summary table."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    run: str
    metric: str  # e.g. "test bits/dim"
    published: float | None  # None when the article publishes no number for this
    published_source: str  # e.g. "paper (arXiv 1410.8516)", "article"
    reproduced: float
    band: float | None  # |reproduced - published| <= band counts as reproduced
    comparable: bool  # False when data or scale differ (embedded data, reduced profile)
    note: str = ""

    @property
    def status(self) -> str:
        if not math.isfinite(self.reproduced):
            return "failed"
        if self.published is None or self.band is None:
            return "no published number"
        if not self.comparable:
            return "not comparable"
        ok = abs(self.reproduced - self.published) <= self.band
        return "within band" if ok else "outside band"

    def as_row(self) -> dict:
        return {
            "run": self.run,
            "metric": self.metric,
            "published": self.published,
            "published_source": self.published_source,
            "reproduced": self.reproduced,
            "band": f"±{self.band:g}" if self.band is not None else "",
            "status": self.status,
            "note": self.note,
        }
