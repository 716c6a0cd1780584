"""Embedded datasets: generated offline from data shipped in PyPI packages.

Each generator is ``fn(dest: Path) -> None`` and writes compressed ``.npz`` files into ``dest``
(a fresh folder that :func:`kexue.data.fetch.generate_dataset` renames into place). The files
are byte-for-byte reproducible, so a regenerated dataset keeps its DVC hash.
"""

from __future__ import annotations

import os
import random
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Like ``np.savez_compressed``, but without the wall-clock timestamps numpy puts in the
    zip entries, so that the same arrays always give the same bytes."""
    from kexue.io import atomic_path

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def load_npz(path: str | os.PathLike,
             expect: dict[str, tuple[str, int]]) -> dict[str, np.ndarray]:
    """The arrays ``expect`` names from an ``.npz`` file, never unpickled, each checked against
    ``(dtype kinds, ndim)`` (kinds as in ``np.dtype.kind``: "u" uint, "iu" any integer, "f"
    float); a broken or unexpected file is a ``DataError`` naming it and the member."""
    from kexue.errors import DataError

    if Path(path).is_file() and not zipfile.is_zipfile(path):  # np.load would guess "pickle"
        raise DataError(f"{path}: not a valid .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {}
            for key, (kinds, ndim) in expect.items():
                if key not in npz.files:
                    raise DataError(f"{path}: no array {key!r} (it holds {npz.files})")
                a = npz[key]
                if a.dtype.kind not in kinds or a.ndim != ndim:
                    raise DataError(f"{path}: {key} is {a.dtype} of shape {a.shape}; expected "
                                    f"{ndim} dimensions of dtype kind {'/'.join(kinds)}")
                arrays[key] = a
            return arrays
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: not a valid .npz file ({e})") from None


def load_npy(path: str | os.PathLike, kinds: str, ndim: int, mmap: bool = False) -> np.ndarray:
    """One ``.npy`` array, never unpickled, checked like a member of :func:`load_npz`
    (``mmap``: memory-mapped read-only, for sets larger than memory); a broken or unexpected
    file is a ``DataError`` naming it."""
    from kexue.errors import DataError

    try:
        a = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a valid .npy file ({e})") from None
    if not isinstance(a, np.ndarray):
        raise DataError(f"{path}: not a valid .npy file (an .npz archive)")
    if a.dtype.kind not in kinds or a.ndim != ndim:
        raise DataError(f"{path}: {a.dtype} of shape {a.shape}; expected {ndim} dimensions of "
                        f"dtype kind {'/'.join(kinds)}")
    return a


def sklearn_digits(dest: Path) -> None:
    """``digits.npz``: images uint8 (1797, 8, 8), values 0..16; labels int64 (1797,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    save_npz(Path(dest) / "digits.npz", images=d.images.astype(np.uint8),
             labels=d.target.astype(np.int64))


def sklearn_image_patches(dest: Path) -> None:
    """``sample_images.npz``: the two bundled RGB photos, images uint8 (2, 427, 640, 3), and
    their file names; the glow article cuts the patches."""
    from sklearn.datasets import load_sample_images

    d = load_sample_images()
    names = np.array([Path(f).name for f in d.filenames])
    save_npz(Path(dest) / "sample_images.npz", images=np.stack(d.images).astype(np.uint8),
             names=names)


def mnist1d(dest: Path) -> None:
    """``mnist1d.npz``: x_train float32 (4000, 40), y_train int64, x_test (1000, 40), y_test.

    Generated offline with the package's default arguments (seed 42); the package's
    ``get_dataset(download=True)`` is never called.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    with _global_rng_restored():  # make_dataset reseeds the global random and numpy RNGs
        d = make_dataset(get_dataset_args())
    save_npz(Path(dest) / "mnist1d.npz",
             x_train=d["x"].astype(np.float32), y_train=d["y"].astype(np.int64),
             x_test=d["x_test"].astype(np.float32), y_test=d["y_test"].astype(np.int64))


@contextmanager
def _global_rng_restored():
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
