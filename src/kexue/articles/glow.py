"""RealNVP and Glow (kexue.fm/archives/5807; Kingma & Dhariwal, arXiv 1807.03039).

One multi-scale model, three knobs (spec ../shared/specs/glow.md):

* ``su``: Su's article-time Keras model. Zero-init actnorm, a fixed random channel shuffle,
  additive coupling, conditional split prior, learned top; Adam 1e-4, batch 32 x 1000 steps an
  "epoch", and his collapse guard (after epoch 10 a positive epoch loss reloads the best weights
  and drops the lr to 1e-5).
* ``original``: the Glow paper / openai/glow. Data-dependent actnorm, LU 1x1 conv, affine
  coupling with scale sigmoid(h + 2), Adamax 1e-3 with linear warm-up.
* ``ablation-<permutation>-<coupling>``: {reverse, shuffle, invconv} x {additive, affine} on
  top of the ``original`` recipe at reduced depth (Glow paper, figure 3; Su's remark 1).

Data are 8-bit (or 17-level for sklearn digits) images x = (k + u) / n_levels - 0.5 with
u ~ U[0, 1): Su's x/256 - 0.5 + U[0, 1/256) scale. The loss is the NLL of that continuous
density in nats per image; bits/dim = NLL / (D ln 2) + log2(n_levels) is then an exact upper
bound on the discrete NLL.
"""

from __future__ import annotations

import io
import math
import re
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kexue.comparison import Comparison
from kexue.data.fetch import dataset_files
from kexue.io import load_torch, read_json, save_torch, write_json
from kexue.nn import parameter_count
from kexue.nn.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    ConditionalSplit,
    FlowSequential,
    InvConvLU,
    Reverse,
    Shuffle,
    Squeeze,
    bits_per_dim,
    coupling_net,
    data_dependent_init,
    gaussian_log_prob,
)
from kexue.training import (
    Checkpointer,
    RunContext,
    TrackedState,
    epoch_permutation,
    fingerprint,
    fit,
    read_history,
    step_generator,
    write_history,
)


@dataclass
class DataConfig:
    embedded: str = "image_patches"  # "image_patches" (default) | "digits" (smoke)
    official: tuple[str, ...] = ("cifar10", "celeba")  # the first is every run's default
    image_size: int = 32  # CelebA: centre crop rows 20..198 (178x178), then resized to this
    patch_size: int = 16  # embedded patches (spec §5.3)
    patch_train_stride: int = 4
    patch_test_stride: int = 8
    patch_test_col: int = 480  # train columns [0, 480), test columns [480, 640)
    digits_test_size: int = 360
    split_seed: int = 2018
    cifar_subset_test_from: int = 3500  # mirror file (4,000 train records): hold out 3500-3999
    celeba_subset_test_from: int = 9001  # no test ids in a partial CelebA: hold out >= 009001
    max_train: int = 0  # 0 = all (smoke runs use fewer)
    max_test: int = 0


@dataclass
class RunConfig:
    recipe: str = "su"  # label for reports: "su" | "original" | "ablation"
    dataset: str = ""  # "" = the first prepared dataset; "celeba" for Su's E1 on real data
    levels: int = 3  # L
    depth: int = 6  # K steps of flow per level
    width: int = 512  # hidden channels of the coupling nets
    coupling: str = "additive"  # "additive" | "affine"
    permutation: str = "shuffle"  # "reverse" | "shuffle" | "invconv"
    actnorm: str = "zero"  # "zero" (Su) | "data" (Glow)
    actnorm_init_images: int = 256  # openai/glow n_batch_init
    optimiser: str = "adam"  # "adam" | "adamax"
    lr: float = 1e-4
    warmup_steps: int = 0  # linear lr warm-up
    grad_clip: float = 0.0  # max grad norm; 0 = off
    batch_size: int = 32
    steps_per_epoch: int = 1000  # Su's "epoch": 32 x 1000 = 32,000 random images
    epochs: int = 150
    collapse_guard: bool = True
    collapse_after: int = 10  # the guard acts from epoch collapse_after + 1 on
    collapse_lr: float = 1e-5
    eval_images: int = 0  # test images for the per-epoch curve; 0 = all (final metric: all)
    temperatures: tuple[float, ...] = (0.7, 0.8, 1.0)
    n_samples: int = 64
    seed: int = 0
    checkpoint_every: int = 500
    # intra-op threads; 0 = what the workflow gives (ctx.threads). Tiny models are faster on 1:
    # on a busy 2-core machine two OpenMP threads made a smoke run 10-50x slower.
    threads: int = 0


