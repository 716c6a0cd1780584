"""Configs of the DGCNN QA article; the defaults are Su's 2019 settings (the `full` profile)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DataConfig:
    # kbqa: the synthetic KB-QA (default); sogou_webqa: SogouQA + WebQA in Su's JSON (full);
    # webqa_ann: E6, train on WebQA test_ann, validate on validation_ann (mirror)
    corpus: Literal["kbqa", "sogou_webqa", "webqa_ann"] = "sogou_webqa"
    # Su keeps characters seen >= 16 times over all questions and passages of WebQA + Sogou
    min_count: int = 16
    # Su's 2019 split: shuffle Sogou, validate on positions i % 3 == 0; his seed is unknown
    split_seed: int = 2019
    # Sogou training questions are listed twice per epoch (the code; its "2:1" comment is wrong)
    sogou_copies: int = 2
    # 0 = all; smoke/default profiles take a prefix of the (synthetic) questions
    max_train_questions: int = 0
    max_valid_questions: int = 0


@dataclass
class ModelConfig:
    variant: Literal["2019", "2018"] = "2019"
    width: int = 128  # char embedding and conv width
    kernel: int = 3
    question_dilations: tuple[int, ...] = (1, 2, 1)
    passage_dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1)  # receptive field 65 chars
    embedding_dropout: float = 0.1
    gate_dropout: float = 0.1  # 2019: dropout on the gate pre-activation
    gate_noise: float = 0.1  # 2018: g * (1 + U[-0.1, 0.1])
    max_len: int = 100  # 2018: passages cut to 100 tokens (position vectors)


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 120  # Su: 120 epochs, no early stopping, best (EMA) weights kept
    batch_size: int = 128
    lr: float = 1e-3  # RAdam
    lr_low: float = 1e-4  # after the drop
    adam_eps: float = 1e-7  # Keras K.epsilon()
    ema_decay: float = 0.9999  # zero-debiased, as Keras 2.2.4's moving_average_update
    focal_alpha: float = 0.25  # weights the positive term, as in Su's code
    focal_gamma: float = 2.0
    loss_scale: float = 100.0  # (start + end) x 100: it sets the effective lr
    # the lr drop: at e + 1 == lr_drop_epoch, or early (first stage only) from epoch index
    # early_drop_from if the score is < early_drop_min_score or the best is
    # >= early_drop_patience epochs old
    lr_drop_epoch: int = 30
    early_drop_from: int = 16
    early_drop_min_score: float = 0.5
    early_drop_patience: int = 5
    # training crop: passages > crop_min chars get, with prob. crop_prob, a random window of
    # crop_min..crop_max chars; otherwise their first crop_max chars (questions are never cut)
    crop_min: int = 128
    crop_max: int = 256
    crop_prob: float = 0.5
    # decoding: probabilities > threshold, spans of at most max_span chars, product score
    threshold: float = 0.1
    max_span: int = 12
    scoring: Literal["product", "sqrt"] = "product"
    # stop if both heads fall silent on validation (the all-zero collapse of a PyTorch port):
    # from this epoch index on, a positive rate (share of positions > threshold) below
    # collapse_rate for both heads is an error
    collapse_check_from: int = 3
    collapse_rate: float = 1e-4
    eval_batch_passages: int = 256  # passages per forward pass at evaluation (any value works)
    seed: int = 0

    def check(self) -> None:
        from kexue.errors import ConfigError

        if self.crop_min > self.crop_max:
            raise ConfigError(f"crop_min ({self.crop_min}) must be <= crop_max ({self.crop_max})")
        if self.model.variant == "2018" and self.crop_max > self.model.max_len:
            raise ConfigError(f"model.variant 2018: crop_max ({self.crop_max}) must be <= "
                              f"model.max_len ({self.model.max_len})")
