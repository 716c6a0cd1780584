"""Image datasets as uint8 arrays: one reader per dataset, all returning an ``ImageSet``.

``load_image_dataset(name, folder, opts)`` reads a dataset of ``kexue.data.registry`` whose
``reader`` is one of ``READERS``: MNIST-format idx files (MNIST, Fashion-MNIST: registering
another such dataset is one registry entry), the CIFAR-10 binary version (or the mirror's
subset), CelebA (official zip, a folder of JPEGs, or the mirror's half-size tar), and the
embedded scikit-learn digits and photo patches. The number of grey levels comes from the
dataset, never from its name. Nothing is unpickled.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kexue.data.archives import check_tar, read_tar, zip_names
from kexue.data.embedded import load_npz
from kexue.data.fetch import dataset_files
from kexue.data.idx import read_idx
from kexue.data.registry import get_dataset
from kexue.errors import DataError


@dataclass
class ImageOptions:
    """How an image dataset is cut into train and test (plain values: part of a DataConfig)."""

    image_size: int = 32  # CelebA: centre crop rows 20..198 (178x178), then resized to this
    patch_size: int = 16  # embedded photo patches (glow spec §5.3)
    patch_train_stride: int = 4
    patch_test_stride: int = 8
    patch_test_col: int = 480  # train columns [0, 480), test columns [480, 640)
    digits_test_size: int = 360  # sklearn digits: 1,437 train / 360 test, stratified
    split_seed: int = 2018
    cifar_subset_test_from: int = 3500  # mirror file (4,000 train records): hold out 3500-3999
    celeba_subset_test_from: int = 9001  # no test ids in a partial CelebA: hold out >= 009001


@dataclass
class ImageSet:
    name: str
    train: np.ndarray  # uint8 (N, C, H, W)
    test: np.ndarray
    n_levels: int  # distinct pixel values the data can take (256, or 17 for sklearn digits)
    label: str  # what the data is, for every report ("embedded: ..." for embedded data)
    test_split: str  # how the test set was chosen
    complete: bool  # the official data in full (False for subsets and embedded data)
    train_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.train.shape[1:])



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
        raise DataError(f"{name}: {len(data)} bytes is not a whole number of "
                         f"{CIFAR_RECORD}-byte CIFAR-10 records")
    records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        raise DataError(f"{name}: label {labels.max()} > 9: not CIFAR-10 binary records")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _cifar_batches(folder: Path) -> tuple[dict[str, bytes], str]:
    """The CIFAR-10 binary batches in any of the layouts we accept, and which one it was."""
    tar = folder / CIFAR_TAR
    if tar.is_file():  # members are read in memory; nothing is extracted
        members = {f"{CIFAR_DIR}/{n}": n for n in (*CIFAR_TRAIN, CIFAR_TEST)}
        found = read_tar(tar, members.__contains__)
        for member in members:
            if member not in found:
                raise DataError(f"{tar}: no member {member}")
        return {members[m]: data for m, data in found.items()}, f"official {CIFAR_TAR}"
    for d in (folder / CIFAR_DIR, folder):
        if all((d / n).is_file() for n in (*CIFAR_TRAIN, CIFAR_TEST)):
            return {n: (d / n).read_bytes() for n in (*CIFAR_TRAIN, CIFAR_TEST)}, f"folder {d}"
    if (folder / CIFAR_SUBSET).is_file():
        return {CIFAR_SUBSET: (folder / CIFAR_SUBSET).read_bytes()}, "subset"
    if (folder / "cifar-10-python.tar.gz").exists() or (folder / "data_batch_1").exists():
        raise DataError(f"{folder}: only the python (pickle) version of CIFAR-10 is there; it is "
                         f"never unpickled here. Provide the binary version ({CIFAR_TAR}).")
    raise DataError(f"{folder}: no CIFAR-10 binary data ({CIFAR_TAR}, {CIFAR_DIR}/ with "
                            f"data_batch_1..5.bin + test_batch.bin, or {CIFAR_SUBSET})")


def read_cifar10(name: str, folder: Path, opts: ImageOptions) -> ImageSet:
    """The binary version (official tar, or its folder), or the mirror's subset; with labels."""
    batches, layout = _cifar_batches(folder)
    if layout == "subset":
        x, y = read_cifar_records(batches[CIFAR_SUBSET], CIFAR_SUBSET)
        k = opts.cifar_subset_test_from
        split = (f"mirror subset {CIFAR_SUBSET} (training records 0-{len(x) - 1}): records "
                 f"0-{k - 1} train, {k}-{len(x) - 1} held out as test (not the official test set)")
        return ImageSet(name, x[:k], x[k:], 256,
                        f"CIFAR-10 mirror subset ({k:,} train / {len(x) - k:,} held-out training "
                        f"images; not the official test set)", split, False,
                        y[:k].astype(np.int64), y[k:].astype(np.int64))
    parts = [read_cifar_records(batches[n], n) for n in (*CIFAR_TRAIN, CIFAR_TEST)]
    for n, (x, _) in zip((*CIFAR_TRAIN, CIFAR_TEST), parts, strict=True):
        if len(x) != 10_000:
            raise DataError(f"{n}: {len(x)} records, expected 10,000")
    train = np.concatenate([x for x, _ in parts[:-1]])
    labels = np.concatenate([y for _, y in parts[:-1]]).astype(np.int64)
    return ImageSet(name, train, parts[-1][0], 256,
                    "CIFAR-10 (official binary version; 50,000 train / 10,000 test)",
                    f"official test_batch.bin ({layout})", True, labels,
                    parts[-1][1].astype(np.int64))


