"""Span decoding and cross-passage voting (spec dgcnn_qa §4.3).

Per passage: starts i with a1[i] > threshold, ends j with a2[j] > threshold, j - i < max span;
span score a1[i]·a2[j] ("product", Su's choice) or √(a1[i]·a2[j]) ("sqrt", the E3 ablation);
the best score per distinct answer string. Across passages: s_a = Σ s² / (1 + Σ s) over the
passages proposing a; the answer is the argmax ("" when no passage proposes anything).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

Scoring = Literal["product", "sqrt"]


def passage_candidates(text: str, start: Sequence[float], end: Sequence[float],
                       threshold: float = 0.1, max_span: int = 12, scoring: Scoring = "product"
                       ) -> dict[str, float]:
    """{answer string: best span score} for one passage; ``start``/``end`` are the model's
    probabilities (global score included) per character of ``text``."""
    n = min(len(text), len(start), len(end))
    ends = [j for j in range(n) if end[j] > threshold]
    best: dict[str, float] = {}
    for i in range(n):
        if start[i] <= threshold:
            continue
        for j in ends:
            if j < i:
                continue
            if j - i >= max_span:
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
                    max_span: int = 12, scoring: Scoring = "product") -> str:
    """The voted answer of one question from the start/end probabilities of its passages."""
    return vote([passage_candidates(p, s, e, threshold, max_span, scoring)
                 for p, s, e in zip(passages, start, end, strict=True)])[0]
