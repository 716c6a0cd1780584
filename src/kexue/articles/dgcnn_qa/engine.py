"""Training and evaluation pieces of the 2019 recipe (spec dgcnn_qa §4.1, §4.3) and of the 2018
variant (§3.2, §4.2).

* ``Corpus``: questions and passages encoded once (char ids), with each passage's own answer;
  for the 2018 variant the texts are converted to half-width first, each question keeps all its
  answer forms (passage answers and expand-file synonyms) and each passage its 8 hand features;
* ``training_batch``: one uniformly chosen passage per question, the training crop, and start/end
  labels on every exact occurrence of that passage's answer in the cropped text (2018: of every
  answer form of the question, matched on the half-width text);
* ``focal_loss``: per head, the focal loss of p = σ(head)·σ(global), averaged over the unmasked
  positions of the batch; (start + end) x loss_scale;
* ``ema``: the zero-debiased weight EMA of Keras 2.2.4 as an ``AveragedModel``;
* ``should_drop``: Su's learning-rate drop rule;
* ``predict`` / ``evaluate``: uncropped passages, decoding and voting, the Sogou score and the
  heads' positive rates (the collapse monitor).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from kexue.articles.dgcnn_qa.config import RunConfig
from kexue.articles.dgcnn_qa.decoding import passage_candidates, vote
from kexue.articles.dgcnn_qa.features import passage_features
from kexue.data.qa import Question, answer_spans
from kexue.errors import UserError
from kexue.metrics.sogou import Reference, SogouScore, score_predictions
from kexue.nn.losses import binary_focal_loss, log_sigmoid_product, masked_mean
from kexue.text import Vocabulary, batch, halfwidth


class HeadsCollapsed(UserError, RuntimeError):
    """Both heads predict (almost) nothing on the validation set: the known all-zero collapse
    (a user error, as a NaN loss: the message says what to change)."""


@dataclass
class Corpus:
    qids: list[str]
    questions: list[str]
    question_ids: list[list[int]]
    passages: list[list[str]]  # as given (decoded answers are cut from these)
    passage_ids: list[list[list[int]]]
    answers: list[list[str]]  # each passage's own answer form
    variant: str = "2019"
    # 2018: every answer form of the question (half-width), and (len, 8) features per passage
    forms: list[tuple[str, ...]] | None = None
    features: list[list[np.ndarray]] | None = None

    @classmethod
    def encode(cls, questions: Sequence[Question], vocab: Vocabulary, variant: str = "2019",
               synonyms: Mapping[str, Sequence[str]] | None = None) -> Corpus:
        text = halfwidth if variant == "2018" else str  # 2018 converts, 2019 takes raw text
        corpus = cls(
            qids=[q.id for q in questions],
            questions=[q.question for q in questions],
            question_ids=[vocab.encode(text(q.question)) for q in questions],
            passages=[[p.text for p in q.passages] for q in questions],
            passage_ids=[[vocab.encode(text(p.text)) for p in q.passages] for q in questions],
            answers=[[p.answer for p in q.passages] for q in questions],
            variant=variant,
        )
        if variant == "2018":
            synonyms = synonyms or {}
            corpus.forms = [
                tuple(sorted({halfwidth(a) for a in [*(p.answer for p in q.passages),
                                                     *synonyms.get(q.id, ())] if a}))
                for q in questions]
            # float16: the features lie in [0, 1]; half the memory on the full corpus
            corpus.features = [[f.astype(np.float16) for f in passage_features(
                halfwidth(q.question), [halfwidth(p.text) for p in q.passages])]
                for q in questions]
        return corpus

    def __len__(self) -> int:
        return len(self.qids)

    def label_forms(self, i: int, k: int) -> tuple[str, ...]:
        """The strings labelled in passage k of question i."""
        return self.forms[i] if self.forms is not None else (self.answers[i][k],)

    def label_text(self, i: int, k: int) -> str:
        """The text the labels are matched on: half-width for the 2018 variant."""
        text = self.passages[i][k]
        return halfwidth(text) if self.variant == "2018" else text


def crop_window(length: int, g: torch.Generator, cfg: RunConfig) -> tuple[int, int]:
    """[start, end) of the training crop of a passage of ``length`` chars."""
    if length > cfg.crop_min and torch.rand((), generator=g).item() < cfg.crop_prob:
        start = int(torch.randint(0, length - cfg.crop_min + 1, (), generator=g))
        high = min(length, start + cfg.crop_max)
        end = int(torch.randint(start + cfg.crop_min, high + 1, (), generator=g))
        return start, end
    return 0, min(length, cfg.crop_max)


def span_labels(text: str, *answers: str) -> tuple[np.ndarray, np.ndarray]:
    """0/1 start and end labels of every exact, non-overlapping occurrence of each answer."""
    start, end = np.zeros(len(text), np.float32), np.zeros(len(text), np.float32)
    for answer in answers:
        for i, j in answer_spans(text, answer):
            start[i], end[j] = 1.0, 1.0
    return start, end


def _pad_rows(rows: Sequence[np.ndarray], width: int) -> torch.Tensor:
    """Stack arrays of shape (n_i, ...) into (B, width, ...), zero-filled after each."""
    return torch.from_numpy(np.stack([
        np.pad(r, [(0, width - len(r))] + [(0, 0)] * (r.ndim - 1)) for r in rows]))


def model_inputs(b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The model's arguments from a batch: (question, passage[, features])."""
    return (b["question"], b["passage"]) + ((b["features"],) if "features" in b else ())