_CELEBA_ID = re.compile(r"(?:^|/)(\d{6})\.jpg$")


def _celeba_files(folder: Path):
    """(image id, JPEG bytes) in id order, from the official zip, a folder of JPEGs, or the
    mirror's half-size tar; and a description of the layout."""
    zip_path = folder / "img_align_celeba.zip"
    tars = sorted(folder.glob("celeba_align_*.tar.gz"))
    if zip_path.is_file():
        names = sorted((int(m.group(1)), n) for n in zip_names(zip_path)  # checked entries
                       if (m := _CELEBA_ID.search(n)))
        with zipfile.ZipFile(zip_path) as zf:
            for i, n in names:
                yield i, zf.read(n)
        return
    if tars:
        try:
            with tarfile.open(tars[0], "r:gz") as tf:
                check_tar(tf, str(tars[0]))
                members = sorted((int(m.group(1)), mem) for mem in tf.getmembers()
                                 if mem.isfile() and (m := _CELEBA_ID.search(mem.name)))
                for i, mem in members:
                    yield i, tf.extractfile(mem).read()
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise DataError(f"{tars[0]}: not a readable tar.gz archive ({e})") from None
        return
    for d in (folder / "img_align_celeba", folder / "celebA", folder):
        files = sorted((int(m.group(1)), p) for p in d.glob("*.jpg")
                       if (m := _CELEBA_ID.search(p.name))) if d.is_dir() else []
        if files:
            for i, p in files:
                yield i, p.read_bytes()
            return
    raise DataError(f"{folder}: no CelebA images (img_align_celeba.zip, "
                            f"img_align_celeba/*.jpg, or the mirror's celeba_align_*.tar.gz)")


