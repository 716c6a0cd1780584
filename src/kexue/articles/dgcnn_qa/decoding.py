"""Span decoding and cross-passage voting (spec dgcnn_qa §4.3).

Per passage: starts i with a1[i] > threshold, ends j with a2[j] > threshold, spans of at most
max span characters (2019) or "words" (2018: a Chinese character counts 1, a letter or digit
1/2); span score a1[i]·a2[j] ("product", Su's choice) or √(a1[i]·a2[j]) ("sqrt", the E3 ablation);
the best score per distinct answer string. Across passages: s_a = Σ s² / (1 + Σ s) over the
passages proposing a; the answer is the argmax ("" when no passage proposes anything).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from kexue.text import halfwidth

Scoring = Literal["product", "sqrt"]
SpanUnit = Literal["char", "word2018"]


def span_weights(text: str, unit: SpanUnit = "char") -> list[float]:
    """The length each character adds to a span: 1, or (2018) 1/2 for a letter or digit (ASCII
    or full-width)."""
    if unit == "char":
        return [1.0] * len(text)
    return [0.5 if c.isascii() and c.isalnum() else 1.0 for c in halfwidth(text)]


def passage_candidates(text: str, start: Sequence[float], end: Sequence[float],
                       threshold: float = 0.1, max_span: float = 12, scoring: Scoring = "product",
                       unit: SpanUnit = "char") -> dict[str, float]:
    """{answer string: best span score} for one passage; ``start``/``end`` are the model's
    probabilities (global score included) per character of ``text``."""
    n = min(len(text), len(start), len(end))
    ends = [j for j in range(n) if end[j] > threshold]
    offsets = [0.0]  # offsets[k] = the length of text[:k] in ``unit``s
    for w in span_weights(text[:n], unit):
        offsets.append(offsets[-1] + w)
    best: dict[str, float] = {}
    for i in range(n):
        if start[i] <= threshold:
            continue
        for j in ends:
            if j < i:
                continue
            if offsets[j + 1] - offsets[i] > max_span:
                break
            answer = text[i:j + 1]
            score = start[i] * end[j]
            if scoring == "sqrt":
                score = math.sqrt(score)
            if score > best.get(answer, -1.0):
                best[answer] = score
    return best


def vote(candidates: Sequence[dict[str, float]]) -> tuple[str, float]:
    """The answer maximising Σ s² / (1 + Σ s) over passages, and its vote; ("", 0) if none.
    Ties go to the answer proposed first."""
    squares: dict[str, float] = {}
    sums: dict[str, float] = {}
    for per_passage in candidates:
        for answer, s in per_passage.items():
            squares[answer] = squares.get(answer, 0.0) + s * s
            sums[answer] = sums.get(answer, 0.0) + s
    best, best_vote = "", 0.0
    for answer, square_sum in squares.items():
        v = square_sum / (1 + sums[answer])
        if v > best_vote:
            best, best_vote = answer, v
    return best, best_vote


def decode_question(passages: Sequence[str], start: Sequence[Sequence[float]],
                    end: Sequence[Sequence[float]], threshold: float = 0.1,
                    max_span: float = 12, scoring: Scoring = "product", unit: SpanUnit = "char"
                    ) -> str:
    """The voted answer of one question from the start/end probabilities of its passages."""
    return vote([passage_candidates(p, s, e, threshold, max_span, scoring, unit)
                 for p, s, e in zip(passages, start, end, strict=True)])[0]
