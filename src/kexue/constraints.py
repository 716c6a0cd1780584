"""Ranges for config values, as type hints: ``Positive[int]``, ``Probability[float]``, ...

``kexue.config`` checks them when it reads params.yaml; they live here, in the kit, so that
any layer's config dataclass can use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, TypeVar


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``Annotated[int, Range(ge=1)]``."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def violated(self, v: float) -> str | None:
        for bound, ok, text in ((self.ge, lambda b: v >= b, ">="), (self.gt, lambda b: v > b, ">"),
                                (self.le, lambda b: v <= b, "<="), (self.lt, lambda b: v < b, "<")):
            if bound is not None and not ok(bound):
                return f"{text} {bound:g}"
        return None


T = TypeVar("T")
Positive = Annotated[T, Range(gt=0)]
NonNegative = Annotated[T, Range(ge=0)]
Probability = Annotated[T, Range(ge=0, le=1)]
