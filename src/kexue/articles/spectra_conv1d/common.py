"""Constants and configs shared by the generator, the loaders, the model and the training."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Index order is the article's; everything that mixes classes is keyed by *name*.
CLASSES = ("star", "unknown", "galaxy", "qso")
N_PIX = 2600
LAMBDA_MIN, LAMBDA_MAX = 3690.0, 9100.0
FLUX_SCALE = 100.0  # the article's only normalisation: flux / 100


def wavelength_grid() -> np.ndarray:
    """The 2600-point grid in Å. [assumption] linear: the competition documents only the
    range. The FITS resampler and the synthetic generator both use this one function."""
    return LAMBDA_MIN + np.arange(N_PIX) * (LAMBDA_MAX - LAMBDA_MIN) / (N_PIX - 1)


def to_input(flux: np.ndarray):
    """Flux (N, 2600) -> network input (N, 1, 2600) float32 tensor: flux / 100, nothing else."""
    import torch

    x = torch.as_tensor(np.asarray(flux, dtype=np.float32) / FLUX_SCALE)
    return x.unsqueeze(1)


@dataclass
class DataConfig:
    n_train_val: int = 0  # spectra kept before the 80/20 split; 0 = all
    n_test: int = 0  # synthetic held-out test spectra kept; 0 = all (Tianchi has no labels)
    val_fraction: float = 0.2
    split_seed: int = 2018  # numpy RandomState(2018).shuffle on the ids in index order
    # UNKNOWN S/N ranges of the synthetic generator (spec §5.3 "Tuning": the only knobs).
    # prepare regenerates the UNKNOWN spectra when they differ from the raw data's.
    unknown_snr_low: list = field(default_factory=lambda: [0.3, 2.0])
    unknown_snr_defect: list = field(default_factory=lambda: [2.0, 10.0])
    # Tianchi layout inside data_dirs.tianchi_spectra
    tianchi_index: str = "first_train_index_20180131.csv"
    tianchi_data: str = "first_train_data_20180131"


@dataclass
class RunConfig:
    task: str = "spectra"  # "spectra" (the article) | "mnist1d" (the external check, E3)
    batch_mix: dict = field(
        default_factory=lambda: {"star": 128, "unknown": 16, "galaxy": 8, "qso": 8})
    steps_per_epoch: int = 500  # a synthetic epoch: batches are drawn with replacement
    epochs1: int = 50  # stage 1: cross-entropy
    epochs2: int = 50  # stage 2: soft macro-F1 fine-tuning from the best stage-1 weights
    lr1: float = 1e-3
    lr2: float = 1e-4
    adam_eps: float = 1e-7  # Keras default (PyTorch's is 1e-8)
    loss_eps: float = 1e-7  # the ε of score_loss
    dropout: float = 0.5  # time-step dropout
    eval_batch: int = 250
    # MNIST-1D adaptation (spec §8): shuffled batches, cross-entropy, Adam 1e-3
    mnist_steps: int = 3000
    mnist_batch: int = 100
    mnist_lr: float = 1e-3
    n_examples: int = 3  # example spectra per class in the report
    seed: int = 0
    checkpoint_every: int = 100