def training_batch(corpus: Corpus, indices: Sequence[int], g: torch.Generator, cfg: RunConfig
                   ) -> dict[str, torch.Tensor]:
    """Questions ``indices`` with one uniformly chosen, cropped passage each."""
    questions, passages, starts, ends, features = [], [], [], [], []
    for i in indices:
        k = int(torch.randint(0, len(corpus.passages[i]), (), generator=g))
        a, b = crop_window(len(corpus.passages[i][k]), g, cfg)
        s, e = span_labels(corpus.label_text(i, k)[a:b], *corpus.label_forms(i, k))
        questions.append(corpus.question_ids[i])
        passages.append(corpus.passage_ids[i][k][a:b])
        starts.append(s)
        ends.append(e)
        if corpus.features is not None:
            features.append(corpus.features[i][k][a:b])
    q, _ = batch(questions)
    p, mask = batch(passages)
    out = {"question": q, "passage": p, "mask": mask, "start": _pad_rows(starts, p.shape[1]),
           "end": _pad_rows(ends, p.shape[1])}
    if corpus.features is not None:
        out["features"] = _pad_rows(features, p.shape[1]).float()
    return out


def focal_loss(outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
               b: dict[str, torch.Tensor], cfg: RunConfig) -> torch.Tensor:
    start, end, global_logit = outputs
    g = global_logit.unsqueeze(1)
    per_head = [
        masked_mean(binary_focal_loss(log_sigmoid_product(head, g), b[key], cfg.focal_alpha,
                                      cfg.focal_gamma), b["mask"])
        for head, key in ((start, "start"), (end, "end"))]
    return (per_head[0] + per_head[1]) * cfg.loss_scale


def ema(model: torch.nn.Module, decay: float) -> AveragedModel:
    """Keras's zero-debiased EMA: shadow_t = d·shadow + (1-d)·θ_t from shadow_0 = 0, used as
    shadow_t / (1 - d^t). As a recursion on the debiased value E_t (E_1 = θ_1, which is the copy
    ``AveragedModel`` makes at its first update):
    E_t = (d·(1 - d^(t-1))·E_(t-1) + (1-d)·θ_t) / (1 - d^t)."""

    def debiased(avg: torch.Tensor, new: torch.Tensor, n: torch.Tensor | int) -> torch.Tensor:
        t = int(n) + 1  # n updates were averaged before this one
        old_weight = decay * (1 - decay ** (t - 1))
        return (old_weight * avg + (1 - decay) * new) / (1 - decay ** t)

    return AveragedModel(model, avg_fn=debiased)


