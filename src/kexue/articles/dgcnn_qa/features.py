"""The 8 hand features of Su's 2018 model (spec dgcnn_qa §3.2), one row per passage character.

Four features, computed at two levels:

* Q-E exact match: the unit occurs in the question (0/1);
* E-E co-occurrence: the number of *other* passages of the question that contain the unit,
  divided by the total number of passages (4 of the other 9 -> 4/10);
* Q-E soft match: the window of the question's length w around the unit (the unit at offset
  w // 2, placeholders beyond the passage's ends): Jaccard similarity of its set of units with
  the question's (placeholders are not units), and its edit distance to the question / w.

Su computes them on words and on characters (the character values averaged within each word).
Without his segmenter and dictionary this port uses characters and **character bigrams** as the
word-level substitute [deviation, labelled]: a character's bigram-level value is the mean over
the (one or two) bigrams that contain it. The texts are given already converted to half-width,
as the 2018 recipe does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from kexue.text import bigrams, centred_windows, codepoints, edit_distances

N_FEATURES = 8
PLACEHOLDER = -1  # beyond a passage's ends (code points and bigram units are >= 0)


def _window_jaccard(windows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """|W ∩ Q| / |W ∪ Q| of the unit sets of every window row W and the query Q."""
    s = np.sort(windows, axis=1)
    distinct = np.ones(s.shape, dtype=bool)
    distinct[:, 1:] = s[:, 1:] != s[:, :-1]
    distinct &= s != PLACEHOLDER
    q = np.unique(query)
    inter = (distinct & np.isin(s, q)).sum(1)
    return inter / (distinct.sum(1) + len(q) - inter)


def unit_features(question: np.ndarray, passages: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The 4 features (exact, co-occurrence, Jaccard, edit distance / w) of every unit of every
    passage, (n_k, 4) float32 each; a query without units (a one-character question at the
    bigram level) gives zeros for the three question features."""
    n_passages = len(passages)
    units, counts = np.unique(np.concatenate([np.unique(p) for p in passages] + [
        np.empty(0, np.int64)]), return_counts=True)
    w = len(question)
    lengths = [len(p) for p in passages]
    flat = np.concatenate(list(passages) + [np.empty(0, np.int64)])
    out = np.zeros((len(flat), 4), dtype=np.float32)
    if len(flat):
        out[:, 1] = (counts[np.searchsorted(units, flat)] - 1) / n_passages
    if w and len(flat):
        windows = np.concatenate([centred_windows(p, w, PLACEHOLDER) for p in passages if len(p)])
        out[:, 0] = np.isin(flat, question)
        out[:, 2] = _window_jaccard(windows, question)
        out[:, 3] = edit_distances(windows, question) / w
    return np.split(out, np.cumsum(lengths)[:-1]) if passages else []


def _bigram_to_chars(values: np.ndarray, n_chars: int) -> np.ndarray:
    """(n - 1, k) bigram values -> (n, k): each character gets the mean of its bigrams."""
    total = np.zeros((n_chars, values.shape[1]), dtype=np.float32)
    count = np.zeros((n_chars, 1), dtype=np.float32)
    total[:-1] += values
    total[1:] += values
    count[:-1] += 1
    count[1:] += 1
    return total / np.maximum(count, 1)


def passage_features(question: str, passages: Sequence[str]) -> list[np.ndarray]:
    """(len(passage), 8) float32 per passage: the 4 features on characters, then on bigrams."""
    levels: list[tuple[Callable[[str], np.ndarray], bool]] = [(codepoints, False),
                                                              (bigrams, True)]
    per_level = []
    for units, is_bigram in levels:
        values = unit_features(units(question), [units(p) for p in passages])
        if is_bigram:
            values = [_bigram_to_chars(v, len(p)) for v, p in zip(values, passages, strict=True)]
        per_level.append(values)
    return [np.concatenate(parts, axis=1) for parts in zip(*per_level, strict=True)]
