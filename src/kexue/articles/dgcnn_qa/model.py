"""DGCNN: dilated gated convolutions, attention pooling, global x start/end heads; Su's 2019
char-level model (``DGCNN2019``) and his 2018 model (``DGCNN2018``, with a character substitute
for its frozen word vectors).

Sequences are (B, L, D); masks are float (B, L, 1), 1 on real tokens (id > 0), 0 on padding.
The models return logits; the probabilities are sigmoid(head) * sigmoid(global), and the loss
works on their logs (``kexue.nn.losses``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MASK_NEGATIVE = -1e12  # Su's finite "minus infinity": an all-padding row gets a uniform softmax


class GatedDilatedBlock(nn.Module):
    """One conv ('same', with bias) to 2*width channels split into h and g; Y = X*(1-σ(g)) +
    h*σ(g), the highway residual. The input is masked before the conv and the output after the
    block. In training, g gets (inverted) dropout before the sigmoid (2019), or is multiplied by
    1 + ε, ε ~ U[-gate_noise, gate_noise] (the 2018 gate noise)."""

    def __init__(self, width: int, dilation: int = 1, kernel: int = 3, gate_dropout: float = 0.0,
                 gate_noise: float = 0.0):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"kernel must be odd for 'same' padding, got {kernel}")
        self.conv = nn.Conv1d(width, 2 * width, kernel, dilation=dilation,
                              padding=dilation * (kernel - 1) // 2)
        self.gate_dropout = gate_dropout
        self.gate_noise = gate_noise

    def gate(self, g: torch.Tensor) -> torch.Tensor:
        g = F.dropout(g, self.gate_dropout, self.training)
        if self.training and self.gate_noise:
            g = g * (1 + (2 * torch.rand_like(g) - 1) * self.gate_noise)
        return torch.sigmoid(g)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, g = self.conv((x * mask).transpose(1, 2)).transpose(1, 2).chunk(2, dim=-1)
        g = self.gate(g)
        return (x * (1 - g) + h * g) * mask


class GLU(nn.Module):
    """The 2018 width-changing fusion block: Y = Conv1(X) ⊗ σ(Conv2(X)), no residual (one conv to
    2*out channels, kernel 1 by default); masked at input and output, gate noise in training."""

    def __init__(self, in_width: int, out_width: int, kernel: int = 1, gate_noise: float = 0.0):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"kernel must be odd for 'same' padding, got {kernel}")
        self.conv = nn.Conv1d(in_width, 2 * out_width, kernel, padding=(kernel - 1) // 2)
        self.gate_noise = gate_noise

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, g = self.conv((x * mask).transpose(1, 2)).transpose(1, 2).chunk(2, dim=-1)
        if self.training and self.gate_noise:
            g = g * (1 + (2 * torch.rand_like(g) - 1) * self.gate_noise)
        return h * torch.sigmoid(g) * mask


class AttentionPooling(nn.Module):
    """q = Σ_i λ_i x_i, λ = softmax_i(vᵀ act(W x_i)) over unmasked positions (padding gets
    ``MASK_NEGATIVE``); act = tanh, no biases, W square."""

    def __init__(self, width: int):
        super().__init__()
        self.proj = nn.Linear(width, width, bias=False)
        self.score = nn.Linear(width, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.score(torch.tanh(self.proj(x)))  # (B, L, 1)
        logits = logits.masked_fill(mask == 0, MASK_NEGATIVE)
        weights = torch.softmax(logits, dim=1)
        return (weights * x).sum(dim=1)


def tile(q: torch.Tensor, length: int) -> torch.Tensor:
    """(B, D) -> (B, length, D)."""
    return q.unsqueeze(1).expand(-1, length, -1)


class QuestionReader(nn.Module):
    """What both layouts share: one embedding for question and passage, and the question read
    by gated blocks and attention pooling into one vector. Subclasses build ``embedding``,
    ``embedding_dropout``, ``question_blocks`` and ``question_pool`` (in their own order, which
    fixes the initial weights)."""

    def read(self, question: torch.Tensor, passage: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids (B, Lq), (B, Lp) -> (question vector (B, D), embedded passage (B, Lp, D), passage
        mask (B, Lp, 1))."""
        qmask = (question > 0).unsqueeze(-1).float()
        q = self.embedding_dropout(self.embedding(question))
        for block in self.question_blocks:
            q = block(q, qmask)
        q = self.question_pool(q, qmask)
        p = self.embedding_dropout(self.embedding(passage))
        return q, p, (passage > 0).unsqueeze(-1).float()