# ---------------------------------------------------------------- model


def _permutation(cfg: RunConfig, channels: int, seed: int) -> nn.Module:
    if cfg.permutation == "reverse":
        return Reverse()
    if cfg.permutation == "shuffle":
        return Shuffle(channels, seed)
    if cfg.permutation == "invconv":
        return InvConvLU(channels, seed)
    raise ValueError(f"unknown permutation {cfg.permutation!r} (reverse | shuffle | invconv)")


def _coupling(cfg: RunConfig, channels: int) -> nn.Module:
    half = channels // 2
    if cfg.coupling == "additive":
        return AdditiveCoupling(coupling_net(half, half, cfg.width))
    if cfg.coupling == "affine":
        return AffineCoupling(coupling_net(half, 2 * half, cfg.width))
    raise ValueError(f"unknown coupling {cfg.coupling!r} (additive | affine)")


class Glow(nn.Module):
    """L levels of [squeeze, K x (actnorm, permutation, coupling), split]; the last level ends
    with a zero-init actnorm instead of a split: a learned per-channel mean/scale of the top
    prior (openai's ``learntop``). All z's are standard normal."""

    def __init__(self, shape: tuple[int, int, int], cfg: RunConfig):
        super().__init__()
        c, h, w = shape
        if h % 2**cfg.levels or w % 2**cfg.levels:
            raise ValueError(f"{h}x{w} images cannot be squeezed {cfg.levels} times")
        self.levels = nn.ModuleList()
        self.z_shapes: list[tuple[int, int, int]] = []
        seed = cfg.seed * 1000
        for level in range(cfg.levels):
            c, h, w = 4 * c, h // 2, w // 2
            layers: list[nn.Module] = [Squeeze()]
            for _ in range(cfg.depth):
                seed += 1  # every permutation gets its own fixed draw
                layers += [ActNorm(c, cfg.actnorm), _permutation(cfg, c, seed), _coupling(cfg, c)]
            last = level == cfg.levels - 1
            layers.append(ActNorm(c, "zero") if last else ConditionalSplit(c))
            self.levels.append(FlowSequential(*layers))
            if not last:
                c //= 2
                self.z_shapes.append((c, h, w))
        self.z_shapes.append((c, h, w))
        self.dims = int(np.prod(shape))

    def forward(self, x):
        """x -> (list of z per level, logdet)."""
        zs, logdet = [], x.new_zeros(x.shape[0])
        for i, level in enumerate(self.levels):
            x, ld = level(x)
            logdet = logdet + ld
            if i < len(self.levels) - 1:
                x, z = x.chunk(2, dim=1)
                zs.append(z)
        zs.append(x)
        return zs, logdet

    def reverse(self, zs):
        x = zs[-1]
        for i in reversed(range(len(self.levels))):
            if i < len(self.levels) - 1:
                x = torch.cat([x, zs[i]], dim=1)
            x = self.levels[i].reverse(x)
        return x

    def log_prob(self, x):
        """log density of x in nats per image (a sum over all dims)."""
        zs, logdet = self(x)
        return sum(gaussian_log_prob(z) for z in zs) + logdet

    @torch.no_grad()
    def sample(self, n: int, temperature: float, generator: torch.Generator):
        """z ~ N(0, T^2 I) at every level, through the inverse (the conditional priors and the
        learned top rescale it, so every level's prior is tempered as in openai/glow)."""
        device = next(self.parameters()).device
        zs = [torch.randn(n, *s, generator=generator).to(device) * temperature
              for s in self.z_shapes]
        return self.reverse(zs)


