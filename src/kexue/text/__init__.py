"""Chinese text at the character level, shared by the text articles (dgcnn_qa, amsoftmax_sim).

* ``halfwidth(text)``: full-width -> half-width (U+3000 -> space, U+FF01-U+FF5E -> ASCII), the
  conversion of Su's code and of the Sogou metric; nothing else changes.
* ``Vocabulary``: characters seen at least ``min_count`` times, after reserved ids
  ``PAD = 0`` (padding, the only masked id) and ``UNK = 1`` (unknown character); ``encode``
  maps a string to ids, ``save``/``load`` keep it as JSON.
* ``pad(seqs, maxlen, padding=, truncating=)``: a ragged list of id lists -> an int64 array
  and its boolean mask (True on real tokens); ``batch`` does the same into torch tensors, for a
  batch of variable-length texts.
* ``codepoints(text)`` / ``bigrams(text)``: a text as int64 units (characters, or overlapping
  character pairs, a common stand-in for Chinese words); ``centred_windows(units, width, fill)``:
  the window of ``width`` units around every position; ``edit_distances(rows, query)``: the
  Levenshtein distance of many rows to one query, vectorised (for soft-match features).

Typical use (sentences cut to 32 characters, padded at the end)::

    vocab = Vocabulary.build(train_sentences, min_count=2)
    ids, mask = batch([vocab.encode(s) for s in sentences], maxlen=32)   # (B, 32), (B, 32)

Nothing here normalises implicitly: call ``halfwidth`` (or not) before ``build`` and ``encode``,
as the article's recipe says (Su's 2019 DGCNN uses raw text, for instance).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from kexue.errors import DataError
from kexue.io import atomic_path

PAD = 0  # padding; the only id a mask hides
UNK = 1  # a character outside the vocabulary
RESERVED = ("<pad>", "<unk>")

_FULLWIDTH_OFFSET = 0xFEE0  # U+FF01..U+FF5E are ASCII 0x21..0x7E shifted by this
_HALFWIDTH_TABLE = {0x3000: 0x20, **{c: c - _FULLWIDTH_OFFSET for c in range(0xFF01, 0xFF5F)}}

Side = Literal["post", "pre"]


def halfwidth(text: str) -> str:
    """Full-width forms -> ASCII: U+3000 (ideographic space) -> space, U+FF01-U+FF5E -> U+0021-
    U+007E. Other full-width signs (￥, ￣, ￠) and everything else are left unchanged."""
    return text.translate(_HALFWIDTH_TABLE)


class Vocabulary:
    """Character -> id. Ids 0..len(reserved)-1 are the reserved tokens (``PAD``, ``UNK``, then
    any extra ones); characters follow, most frequent first (ties by code point, so the ids are
    a pure function of the counts)."""

    def __init__(self, chars: Sequence[str], reserved: Sequence[str] = RESERVED):
        if tuple(reserved[:2]) != RESERVED:
            raise ValueError(f"reserved tokens must start with {RESERVED}, got {tuple(reserved)}")
        self.tokens: tuple[str, ...] = tuple(reserved) + tuple(chars)
        self._ids = {t: i for i, t in enumerate(self.tokens)}
        if len(self._ids) != len(self.tokens):
            raise ValueError("vocabulary tokens are not distinct")
        self.n_reserved = len(reserved)

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1,
              extra_reserved: Sequence[str] = ()) -> Vocabulary:
        """The characters of ``texts`` seen at least ``min_count`` times."""
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts = Counter()
        for text in texts:
            counts.update(text)
        reserved = RESERVED + tuple(extra_reserved)
        kept = sorted((c for c, n in counts.items() if n >= min_count and c not in reserved),
                      key=lambda c: (-counts[c], c))
        return cls(kept, reserved)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, char: str) -> bool:
        return char in self._ids

    def id(self, token: str) -> int:
        return self._ids.get(token, UNK)

    def encode(self, text: str, maxlen: int | None = None) -> list[int]:
        """One id per character (``UNK`` for unknown ones), cut to the first ``maxlen``."""
        ids = [self._ids.get(c, UNK) for c in text]
        return ids if maxlen is None else ids[:maxlen]

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of ``ids``, skipping padding; unknown ids -> the ``<unk>`` token."""
        return "".join(self.tokens[i] for i in map(int, ids) if i != PAD)

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"reserved": self.tokens[:self.n_reserved],
                                       "chars": self.tokens[self.n_reserved:]},
                                      ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data["chars"], data["reserved"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}: not a vocabulary file ({e})") from None