def celeba_crop_resize(jpeg: bytes, size: int, name: str = "") -> np.ndarray:
    """Su's pipeline: centre crop rows 20..198 of a 178x218 aligned face (rows 10..99 of the
    mirror's 89x109 half-size copy), then PIL bilinear resize (scipy.misc.imresize's default)
    -> uint8 (3, size, size)."""
    from PIL import Image

    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    w, h = img.size
    if h * 178 != w * 218:
        raise DataError(f"CelebA image {name}: {w}x{h} is not an aligned 178x218 face "
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


def read_celeba(folder: Path, opts: ImageOptions):
    ids, x, width = read_celeba_images(folder, opts.image_size)
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
        k = opts.celeba_subset_test_from
        train, test = x[ids < k], x[ids >= k]
        split = (f"partial CelebA (ids {ids.min():06d}-{ids.max():06d}, all in the official "
                 f"train partition): ids >= {k:06d} held out as test")
        full = False
    kind = "CelebA aligned" if width == 178 else f"CelebA mirror subset ({width}px, re-encoded)"
    return train, test, {
        "data_label": f"{kind} {opts.image_size}x{opts.image_size}, centre crop {crop}; "
                      f"{len(train):,} train / {len(test):,} test",
        "test_split": split, "full_dataset": full}


def sample_image_patches(images: np.ndarray, opts: ImageOptions):
    """16x16 patches of the two sklearn photos: train from columns [0, 480) at stride 4, test
    from columns [480, 640) at stride 8, so no test pixel is seen in training."""
    def cut(img, col0, col1, stride):
        p = opts.patch_size
        return [img[r:r + p, c:c + p] for r in range(0, img.shape[0] - p + 1, stride)
                for c in range(col0, col1 - p + 1, stride)]

    train, test = [], []
    for img in images:
        train += cut(img, 0, opts.patch_test_col, opts.patch_train_stride)
        test += cut(img, opts.patch_test_col, img.shape[1], opts.patch_test_stride)
    return (np.stack(train).transpose(0, 3, 1, 2).copy(),
            np.stack(test).transpose(0, 3, 1, 2).copy())


def read_digits(name: str, folder: Path, opts: ImageOptions) -> ImageSet:
    """scikit-learn's 8x8 digits (values 0..16), a stratified train/test split."""
    from sklearn.model_selection import train_test_split

    d = load_npz(folder / "digits.npz", {"images": ("u", 3), "labels": ("iu", 1)})
    x = d["images"].astype(np.uint8)[:, None]
    train, test, y_train, y_test = train_test_split(
        x, d["labels"], test_size=opts.digits_test_size, stratify=d["labels"],
        random_state=opts.split_seed)
    return ImageSet(name, train, test, 17, "embedded: scikit-learn 8x8 digits, 17 grey levels",
                    f"stratified {opts.digits_test_size} images (seed {opts.split_seed})",
                    False, y_train, y_test)


def read_image_patches(name: str, folder: Path, opts: ImageOptions) -> ImageSet:
    images = load_npz(folder / "sample_images.npz", {"images": ("u", 4)})["images"]
    train, test = sample_image_patches(images, opts)
    p = opts.patch_size
    return ImageSet(name, train, test, 256,
                    f"embedded: {p}x{p} patches of scikit-learn's two sample photos",
                    f"columns >= {opts.patch_test_col} of both photos (stride "
                    f"{opts.patch_test_stride}); train: columns < {opts.patch_test_col} "
                    f"(stride {opts.patch_train_stride})", False)


# ---------------------------------------------------------------- MNIST-format idx files


def read_idx_images(name: str, folder: Path, opts: ImageOptions) -> ImageSet:
    """The four files of an MNIST-format dataset (train/t10k images and labels)."""
    ds = get_dataset(name)

    def part(prefix: str) -> np.ndarray:
        return read_idx(folder / f"{prefix}-idx{3 if 'images' in prefix else 1}-ubyte.gz")

    train, test = part("train-images")[:, None], part("t10k-images")[:, None]
    return ImageSet(name, train, test, 256, f"{ds.description} (official files)",
                    "the official test set", True, part("train-labels").astype(np.int64),
                    part("t10k-labels").astype(np.int64))


READERS = {
    "idx": read_idx_images,
    "cifar10": read_cifar10,
    "celeba": lambda name, folder, opts: _from_tuple(name, read_celeba(folder, opts), 256),
    "digits": read_digits,
    "image_patches": read_image_patches,
}
# The ImageOptions fields each reader reads: two configs that agree on these read the same
# images (articles sharing one dataset's feature network must agree on them)
READER_OPTIONS = {
    "idx": (),
    "cifar10": ("cifar_subset_test_from",),
    "celeba": ("image_size", "celeba_subset_test_from"),
    "digits": ("digits_test_size", "split_seed"),
    "image_patches": ("patch_size", "patch_train_stride", "patch_test_stride", "patch_test_col"),
}


def options_read(name: str, opts: ImageOptions) -> dict:
    """The options that decide which images dataset ``name`` yields (those its reader reads)."""
    return {k: getattr(opts, k) for k in READER_OPTIONS[get_dataset(name).reader]}


def _from_tuple(name, parts, n_levels) -> ImageSet:
    train, test, meta = parts
    return ImageSet(name, train, test, n_levels, meta["data_label"], meta["test_split"],
                    meta["full_dataset"])


def load_image_dataset(name: str, raw_dir: Path, opts: ImageOptions | None = None) -> ImageSet:
    """The image dataset ``name`` from its raw folder (``data/raw/<name>``)."""
    reader = get_dataset(name).reader
    if reader not in READERS:
        raise DataError(f"dataset {name!r} is not an image dataset (image datasets: "
                        f"{', '.join(image_datasets())})")
    return READERS[reader](name, dataset_files(raw_dir), opts or ImageOptions())


def image_datasets() -> list[str]:
    from kexue.data.registry import DATASETS

    return sorted(n for n, d in DATASETS.items() if d.reader in READERS)
