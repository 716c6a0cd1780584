"""Su's sentence encoder (Embedding -> GRU -> final state -> L2 norm) and the cosine classifier
over paraphrase groups that trains it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from kexue.nn import keras_init
from kexue.text import PAD


class SentenceEncoder(nn.Module):
    """``ids`` (B, L) post-padded -> unit-norm encodings (B, hidden).

    Su's model has no masking: row 0 (padding) is an ordinary trainable embedding and the GRU
    runs over the trailing padding, so the encoding is the state after all L steps. ``masked``
    (a labelled deviation) packs the sequences and stops each at its last real character.
    """

    def __init__(self, n_tokens: int, embedding: int = 128, hidden: int = 128,
                 masked: bool = False):
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, embedding)
        self.gru = nn.GRU(embedding, hidden, batch_first=True)
        self.masked = masked

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)
        if self.masked:
            lengths = (ids != PAD).sum(dim=1).clamp(min=1).cpu()
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, state = self.gru(x)
        return F.normalize(state[0], dim=1)


class CosineClassifier(nn.Module):
    """Logits W·e without bias, W (groups, dim). They are cosines once the rows of W have unit
    norm, which training keeps by projection after each step (not at init)."""

    def __init__(self, dim: int, groups: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(groups, dim))

    def forward(self, encodings: torch.Tensor) -> torch.Tensor:
        return encodings @ self.weight.T


class GroupClassifier(nn.Module):
    """The training model: encoder + classifier, initialised as Keras does."""

    def __init__(self, n_tokens: int, groups: int, embedding: int = 128, hidden: int = 128,
                 masked: bool = False):
        super().__init__()
        self.encoder = SentenceEncoder(n_tokens, embedding, hidden, masked)
        self.classifier = CosineClassifier(hidden, groups)
        keras_init(self)
        # Keras Glorot-uniform over the (dim, groups) kernel: the same limit as over (groups, dim).
        nn.init.xavier_uniform_(self.classifier.weight)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(ids))