def pad(seqs: Sequence[Sequence[int]], maxlen: int | None = None, padding: Side = "post",
        truncating: Side = "post", value: int = PAD) -> tuple[np.ndarray, np.ndarray]:
    """Pad (or cut) every sequence to ``maxlen`` (default: the longest), filling with ``value``.

    ``padding="post"`` puts the fill at the end, ``"pre"`` at the start; ``truncating="post"``
    keeps the first ``maxlen`` ids, ``"pre"`` the last ones (Keras ``pad_sequences`` defaults to
    "pre" for both; we default to "post"). Returns (ids int64 (N, L), mask bool (N, L)), the mask
    True on real tokens.
    """
    for side in (padding, truncating):
        if side not in ("post", "pre"):
            raise ValueError(f"padding/truncating must be 'post' or 'pre', got {side!r}")
    if maxlen is None:
        maxlen = max((len(s) for s in seqs), default=0)
    ids = np.full((len(seqs), maxlen), value, dtype=np.int64)
    mask = np.zeros((len(seqs), maxlen), dtype=bool)
    for row, seq in enumerate(seqs):
        seq = list(seq)
        seq = seq[:maxlen] if truncating == "post" else seq[max(len(seq) - maxlen, 0):]
        n = len(seq)
        if n == 0:
            continue
        cols = slice(0, n) if padding == "post" else slice(maxlen - n, maxlen)
        ids[row, cols] = seq
        mask[row, cols] = True
    return ids, mask


def batch(seqs: Sequence[Sequence[int]], maxlen: int | None = None, padding: Side = "post",
          truncating: Side = "post") -> tuple[torch.Tensor, torch.Tensor]:
    """``pad`` into torch tensors: (ids int64 (B, L), mask bool (B, L)), for one batch of
    variable-length texts (without ``maxlen``, L is the batch's longest length)."""
    ids, mask = pad(seqs, maxlen, padding, truncating)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def encode_batch(vocab: Vocabulary, texts: Sequence[str], maxlen: int | None = None,
                 padding: Side = "post", truncating: Side = "post"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode and pad a batch of texts: (ids (B, L), mask (B, L))."""
    return batch([vocab.encode(t) for t in texts], maxlen, padding, truncating)


_CODEPOINTS = 0x110000  # a bigram (a, b) -> a * _CODEPOINTS + b: distinct int64 units


def codepoints(text: str) -> np.ndarray:
    """The characters of ``text`` as int64 code points (non-negative: -1 can mark padding)."""
    return np.fromiter(map(ord, text), dtype=np.int64, count=len(text))


def bigrams(text: str) -> np.ndarray:
    """The overlapping character pairs of ``text`` (len - 1 of them) as distinct int64 units."""
    c = codepoints(text)
    return c[:-1] * _CODEPOINTS + c[1:]


def centred_windows(units: np.ndarray, width: int, fill: int = -1) -> np.ndarray:
    """(n,) -> (n, width): row i is the window of ``width`` units in which unit i sits at offset
    ``width // 2`` (width 6: 3 before, 2 after), filled with ``fill`` beyond both ends."""
    if width < 1:
        raise ValueError(f"window width must be >= 1, got {width}")
    before = width // 2
    padded = np.concatenate([np.full(before, fill, np.int64), np.asarray(units, np.int64),
                             np.full(width - 1 - before, fill, np.int64)])
    return sliding_window_view(padded, width)


def edit_distances(rows: np.ndarray, query: Sequence[int] | np.ndarray) -> np.ndarray:
    """The Levenshtein distance (unit costs) of every row of ``rows`` (N, w) to ``query`` (m,).

    The dynamic programme runs over the query, one vectorised row per query unit: D[i, j] (query
    prefix i, row prefix j) = min(D[i-1, j] + 1, D[i-1, j-1] + [q_i != r_j], D[i, j-1] + 1); the
    chain of insertions along j is a running minimum of D[i, k] - k, plus j."""
    rows = np.asarray(rows)
    n, w = rows.shape
    j = np.arange(w + 1)
    d = np.broadcast_to(j, (n, w + 1)).copy()  # D[0, j] = j
    for i, token in enumerate(np.asarray(query), 1):
        step = np.empty_like(d)
        step[:, 0] = i
        step[:, 1:] = np.minimum(d[:, 1:] + 1, d[:, :-1] + (rows != token))
        d = np.minimum.accumulate(step - j, axis=1) + j
    return d[:, w]