def build_model(cfg: RunConfig, shape) -> Glow:
    torch.manual_seed(cfg.seed)
    return Glow(tuple(shape), cfg)


# ---------------------------------------------------------------- data: readers

CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte, then 1024 R, 1024 G, 1024 B bytes
CIFAR_TAR = "cifar-10-binary.tar.gz"
CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST = "test_batch.bin"
CIFAR_SUBSET = "data_batch_1_first4000.bin"


def read_cifar_records(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 binary records -> (images uint8 (N, 3, 32, 32), labels uint8 (N,)).

    The binary version needs no unpickling: it is read as raw bytes, checked for shape."""
    if not data or len(data) % CIFAR_RECORD:
        raise ValueError(f"{name}: {len(data)} bytes is not a whole number of "
                         f"{CIFAR_RECORD}-byte CIFAR-10 records")
    records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        raise ValueError(f"{name}: label {labels.max()} > 9: not CIFAR-10 binary records")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _cifar_batches(folder: Path) -> tuple[dict[str, bytes], str]:
    """The CIFAR-10 binary batches in any of the layouts we accept, and which one it was."""
    tar = folder / CIFAR_TAR
    if tar.is_file():
        out = {}
        with tarfile.open(tar, "r:gz") as tf:  # read members in memory; nothing is extracted
            for name in (*CIFAR_TRAIN, CIFAR_TEST):
                try:
                    out[name] = tf.extractfile(f"{CIFAR_DIR}/{name}").read()
                except KeyError:
                    raise ValueError(f"{tar}: no member {CIFAR_DIR}/{name}") from None
        return out, f"official {CIFAR_TAR}"
    for d in (folder / CIFAR_DIR, folder):
        if all((d / n).is_file() for n in (*CIFAR_TRAIN, CIFAR_TEST)):
            return {n: (d / n).read_bytes() for n in (*CIFAR_TRAIN, CIFAR_TEST)}, f"folder {d}"
    if (folder / CIFAR_SUBSET).is_file():
        return {CIFAR_SUBSET: (folder / CIFAR_SUBSET).read_bytes()}, "subset"
    if (folder / "cifar-10-python.tar.gz").exists() or (folder / "data_batch_1").exists():
        raise ValueError(f"{folder}: only the python (pickle) version of CIFAR-10 is there; it is "
                         f"never unpickled here. Provide the binary version ({CIFAR_TAR}).")
    raise FileNotFoundError(f"{folder}: no CIFAR-10 binary data ({CIFAR_TAR}, {CIFAR_DIR}/ with "
                            f"data_batch_1..5.bin + test_batch.bin, or {CIFAR_SUBSET})")


def read_cifar10(folder: Path, cfg: DataConfig):
    batches, layout = _cifar_batches(folder)
    if layout == "subset":
        x, _ = read_cifar_records(batches[CIFAR_SUBSET], CIFAR_SUBSET)
        k = cfg.cifar_subset_test_from
        split = (f"mirror subset {CIFAR_SUBSET} (training records 0-{len(x) - 1}): records "
                 f"0-{k - 1} train, {k}-{len(x) - 1} held out as test (not the official test set)")
        return x[:k], x[k:], {
            "data_label": f"CIFAR-10 mirror subset ({k:,} train / {len(x) - k:,} held-out "
                          f"training images; not the official test set)",
            "test_split": split, "full_dataset": False}
    train = [read_cifar_records(batches[n], n)[0] for n in CIFAR_TRAIN]
    test = read_cifar_records(batches[CIFAR_TEST], CIFAR_TEST)[0]
    for name, x in zip((*CIFAR_TRAIN, CIFAR_TEST), (*train, test), strict=True):
        if len(x) != 10_000:
            raise ValueError(f"{name}: {len(x)} records, expected 10,000")
    return np.concatenate(train), test, {
        "data_label": "CIFAR-10 (official binary version; 50,000 train / 10,000 test)",
        "test_split": f"official test_batch.bin ({layout})", "full_dataset": True}


_CELEBA_ID = re.compile(r"(?:^|/)(\d{6})\.jpg$")


def _celeba_files(folder: Path):
    """(image id, JPEG bytes) in id order, from the official zip, a folder of JPEGs, or the
    mirror's half-size tar; and a description of the layout."""
    zip_path = folder / "img_align_celeba.zip"
    tars = sorted(folder.glob("celeba_align_*.tar.gz"))
    if zip_path.is_file():
        with zipfile.ZipFile(zip_path) as zf:
            names = sorted((int(m.group(1)), n) for n in zf.namelist()
                           if (m := _CELEBA_ID.search(n)))
            for i, n in names:
                yield i, zf.read(n)
        return
    if tars:
        with tarfile.open(tars[0], "r:gz") as tf:
            members = sorted((int(m.group(1)), mem) for mem in tf.getmembers()
                             if mem.isfile() and (m := _CELEBA_ID.search(mem.name)))
            for i, mem in members:
                yield i, tf.extractfile(mem).read()
        return
    for d in (folder / "img_align_celeba", folder / "celebA", folder):
        files = sorted((int(m.group(1)), p) for p in d.glob("*.jpg")
                       if (m := _CELEBA_ID.search(p.name))) if d.is_dir() else []
        if files:
            for i, p in files:
                yield i, p.read_bytes()
            return
    raise FileNotFoundError(f"{folder}: no CelebA images (img_align_celeba.zip, "
                            f"img_align_celeba/*.jpg, or the mirror's celeba_align_*.tar.gz)")


def celeba_crop_resize(jpeg: bytes, size: int, name: str = "") -> np.ndarray:
    """Su's pipeline: centre crop rows 20..198 of a 178x218 aligned face (rows 10..99 of the
    mirror's 89x109 half-size copy), then PIL bilinear resize (scipy.misc.imresize's default)
    -> uint8 (3, size, size)."""
    from PIL import Image

    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    w, h = img.size
    if h * 178 != w * 218:
        raise ValueError(f"CelebA image {name}: {w}x{h} is not an aligned 178x218 face "
                         f"(or a scaled copy)")
    top = round(20 * w / 178)
    img = img.crop((0, top, w, top + w)).resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def read_celeba_images(folder: Path, size: int, threads: int = 8):
    """(ids int (N,), images uint8 (N, 3, size, size), source width in pixels)."""
    ids, images, widths = [], [], set()

    def work(item):
        i, data = item
        return celeba_crop_resize(data, size, f"{i:06d}")

    def chunks(it, n=2048):
        buf = []
        for item in it:
            buf.append(item)
            if len(buf) == n:
                yield buf
                buf = []
        if buf:
            yield buf

    with ThreadPoolExecutor(threads) as pool:  # PIL decodes outside the GIL
        for chunk in chunks(_celeba_files(folder)):
            ids += [i for i, _ in chunk]
            widths.add(_jpeg_width(chunk[0][1]))
            images += list(pool.map(work, chunk))
    return np.array(ids), np.stack(images), min(widths)


def _jpeg_width(data: bytes) -> int:
    from PIL import Image

    return Image.open(io.BytesIO(data)).size[0]


def read_celeba(folder: Path, cfg: DataConfig):
    ids, x, width = read_celeba_images(folder, cfg.image_size)
    partition = folder / "list_eval_partition.txt"
    parts = {}
    if partition.is_file():
        for line in partition.read_text().split("\n"):
            if line.strip():
                name, p = line.split()
                parts[int(name.split(".")[0])] = int(p)
    crop = "rows 20..198 (178x178)" if width == 178 else f"rows 10..99 of the {width}px copy"
    if parts and any(parts.get(int(i)) == 2 for i in ids):
        p = np.array([parts.get(int(i), -1) for i in ids])
        train, test = x[p == 0], x[p == 2]
        split = "official list_eval_partition.txt: train = partition 0, test = partition 2"
        full = len(ids) == 202_599
    else:
        k = cfg.celeba_subset_test_from
        train, test = x[ids < k], x[ids >= k]
        split = (f"partial CelebA (ids {ids.min():06d}-{ids.max():06d}, all in the official "
                 f"train partition): ids >= {k:06d} held out as test")
        full = False
    kind = "CelebA aligned" if width == 178 else f"CelebA mirror subset ({width}px, re-encoded)"
    return train, test, {
        "data_label": f"{kind} {cfg.image_size}x{cfg.image_size}, centre crop {crop}; "
                      f"{len(train):,} train / {len(test):,} test",
        "test_split": split, "full_dataset": full}


def sample_image_patches(images: np.ndarray, cfg: DataConfig):
    """16x16 patches of the two sklearn photos: train from columns [0, 480) at stride 4, test
    from columns [480, 640) at stride 8, so no test pixel is seen in training."""
    def cut(img, col0, col1, stride):
        p = cfg.patch_size
        return [img[r:r + p, c:c + p] for r in range(0, img.shape[0] - p + 1, stride)
                for c in range(col0, col1 - p + 1, stride)]

    train, test = [], []
    for img in images:
        train += cut(img, 0, cfg.patch_test_col, cfg.patch_train_stride)
        test += cut(img, cfg.patch_test_col, img.shape[1], cfg.patch_test_stride)
    return (np.stack(train).transpose(0, 3, 1, 2).copy(),
            np.stack(test).transpose(0, 3, 1, 2).copy())


def read_embedded(name: str, folder: Path, cfg: DataConfig):
    if name == "digits":
        from sklearn.model_selection import train_test_split

        d = np.load(folder / "digits.npz")
        x = d["images"].astype(np.uint8)[:, None]
        train, test = train_test_split(x, test_size=cfg.digits_test_size, stratify=d["labels"],
                                       random_state=cfg.split_seed)
        return train, test, {
            "data_label": "embedded: scikit-learn 8x8 digits, 17 levels (not comparable to "
                          "CIFAR-10)",
            "test_split": f"stratified {cfg.digits_test_size} images (seed {cfg.split_seed})",
            "full_dataset": False}
    if name == "image_patches":
        images = np.load(folder / "sample_images.npz")["images"]
        train, test = sample_image_patches(images, cfg)
        p = cfg.patch_size
        return train, test, {
            "data_label": f"embedded image patches {p}x{p} (not comparable to CIFAR-10)",
            "test_split": f"columns >= {cfg.patch_test_col} of both photos "
                          f"(stride {cfg.patch_test_stride}); train: columns < "
                          f"{cfg.patch_test_col} (stride {cfg.patch_train_stride})",
            "full_dataset": False}
    raise ValueError(f"unknown embedded dataset {name!r} (digits | image_patches)")


# ---------------------------------------------------------------- data: prepare


def prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None:
    """Write ``<dataset>.npz`` (uint8 train/test, (N, C, H, W)) per dataset and ``data.json``."""
    from kexue.data.embedded import save_npz

    names = [cfg.embedded] if source == "embedded" else list(cfg.official)
    out.mkdir(parents=True, exist_ok=True)
    index = {}
    for name in names:
        folder = dataset_files(raw[name])
        if source == "embedded":
            train, test, meta = read_embedded(name, folder, cfg)
        elif name == "cifar10":
            train, test, meta = read_cifar10(folder, cfg)
        elif name == "celeba":
            train, test, meta = read_celeba(folder, cfg)
        else:
            raise ValueError(f"unknown official dataset {name!r} (cifar10 | celeba)")
        if cfg.max_train:
            train = train[: cfg.max_train]
        if cfg.max_test:
            test = test[: cfg.max_test]
        if cfg.max_train or cfg.max_test:
            meta["full_dataset"] = False
            meta["data_label"] += f" [cut to {len(train):,} train / {len(test):,} test]"
        save_npz(out / f"{name}.npz", train=train, test=test)
        index[name] = {**meta, "dataset": name, "n_levels": 17 if name == "digits" else 256,
                       "shape": list(train.shape[1:]), "n_train": len(train),
                       "n_test": len(test), "source": source}
        print(f"[glow] {name}: {index[name]['data_label']}")
    write_json(out / "data.json", {"default": names[0], "datasets": index})


def load_prepared(data_dir: Path, dataset: str = ""):
    index = read_json(data_dir / "data.json")
    name = dataset or index["default"]
    if name not in index["datasets"]:
        raise ValueError(f"dataset {name!r} was not prepared (prepared: "
                         f"{sorted(index['datasets'])}); check DataConfig.official/embedded")
    d = np.load(data_dir / f"{name}.npz")
    return torch.from_numpy(d["train"]), torch.from_numpy(d["test"]), index["datasets"][name]


def dequantise(k: torch.Tensor, noise: torch.Tensor, n_levels: int) -> torch.Tensor:
    """x = (k + u) / n_levels - 0.5: Su's x/256 - 0.5 + U[0, 1/256) (and (k+u)/17 - 0.5)."""
    return (k.float() + noise) / n_levels - 0.5


# ---------------------------------------------------------------- train / evaluate


@torch.no_grad()
def test_nll(model: Glow, x_test: torch.Tensor, n_levels: int, seed: int, device,
             limit: int = 0, batch: int = 500) -> float:
    """Mean NLL (nats / image) on dequantised test images, one fixed noise draw per image."""
    was_training = model.training
    model.eval()
    x_test = x_test[:limit] if limit else x_test
    g = torch.Generator().manual_seed(seed + 10_007)
    total = 0.0
    for i in range(0, len(x_test), batch):
        k = x_test[i: i + batch]
        x = dequantise(k, torch.rand(k.shape, generator=g), n_levels).to(device)
        total += -model.log_prob(x).double().sum().item()
    model.train(was_training)
    return total / len(x_test)


class CollapseGuard:
    """Su's guard: keep the weights of the lowest epoch loss; after epoch ``cfg.collapse_after``
    an epoch loss above 0 (worse than the uniform density on the data cube, i.e. bpd >
    log2(n_levels)) means the flow has collapsed: reload the best weights, lr -> collapse_lr."""

    def __init__(self, cfg: RunConfig, model: nn.Module, opt, state: TrackedState,
                 ckpt: Checkpointer):
        self.cfg, self.model, self.opt, self.state, self.ckpt = cfg, model, opt, state, ckpt

    def __call__(self, epoch: int, loss: float) -> bool:
        if loss <= self.state["best_loss"]:
            self.state["best_loss"] = loss
            self.ckpt.save({"model": self.model.state_dict(), "epoch": epoch}, "best")
            return False
        if not (self.cfg.collapse_guard and epoch > self.cfg.collapse_after and loss > 0):
            return False
        best = self.ckpt.load("best", map_location=next(self.model.parameters()).device)
        self.model.load_state_dict(best["model"])
        self.state["lr"] = self.cfg.collapse_lr
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.collapse_lr
        self.state["collapses"] = self.state.get("collapses", 0) + 1
        print(f"[glow] collapse guard: epoch {epoch} loss {loss:.4g} > 0; reloaded the weights "
              f"of epoch {best['epoch']}, lr -> {self.cfg.collapse_lr:g}", flush=True)
        return True


def _optimiser(cfg: RunConfig, params):
    if cfg.optimiser == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimiser == "adamax":
        return torch.optim.Adamax(params, lr=cfg.lr)
    raise ValueError(f"unknown optimiser {cfg.optimiser!r} (adam | adamax)")


class _Batches:
    """Batch ``step`` = images [step * B, (step + 1) * B) of an endless stream of epoch
    permutations: every image once per pass, a pure function of (seed, step)."""

    def __init__(self, n: int, batch: int, seed: int):
        self.n, self.batch, self.seed, self.cache = n, batch, seed, {}

    def _perm(self, p: int) -> torch.Tensor:
        if p not in self.cache:
            self.cache = {p: epoch_permutation(self.n, self.seed, p)}
        return self.cache[p]

    def __call__(self, step: int) -> torch.Tensor:
        pos = torch.arange(step * self.batch, (step + 1) * self.batch)
        passes, idx = pos // self.n, pos % self.n
        return torch.cat([self._perm(int(p))[idx[passes == p]] for p in passes.unique()])


def _setup(ctx: RunContext):
    """Threads, the prepared data and a freshly built model on the run's device."""
    torch.set_num_threads(ctx.cfg.threads or ctx.threads)
    x_train, x_test, meta = load_prepared(ctx.data_dir, ctx.cfg.dataset)
    return x_train, x_test, meta, build_model(ctx.cfg, meta["shape"]).to(ctx.device)


def train(ctx: RunContext) -> float:
    cfg = ctx.cfg
    x_train, x_test, meta, model = _setup(ctx)
    levels, dims = meta["n_levels"], int(np.prod(meta["shape"]))
    opt = _optimiser(cfg, model.parameters())
    ckpt = Checkpointer(ctx.ckpt_dir, fingerprint(cfg))
    state = TrackedState(lr=cfg.lr, best_loss=math.inf, collapses=0)
    batches = _Batches(len(x_train), cfg.batch_size, cfg.seed)
    guard = CollapseGuard(cfg, model, opt, state, ckpt)

    if ckpt.load() is None:  # a resumed run keeps its saved init (and must not redo it)
        g = torch.Generator().manual_seed(cfg.seed + 1)
        k = x_train[torch.randperm(len(x_train), generator=g)[: cfg.actnorm_init_images]]
        x = dequantise(k, torch.rand(k.shape, generator=g), levels).to(ctx.device)
        if data_dependent_init(model, x):
            print(f"[glow/{ctx.run}] data-dependent actnorm init on {len(x)} images")

    def train_step(step: int) -> dict:
        k = x_train[batches(step)]
        noise = torch.rand(k.shape, generator=step_generator(cfg.seed, step))
        x = dequantise(k, noise, levels).to(ctx.device)
        lr = state["lr"] * min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else \
            state["lr"]
        for group in opt.param_groups:
            group["lr"] = lr
        loss = -model.log_prob(x).mean()
        if not torch.isfinite(loss):  # leave the weights alone: fit stops on this loss
            return {"loss": loss.item()}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        return {"loss": loss.item(), "bpd": bits_per_dim(loss.item(), dims, levels)}

    def end_of_epoch(epoch: int, row: dict) -> dict:
        collapsed = guard(epoch, row["train_loss"])
        nll = test_nll(model, x_test, levels, cfg.seed, ctx.device, cfg.eval_images)
        return {"test_nll": nll, "test_bpd": bits_per_dim(nll, dims, levels),
                "lr": state["lr"], "collapse_guard": int(collapsed)}

    result = fit(modules={"model": model, "opt": opt, "state": state},
                 total_steps=cfg.epochs * cfg.steps_per_epoch,
                 steps_per_epoch=cfg.steps_per_epoch, train_step=train_step,
                 end_of_epoch=end_of_epoch, ckpt=ckpt, checkpoint_every=cfg.checkpoint_every,
                 log_prefix=f"[glow/{ctx.run}] ", device=ctx.device)
    save_torch(ctx.out_dir / "model.pt", model.state_dict())
    write_history(ctx.out_dir / "history.csv", result.history)
    ckpt.clear()
    return result.wall_time


def evaluate(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    _, x_test, meta, model = _setup(ctx)
    levels, dims = meta["n_levels"], int(np.prod(meta["shape"]))
    model.load_state_dict(load_torch(ctx.out_dir / "model.pt", map_location=ctx.device))
    nll = test_nll(model, x_test, levels, cfg.seed, ctx.device)
    history = read_history(ctx.out_dir / "history.csv")
    last = history[-1] if history else {}
    out = ctx.out_dir / "artifacts"
    samples = save_sample_grids(model, cfg, meta, out)
    return {
        "recipe": cfg.recipe,
        "dataset": meta["dataset"],
        "data_label": meta["data_label"],
        "test_split": meta["test_split"],
        "full_dataset": meta["full_dataset"],
        "n_train": meta["n_train"],
        "n_test": meta["n_test"],
        "n_levels": levels,
        "dims": dims,
        "shape": meta["shape"],
        "levels": cfg.levels,
        "depth": cfg.depth,
        "width": cfg.width,
        "coupling": cfg.coupling,
        "permutation": cfg.permutation,
        "actnorm": cfg.actnorm,
        "batch_size": cfg.batch_size,
        "parameters": parameter_count(model),
        "epochs_run": int(last.get("epoch", 0)),
        "steps_run": int(last.get("step", 0)),
        "images_seen": int(last.get("step", 0)) * cfg.batch_size,
        "collapse_guard_fired": int(sum(r.get("collapse_guard", 0) for r in history)),
        "test_nll_nats": nll,
        "test_bpd": bits_per_dim(nll, dims, levels),
        "final_train_bpd": last.get("train_bpd"),
        "dequantisation": f"x = (k + u)/{levels} - 0.5, one U[0,1) draw per test image "
                          f"(seed {cfg.seed + 10_007}); bpd = NLL/(D ln 2) + log2({levels})",
        "samples": samples,
    }


def save_sample_grids(model: Glow, cfg: RunConfig, meta: dict, out: Path) -> dict:
    """One PNG grid per temperature, from the same base noise (so grids differ only in T)."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    n = math.isqrt(cfg.n_samples)
    c, h, w = meta["shape"]
    upscale = max(1, 64 // h)  # 8x8 digits are unreadable at 1:1
    files = {}
    for t in cfg.temperatures:
        x = model.sample(n * n, t, torch.Generator().manual_seed(cfg.seed + 7))
        # back to the integer levels of the data, clipped for display
        k = torch.floor((x.float().cpu() + 0.5) * meta["n_levels"]).clamp(0, meta["n_levels"] - 1)
        img = (k / (meta["n_levels"] - 1) * 255).round().to(torch.uint8).numpy()
        grid = img.reshape(n, n, c, h, w).transpose(0, 3, 1, 4, 2).reshape(n * h, n * w, c)
        pil = Image.fromarray(grid[..., 0] if c == 1 else grid)
        pil = pil.resize((n * w * upscale, n * h * upscale), Image.NEAREST)
        name = f"samples_T{t:g}.png"
        pil.save(out / name)
        files[f"{t:g}"] = name
    return files


# ---------------------------------------------------------------- published numbers

GLOW_CIFAR = 3.35  # Glow paper, Table 2 (affine coupling, 1x1 conv, K32 L3)
REALNVP_CIFAR = 3.49  # RealNVP paper, as quoted by Glow Table 2
PEER_CIFAR = 3.39  # y0ast/Glow-PyTorch README, single GPU, batch 64, 250 epochs
BAND = 0.05  # bits/dim: seed-to-seed and Polyak-averaging differences are ~0.01-0.03


def _is_full_cifar(m: dict) -> bool:
    prov = m.get("provenance", {})
    return (m.get("dataset") == "cifar10" and bool(m.get("full_dataset"))
            and prov.get("data_source", "official") == "official"
            and prov.get("profile", "full") == "full")


def comparisons(metrics: dict[str, dict], source: str) -> list[Comparison]:
    rows = []
    for run, m in metrics.items():
        bpd = m["test_bpd"]
        where = m.get("data_label", "")
        if m.get("recipe") == "original":
            ok = _is_full_cifar(m) and m.get("depth") == 32 and m.get("levels") == 3
            note = (f"{m.get('steps_run')} steps of batch {m.get('batch_size')}; no Polyak "
                    f"averaging" if ok else f"not CIFAR-10 K32 at full scale: {where}")
            rows.append(Comparison(run, "CIFAR-10 test bits/dim", GLOW_CIFAR,
                                   "paper (arXiv 1807.03039, Table 2)", bpd, BAND, ok, note))
            rows.append(Comparison(run, "CIFAR-10 test bits/dim", PEER_CIFAR,
                                   "peer (y0ast/Glow-PyTorch, 1 GPU)", bpd, BAND, ok, note))
        elif m.get("recipe") == "su":
            # Su published samples only. RealNVP's 3.49 is context, never a target.
            rows.append(Comparison(
                run, "test bits/dim (context: RealNVP)", REALNVP_CIFAR,
                "paper (arXiv 1605.08803, via Glow Table 2)", bpd, 0.15, False,
                f"context only: Su publishes samples, no bits/dim; his K6 additive model is "
                f"expected above Glow's {GLOW_CIFAR}. Data: {where}"))
    return rows
