"""Feature FID/KID and a collapse detector on a feature network the project trains itself.

Inception weights cannot be downloaded offline, so the features come from a small CNN trained
by the project (the DAG's ``features`` stage, fixed seed and steps) on the training split of
the image dataset being generated: a classifier where the dataset has labels, else an
autoencoder. Its penultimate layer feeds torchmetrics' ``FrechetInceptionDistance`` and
``KernelInceptionDistance`` as a custom ``feature=`` module. The numbers carry the labels
below and are never comparable with published Inception FIDs.

Images enter every function as float NCHW in [−1, 1] (a GAN's tanh range); ``to_signed``
converts a dataset's uint8 levels. A run finds its dataset's network with ``feature_dir`` and
loads it with ``load_shared_feature_net``, which checks that it was trained on the images the
run scores.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kexue import config, paths
from kexue.errors import DataError
from kexue.io import load_torch, save_torch, write_json
from kexue.rng import epoch_permutation

FID_LABEL = "feature FID (self-trained classifier)"
KID_LABEL = "feature KID (self-trained classifier)"
# datasets without labels (CelebA): the bottleneck of an autoencoder, as the vi_gan spec says
AE_FID_LABEL = "feature FID (self-trained autoencoder)"
AE_KID_LABEL = "feature KID (self-trained autoencoder)"


def to_signed(images: Tensor, n_levels: int) -> Tensor:
    """uint8 images with values 0 … n_levels−1 → float32 in [−1, 1]."""
    return images.float() * (2.0 / (n_levels - 1)) - 1.0


@dataclass(frozen=True)
class FeatureNetConfig:
    channels: int
    n_classes: int  # 0: no labels, the net is trained as an autoencoder
    image_size: int = 0  # inputs are resized to this (0: used as they come)
    width: int = 128  # the feature dimension (penultimate layer)


@dataclass(frozen=True)
class FeatureTraining:
    """How the feature network is trained: part of the metric's definition, the same for every
    article (only the profile changes it, so that smoke runs stay seconds long)."""

    steps: int
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0


TRAINING = {"smoke": FeatureTraining(steps=30), "default": FeatureTraining(steps=500),
            "full": FeatureTraining(steps=3000)}


class FeatureNet(nn.Module):
    """A small CNN; ``features`` is its penultimate layer. With labels it is a classifier; without
    (n_classes 0) a linear decoder reconstructs the input, so the features are an autoencoder's
    bottleneck. Inputs of another size are resized (area) to ``image_size`` first, so samples of
    a larger generator are scored by the same network."""

    def __init__(self, cfg: FeatureNetConfig):
        super().__init__()
        self.cfg = cfg
        self.num_features = cfg.width  # torchmetrics reads the feature size from this
        self.body = nn.Sequential(
            nn.Conv2d(cfg.channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(64 * 4, cfg.width), nn.ReLU(),
        )
        outputs = cfg.n_classes or cfg.channels * cfg.image_size**2
        self.head = nn.Linear(cfg.width, outputs)

    def resize(self, x: Tensor) -> Tensor:
        size = self.cfg.image_size
        if size and x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="area")
        return x

    def features(self, x: Tensor) -> Tensor:
        return self.body(self.resize(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def loss(self, x: Tensor, labels: Tensor | None) -> Tensor:
        if self.cfg.n_classes:
            return F.cross_entropy(self(x), labels)
        return F.mse_loss(torch.tanh(self(x)), self.resize(x).flatten(1))


class _Penultimate(nn.Module):
    """The ``feature=`` module handed to torchmetrics: frozen, eval-mode features in float64
    (KID of two close distributions is a difference of kernel sums that float32 would drown)."""

    def __init__(self, net: FeatureNet):
        super().__init__()
        self.net = net.eval()
        self.num_features = net.num_features

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return self.net.features(x.float()).double()


def train_feature_net(images: Tensor, labels: Tensor | None, n_classes: int,
                      training: FeatureTraining) -> FeatureNet:
    """Train on a training split (images float in [−1, 1]) for a fixed number of steps: no
    model selection, so nothing beyond the training split is used. ``labels`` None (and
    n_classes 0) trains the autoencoder."""
    torch.manual_seed(training.seed)  # the initial weights; the data order: epoch_permutation
    net = FeatureNet(FeatureNetConfig(images.shape[1], n_classes, images.shape[-1]))
    opt = torch.optim.Adam(net.parameters(), lr=training.lr)
    per_epoch = max(1, len(images) // training.batch_size)
    net.train()
    for step in range(training.steps):
        epoch, k = divmod(step, per_epoch)
        rows = epoch_permutation(len(images), training.seed, epoch)[
            k * training.batch_size:(k + 1) * training.batch_size]
        loss = net.loss(images[rows], None if labels is None else labels[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def build_feature_net(out: Path, train: Tensor, train_labels: Tensor | None, test: Tensor,
                      test_labels: Tensor | None, n_levels: int, training: FeatureTraining,
                      info: dict) -> dict:
    """The DAG's ``features`` stage for one dataset: train on the training split (uint8 NCHW),
    check on the test split (accuracy or reconstruction error: a sanity check, not a
    selection), write ``out/model.pt`` and ``out/info.json``; returns the info."""
    x_train, x_test = to_signed(train, n_levels), to_signed(test, n_levels)
    n_classes = int(train_labels.max()) + 1 if train_labels is not None else 0
    net = train_feature_net(x_train, train_labels, n_classes, training)
    info = {**info, "n_classes": n_classes, "n_train": len(train), **asdict(training),
            "kind": "classifier" if n_classes else "autoencoder",
            "fid_label": FID_LABEL if n_classes else AE_FID_LABEL,
            "kid_label": KID_LABEL if n_classes else AE_KID_LABEL}
    if n_classes:
        info["test_accuracy"] = accuracy(net, x_test, test_labels)
    else:
        info["test_reconstruction_mse"] = reconstruction_mse(net, x_test)
    save_feature_net(out / "model.pt", net, info)
    write_json(out / "info.json", info)
    return info


@torch.no_grad()
def accuracy(net: FeatureNet, images: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    net.eval()
    predicted = torch.cat([net(x).argmax(1) for x in images.split(batch_size)])
    return float((predicted == labels).double().mean())


@torch.no_grad()
def reconstruction_mse(net: FeatureNet, images: Tensor, batch_size: int = 500) -> float:
    net.eval()
    total = sum(float(F.mse_loss(torch.tanh(net(x)), net.resize(x).flatten(1), reduction="sum"))
                for x in images.split(batch_size))
    return total / (len(images) * net.head.out_features)


@torch.no_grad()
def predict(net: FeatureNet, images: Tensor, batch_size: int = 500) -> Tensor:
    net.eval()
    return torch.cat([net(x).argmax(1) for x in images.split(batch_size)])


def save_feature_net(path: str | Path, net: FeatureNet, info: dict) -> None:
    """Weights, architecture and ``info`` (dataset, accuracy, ...) in one weights-only file."""
    save_torch(path, {"config": asdict(net.cfg), "state": net.state_dict(), "info": info})


def load_feature_net(path: str | Path) -> tuple[FeatureNet, dict]:
    blob = load_torch(path)
    net = FeatureNet(FeatureNetConfig(**blob["config"]))
    net.load_state_dict(blob["state"])
    return net.eval(), blob["info"]


class RunVariant(Protocol):
    """What the functions below read of a ``kexue.training.RunContext``."""

    profile: str
    source: str


def feature_dir(ctx: RunVariant, dataset: str) -> Path:
    """The output of the DAG's ``features`` job of ``dataset`` in the run's variant."""
    where = config.variant({"profile": ctx.profile, "data_source": ctx.source})
    return paths.path(paths.FEATURES, variant=where, dataset=dataset)


def load_shared_feature_net(ctx: RunVariant, dataset: str, data_label: str,
                            test_split: str) -> tuple[FeatureNet, dict]:
    """The ``features`` job's network of ``dataset`` and its info, for a run that scores the
    images its prepare stage describes as ``data_label`` split by ``test_split``. DataError
    when the job has not run, or when it trained on other images (size, crop or split): a
    network left from other settings."""
    path = feature_dir(ctx, dataset) / "model.pt"
    rebuild = f"`python -m kexue features {dataset}` (or snakemake)"
    if not path.is_file():
        raise DataError(f"{path} does not exist: run {rebuild} first")
    net, info = load_feature_net(path)
    trained_on = (info.get("data_label"), info.get("test_split"))
    if trained_on != (data_label, test_split):
        raise DataError(f"{path} was trained on {trained_on[0]!r} (test split: {trained_on[1]}), "
                        f"but this run scores {data_label!r} (test split: {test_split}): rerun "
                        f"{rebuild}, with the same data.images in every article that reads "
                        f"{dataset}")
    return net, info


@torch.no_grad()
def embed(net: FeatureNet, images: Tensor, batch_size: int = 500) -> Tensor:
    net.eval()
    return torch.cat([net.features(x.float()) for x in images.split(batch_size)])


def feature_fid(net: FeatureNet, real: Tensor, fake: Tensor, batch_size: int = 500) -> float:
    """Fréchet distance between the feature Gaussians of ``real`` and ``fake`` (torchmetrics,
    accumulated in float64)."""
    # imported here: torchmetrics (with scipy) takes 2 s to import, and most jobs that import
    # this module (toy GANs, training without image metrics) never compute a distance
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Penultimate(net), reset_real_features=False)
    for x in real.split(batch_size):
        metric.update(x, real=True)
    for x in fake.split(batch_size):
        metric.update(x, real=False)
    return float(metric.compute())


def feature_kid(net: FeatureNet, real: Tensor, fake: Tensor, seed: int, subsets: int = 10,
                subset_size: int = 1000, batch_size: int = 500) -> tuple[float, float]:
    """Unbiased MMD² with the kernel (xᵀy/d + 1)³, mean and sd over ``subsets`` random subsets
    of ``min(subset_size, len(real), len(fake))``. torchmetrics draws the subsets from the
    global RNG, so the draws are made under a forked, seeded RNG: the result is a pure
    function of ``seed``."""
    from torchmetrics.image.kid import KernelInceptionDistance  # as in feature_fid

    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # "saves all features in a buffer": a few thousand here
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Penultimate(net), subsets=subsets,
                                         subset_size=size)
    for x in real.split(batch_size):
        metric.update(x, real=True)
    for x in fake.split(batch_size):
        metric.update(x, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, sd = metric.compute()
    return float(mean), float(sd)


@dataclass(frozen=True)
class Diversity:
    ratio: float  # mean pairwise feature distance of samples / that of real images
    near_duplicates: float  # share of samples with another sample closer than the threshold


def diversity(sample_features: Tensor, real_features: Tensor,
              duplicate_quantile: float = 0.01) -> Diversity:
    """The collapse detector: a collapsing generator has a low diversity ratio and many
    near-duplicates. The threshold is the ``duplicate_quantile`` of real–real nearest-neighbour
    distances."""
    real, fake = real_features.double(), sample_features.double()
    ratio = float(F.pdist(fake).mean() / F.pdist(real).mean())
    threshold = torch.quantile(_nearest_neighbour_distances(real), duplicate_quantile)
    duplicates = float((_nearest_neighbour_distances(fake) < threshold).double().mean())
    return Diversity(ratio, duplicates)


def _nearest_neighbour_distances(x: Tensor) -> Tensor:
    d = torch.cdist(x, x)
    d.fill_diagonal_(math.inf)
    return d.min(dim=1).values