class DGCNN2019(QuestionReader):
    """Su's 2019 Keras model (char-only: the optional word2vec input is absent offline).

    question: embed -> blocks (1, 2, 1) -> attention pooling -> q;
    passage: concat(embed, tile q) -> Dense(width, no bias) -> blocks (1, 2, 4, 8, 16, 1) ->
    concat tile q -> attention pooling -> Dense(1) = global logit; Dense(1) start/end logits.
    """

    def __init__(self, vocab_size: int, width: int = 128, question_dilations=(1, 2, 1),
                 passage_dilations=(1, 2, 4, 8, 16, 1), kernel: int = 3,
                 embedding_dropout: float = 0.1, gate_dropout: float = 0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, width)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.question_blocks = nn.ModuleList(
            GatedDilatedBlock(width, r, kernel, gate_dropout) for r in question_dilations)
        self.question_pool = AttentionPooling(width)
        self.fuse = nn.Linear(2 * width, width, bias=False)
        self.passage_blocks = nn.ModuleList(
            GatedDilatedBlock(width, r, kernel, gate_dropout) for r in passage_dilations)
        self.passage_pool = AttentionPooling(2 * width)
        self.global_head = nn.Linear(2 * width, 1)
        self.start_head = nn.Linear(2 * width, 1)
        self.end_head = nn.Linear(2 * width, 1)

    def forward(self, question: torch.Tensor, passage: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids (B, Lq), (B, Lp) -> (start logits (B, Lp), end logits (B, Lp), global (B,))."""
        q, p, pmask = self.read(question, passage)
        p = self.fuse(torch.cat([p, tile(q, p.shape[1])], dim=-1))
        for block in self.passage_blocks:
            p = block(p, pmask)
        p = torch.cat([p, tile(q, p.shape[1])], dim=-1)
        global_logit = self.global_head(self.passage_pool(p, pmask)).squeeze(-1)
        return self.start_head(p).squeeze(-1), self.end_head(p).squeeze(-1), global_logit


class SinusoidalPosition(nn.Module):
    """The fixed sinusoidal position vectors of the 2018 model (no parameters): PE[t, 2i] =
    sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(t / 10000^(2i/d))."""

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2:
            raise ValueError(f"position dimension must be even, got {dim}")
        freqs = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2).float() / dim)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, length: int) -> torch.Tensor:
        """(length, dim)."""
        angles = torch.arange(length, device=self.freqs.device).float()[:, None] * self.freqs
        return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)


class SpanHead(nn.Module):
    """The 2018 head: logit_i = αᵀ tanh(W x_i + b) + β."""

    def __init__(self, width: int):
        super().__init__()
        self.hidden = nn.Linear(width, width)
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x))).squeeze(-1)


class DGCNN2018(QuestionReader):
    """Su's 2018 model (spec §3.2) with a **character** embedding in place of his frozen 128-d
    word2vec (not available offline; a labelled deviation).

    question: embed -> gated block (d1) -> attention pooling (tanh, no biases) -> q;
    passage: concat(embed, tile q, sinusoidal position, the 8 hand features) -> GLU (d1, kernel
    1, no residual) -> gated blocks (1, 2, 4) (receptive field 15); start/end: SpanHead; global:
    attention pooling -> Dense(1). Gate noise in training instead of the 2019 gate dropout.
    """

    def __init__(self, vocab_size: int, width: int = 128, n_features: int = 8,
                 question_dilations=(1,), passage_dilations=(1, 2, 4), kernel: int = 3,
                 embedding_dropout: float = 0.1, gate_noise: float = 0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, width)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.question_blocks = nn.ModuleList(
            GatedDilatedBlock(width, r, kernel, gate_noise=gate_noise)
            for r in question_dilations)
        self.question_pool = AttentionPooling(width)
        self.position = SinusoidalPosition(width)
        self.fuse = GLU(3 * width + n_features, width, gate_noise=gate_noise)
        self.passage_blocks = nn.ModuleList(
            GatedDilatedBlock(width, r, kernel, gate_noise=gate_noise)
            for r in passage_dilations)
        self.passage_pool = AttentionPooling(width)
        self.global_head = nn.Linear(width, 1)
        self.start_head = SpanHead(width)
        self.end_head = SpanHead(width)

    def forward(self, question: torch.Tensor, passage: torch.Tensor, features: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids (B, Lq), (B, Lp), features (B, Lp, n_features) -> (start logits (B, Lp), end
        logits (B, Lp), global (B,))."""
        q, p, pmask = self.read(question, passage)
        length = p.shape[1]
        position = self.position(length).unsqueeze(0).expand(p.shape[0], -1, -1)
        p = self.fuse(torch.cat([p, tile(q, length), position, features], dim=-1), pmask)
        for block in self.passage_blocks:
            p = block(p, pmask)
        global_logit = self.global_head(self.passage_pool(p, pmask)).squeeze(-1)
        return self.start_head(p), self.end_head(p), global_logit