def should_drop(epoch: int, score: float, best_epoch: int, dropped_early: bool,
                cfg: RunConfig) -> bool:
    """Su's rule at the end of epoch ``epoch`` (0-based): always at e + 1 == lr_drop_epoch;
    before that, in the first stage only, from epoch ``early_drop_from`` on when the score is
    below ``early_drop_min_score`` or the best (first maximum) is >= patience epochs old."""
    if epoch + 1 == cfg.lr_drop_epoch:
        return True
    if dropped_early or epoch < cfg.early_drop_from or epoch + 1 > cfg.lr_drop_epoch:
        return False
    return score < cfg.early_drop_min_score or epoch - best_epoch >= cfg.early_drop_patience


@torch.no_grad()
def predict(model: torch.nn.Module, corpus: Corpus, cfg: RunConfig
            ) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """(start, end) probabilities (global score included) per passage of every question, on the
    full, uncropped passages."""
    model.eval()
    device = next(model.parameters()).device
    flat = [(i, k) for i in range(len(corpus)) for k in range(len(corpus.passages[i]))]
    flat.sort(key=lambda ik: len(corpus.passage_ids[ik[0]][ik[1]]))  # less padding
    out: list[list] = [[None] * len(ps) for ps in corpus.passages]
    for lo in range(0, len(flat), cfg.eval_batch_passages):
        chunk = flat[lo:lo + cfg.eval_batch_passages]
        q, _ = batch([corpus.question_ids[i] for i, _ in chunk])
        p, mask = batch([corpus.passage_ids[i][k] for i, k in chunk])
        b = {"question": q, "passage": p}
        if corpus.features is not None:
            b["features"] = _pad_rows([corpus.features[i][k] for i, k in chunk],
                                      p.shape[1]).float()
        start, end, global_logit = model(*(x.to(device) for x in model_inputs(b)))
        gp = torch.sigmoid(global_logit).unsqueeze(1)
        ps, pe = (torch.sigmoid(start) * gp).cpu().numpy(), (torch.sigmoid(end) * gp).cpu().numpy()
        lengths = mask.sum(1).tolist()
        for row, (i, k) in enumerate(chunk):
            out[i][k] = (ps[row, :lengths[row]], pe[row, :lengths[row]])
    return out


@dataclass
class Evaluation:
    score: SogouScore
    answers: dict[str, str]
    start_positive_rate: float
    end_positive_rate: float

    def metrics(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}score": self.score.score, f"{prefix}accuracy": self.score.accuracy,
                f"{prefix}f1": self.score.f1,
                f"{prefix}start_positive_rate": self.start_positive_rate,
                f"{prefix}end_positive_rate": self.end_positive_rate}


def decode_all(corpus: Corpus, probs, cfg: RunConfig, scoring: str | None = None
               ) -> dict[str, str]:
    scoring = scoring or cfg.scoring
    answers = {}
    for i, qid in enumerate(corpus.qids):
        candidates = [passage_candidates(text, s, e, cfg.threshold, cfg.max_span, scoring,
                                         "word2018" if cfg.variant == "2018" else "char")
                      for text, (s, e) in zip(corpus.passages[i], probs[i], strict=True)]
        answers[qid] = vote(candidates)[0]
    return answers


def evaluate(model: torch.nn.Module, corpus: Corpus, ref: Reference, cfg: RunConfig,
             scoring: str | None = None) -> Evaluation:
    probs = predict(model, corpus, cfg)
    answers = decode_all(corpus, probs, cfg, scoring)
    starts = np.concatenate([s for per_q in probs for s, _ in per_q])
    ends = np.concatenate([e for per_q in probs for _, e in per_q])
    return Evaluation(score_predictions(ref, corpus.qids, answers), answers,
                      float((starts > cfg.threshold).mean()), float((ends > cfg.threshold).mean()))


def check_collapse(epoch: int, result: Evaluation, cfg: RunConfig) -> None:
    if epoch < cfg.collapse_check_from:
        return
    if max(result.start_positive_rate, result.end_positive_rate) < cfg.collapse_rate:
        raise HeadsCollapsed(
            f"epoch {epoch + 1}: both heads collapsed to (almost) all zeros on the validation set "
            f"(positive rates {result.start_positive_rate:.2e} / {result.end_positive_rate:.2e} "
            f"< {cfg.collapse_rate}); the run is stopped: lower the lr or check the labels")
