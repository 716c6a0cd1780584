"""Configs of the DGCNN QA article; the defaults are Su's 2019 settings (the `full` profile)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kexue.config import NonNegative, Positive, Probability
from kexue.errors import ConfigError


@dataclass
class DataConfig:
    # () = the source's datasets: kbqa (embedded, SYNTHETIC) or sogouqa + webqa (official);
    # [webqa-sample] = E6 on the WebQA annotated sets; [sogouqa, webqa_v1] = WebQA from its zip
    datasets: tuple[str, ...] = ()
    # Su keeps characters seen >= 16 times over all questions and passages of WebQA + Sogou
    min_count: Positive[int] = 16
    # Su's 2019 split: shuffle Sogou, validate on positions i % 3 == 0; his seed is unknown
    split_seed: NonNegative[int] = 2019
    # Sogou training questions are listed twice per epoch (the code; its "2:1" comment is wrong)
    sogou_copies: Positive[int] = 2
    # 0 = all; smoke/default profiles take a prefix of the (synthetic) questions
    max_train_questions: NonNegative[int] = 0
    max_valid_questions: NonNegative[int] = 0


@dataclass
class ModelConfig:
    """Both layouts (``RunConfig.variant`` picks one); characters only: the 2019 optional frozen
    word2vec input and the 2018 frozen word vectors are not available offline (a labelled
    deviation; the 2018 model gets a trainable character embedding instead)."""

    width: Positive[int] = 128  # char embedding and conv width (both variants)
    kernel: Positive[int] = 3
    embedding_dropout: Probability[float] = 0.1
    # 2019 (spec §3.1)
    question_dilations: tuple[int, ...] = (1, 2, 1)
    passage_dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1)  # receptive field 65 chars
    gate_dropout: Probability[float] = 0.1  # dropout on the gate pre-activation
    # 2018 (spec §3.2): one question block; after the width-changing fusion GLU (d1, w1), blocks
    # d1, d2, d4 (receptive field 15); the gate pre-activation is multiplied by 1 + U[-0.1, 0.1]
    question_dilations_2018: tuple[int, ...] = (1,)
    passage_dilations_2018: tuple[int, ...] = (1, 2, 4)
    gate_noise: Probability[float] = 0.1


@dataclass
class RunConfig:
    # "2019": Su's Keras code (spec §3.1, §4.1); "2018": the article's model (E2, §3.2): half-
    # width text, the 8 hand features (characters and bigrams for his words), position vectors,
    # 1 + 4 blocks, MLP heads, labels on every answer synonym of the expand file, spans of at
    # most max_span "words" (a letter or digit counts 1/2)
    variant: Literal["2019", "2018"] = "2019"
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: Positive[int] = 120  # Su: 120 epochs, no early stopping, best (EMA) weights kept
    batch_size: Positive[int] = 128
    optimizer: Literal["radam", "adam"] = "radam"  # 2019: RAdam; 2018: Adam
    lr: Positive[float] = 1e-3
    lr_low: Positive[float] = 1e-4  # after the drop
    adam_eps: Positive[float] = 1e-7  # Keras K.epsilon()
    # zero-debiased, as Keras 2.2.4's moving_average_update; its horizon is ~10k steps, so
    # short CPU runs use 0.999 (a labelled deviation); 0 = the raw weights (2018: no EMA)
    ema_decay: Probability[float] = 0.9999
    focal_alpha: Probability[float] = 0.25  # weights the positive term, as in Su's code
    focal_gamma: NonNegative[float] = 2.0
    loss_scale: Positive[float] = 100.0  # (start + end) x 100: it sets the effective lr
    # the lr drop: at e + 1 == lr_drop_epoch, or early (first stage only) from epoch index
    # early_drop_from if the score is < early_drop_min_score or the best is
    # >= early_drop_patience epochs old
    lr_drop_epoch: Positive[int] = 30
    early_drop_from: NonNegative[int] = 16
    early_drop_min_score: Probability[float] = 0.5
    early_drop_patience: Positive[int] = 5
    # training crop: passages > crop_min chars get, with prob. crop_prob, a random window of
    # crop_min..crop_max chars; otherwise their first crop_max chars (questions are never cut)
    crop_min: Positive[int] = 128
    crop_max: Positive[int] = 256
    crop_prob: Probability[float] = 0.5
    # decoding: probabilities > threshold, spans of at most max_span chars (2018: "words"),
    # product score
    threshold: Probability[float] = 0.1
    max_span: Positive[int] = 12
    scoring: Literal["product", "sqrt"] = "product"
    # stop if both heads fall silent on validation (the all-zero collapse of a PyTorch port):
    # from this epoch index on, a positive rate (share of positions > threshold) below
    # collapse_rate for both heads is an error
    collapse_check_from: NonNegative[int] = 3
    collapse_rate: Probability[float] = 1e-4
    eval_batch_passages: Positive[int] = 256  # passages per forward pass at evaluation
    checkpoint_every: Positive[int] = 200
    threads: NonNegative[int] = 0  # 0 = the workflow's setting
    seed: NonNegative[int] = 0

    def check(self) -> None:
        if self.crop_min > self.crop_max:
            raise ConfigError(f"crop_min ({self.crop_min}) must be <= crop_max ({self.crop_max})")
