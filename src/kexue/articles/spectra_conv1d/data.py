"""prepare(): raw datasets -> processed spectra + the article's split; the class-mix sampler.

Processed layout (``data/processed/spectra_conv1d/``): ``flux.npy`` float32 (n, 2600) in raw
flux units (the model divides by 100), rows in split order, the first ``n_train`` are train and
the rest validation; ``labels.npy``; ``ids.txt`` (original ids); ``test_flux.npy`` and
``test_labels.npy`` (synthetic only: the competition test sets are unlabelled); ``mnist1d.npz``;
``data.json`` (provenance, counts per class, sizes, constant spectra found).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pooch
import torch

from kexue.data.embedded import load_npy, load_npz
from kexue.data.spectra import CLASSES, N_PIX, synthetic
from kexue.data.spectra import readers as loaders
from kexue.io import atomic_path, read_json, write_json

from .config import DataConfig

FLUX_SCALE = 100.0  # the article's only normalisation: flux / 100

SYNTHETIC_LABEL = "synthetic spectra (embedded)"
TIANCHI_LABEL = "Tianchi LAMOST DR3 (user folder)"
FITS_LABEL = "LAMOST FITS spectra, resampled (user folder)"
GRID_NOTE = "linspace(3690, 9100, 2600) Å [assumption: the competition documents only the range]"


def to_input(flux: np.ndarray) -> torch.Tensor:
    """Flux (N, 2600) -> network input (N, 1, 2600) float32 tensor: flux / 100, nothing else."""
    x = torch.as_tensor(np.asarray(flux, dtype=np.float32) / FLUX_SCALE)
    return x.unsqueeze(1)


def split_order(n: int, cfg: DataConfig) -> tuple[np.ndarray, int]:
    """The article's split: RandomState(2018).shuffle the ids in index order, keep the first
    ``n_train_val`` (0 = all), first 80 % train. Returns (kept ids in split order, n_train)."""
    order = np.arange(n)
    np.random.RandomState(cfg.split_seed).shuffle(order)
    if cfg.n_train_val:
        order = order[: cfg.n_train_val]
    return order, round(len(order) * (1 - cfg.val_fraction))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def constant_rows(flux: np.ndarray) -> np.ndarray:
    """Indices of the rows whose values are all equal."""
    return np.flatnonzero(np.ptp(flux, axis=1) == 0)


def _keep_rows(path: Path, keep: np.ndarray) -> None:
    """Rewrite an (n, 2600) .npy with only the rows ``keep``, in chunks (the full set is ~4 GB)."""
    src = load_npy(path, "f", 2, mmap=True)
    with atomic_path(path) as tmp:
        dst = np.lib.format.open_memmap(tmp, mode="w+", dtype=src.dtype,
                                        shape=(len(keep), src.shape[1]))
        for i in range(0, len(keep), 4096):
            dst[i: i + 4096] = src[keep[i: i + 4096]]
        dst.flush()
        del dst
    del src


def _constant_spectra(d: dict, cfg: DataConfig, out: Path) -> dict:
    """Count the constant spectra among train + validation and warn; with
    ``cfg.drop_constant``, drop them from ``d`` (and ``flux.npy``) keeping the split of the
    others. Returns the record for data.json."""
    constant, n_train, total = d["constant"], d["n_train"], len(d["labels"])
    record = {"found": len(constant), "train": int((constant < n_train).sum()),
              "validation": int((constant >= n_train).sum()),
              "drop_constant": cfg.drop_constant,
              "first_ids": [str(i) for i in d["ids"][constant[:10]]]}
    if not len(constant):
        return record
    if cfg.drop_constant:
        keep = np.setdiff1d(np.arange(total), constant)
        if d["flux"] is None:  # the Tianchi flux is already on disk
            _keep_rows(out / "flux.npy", keep)
        else:
            d["flux"] = d["flux"][keep]
        d["labels"], d["ids"] = d["labels"][keep], d["ids"][keep]
        d["n_train"] = n_train - record["train"]
    more = ", ..." if len(constant) > 10 else ""
    print(f"warning: {len(constant)} of {total} spectra are constant (ids "
          f"{', '.join(record['first_ids'])}{more}): "
          f"{'dropped' if cfg.drop_constant else 'kept, as Su does'} "
          f"(data.drop_constant={cfg.drop_constant})", file=sys.stderr)
    return record


def _counts(labels: np.ndarray) -> dict[str, int]:
    return {c: int((labels == i).sum()) for i, c in enumerate(CLASSES)}


def _require_all_classes(labels: np.ndarray, what: str) -> None:
    missing = [c for c, k in _counts(labels).items() if k == 0]
    if missing:
        raise loaders.SpectraDataError(f"{what} lacks class(es) {missing}: macro-F1 over 4 "
                                       "classes needs every class (use more spectra)")


def _synthetic(cfg: DataConfig, raw_dir: Path, out: Path) -> dict:
    gen = read_json(raw_dir / "generator.json")
    spectra = {"flux": ("f", 2), "labels": ("i", 1)}
    tv, test = load_npz(raw_dir / "train_val.npz", spectra), load_npz(raw_dir / "test.npz", spectra)
    labels = tv["labels"]
    order, n_train = split_order(len(labels), cfg)
    flux = tv["flux"][order]
    test_n = cfg.n_test or len(test["labels"])
    test_flux, test_labels = test["flux"][:test_n], test["labels"][:test_n]
    snr = {"unknown_snr_low": list(cfg.unknown_snr_low),
           "unknown_snr_defect": list(cfg.unknown_snr_defect)}
    if any(snr[k] != gen[k] for k in snr):  # retuned range: regenerate only the UNKNOWN ones
        for arr, lab, ids, key in ((flux, labels[order], order, "train_val"),
                                   (test_flux, test_labels, np.arange(test_n), "test")):
            rows = np.flatnonzero(lab == CLASSES.index("unknown"))
            new = synthetic.make_set(gen["sizes"][key], gen["seeds"][key], snr["unknown_snr_low"],
                                     snr["unknown_snr_defect"], only=ids[rows])
            arr[rows] = new["flux"]
    _save_npy(out / "test_flux.npy", test_flux.astype(np.float32))
    _save_npy(out / "test_labels.npy", test_labels.astype(np.int64))
    return {"flux": flux, "labels": labels[order], "ids": order.astype(str), "n_train": n_train,
            "constant": constant_rows(flux),
            "meta": {"data_label": SYNTHETIC_LABEL, "synthetic": True, "generator": gen,
                     **snr, "test_counts": _counts(test_labels), "n_test": int(test_n)},
            "test_labels": test_labels}


def _tianchi(cfg: DataConfig, raw_dir: Path, out: Path) -> dict:
    from kexue.data.fetch import dataset_files

    if not (raw_dir / "source.json").exists():
        loaders.tianchi_folder(None)  # raises: data_dirs.tianchi_spectra is unset
    folder = loaders.tianchi_folder(dataset_files(raw_dir))
    index = folder / cfg.tianchi_index
    ids, all_labels = loaders.read_index(index)
    order, n_train = split_order(len(ids), cfg)
    data_dir = folder / cfg.tianchi_data
    path = out / "flux.npy"
    with atomic_path(path) as tmp:  # written row by row: the full set is ~4 GB
        flux = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                         shape=(len(order), N_PIX))
        kinds, constant = set(), []
        for k, i in enumerate(order):
            spectrum = loaders.spectrum_path(data_dir, ids[i])
            kinds.add("fits" if ".fits" in spectrum.name else "txt")
            flux[k] = loaders.read_spectrum(spectrum)
            if np.ptp(flux[k]) == 0:
                constant.append(k)
        flux.flush()
        del flux
    return {"flux": None, "labels": all_labels[order], "ids": np.array(ids)[order],
            "n_train": n_train, "constant": np.array(constant, dtype=np.int64),
            "test_labels": None,
            "meta": {"data_label": TIANCHI_LABEL if kinds == {"txt"} else FITS_LABEL,
                     "synthetic": False, "folder": str(folder),
                     "index": cfg.tianchi_index, "index_sha256": pooch.file_hash(str(index), alg="sha256"),
                     "n_test": 0}}


def prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if source == "embedded":
        d = _synthetic(cfg, Path(raw["synthetic_spectra"]), out)
    elif source == "official":
        d = _tianchi(cfg, Path(raw["tianchi_spectra"]), out)
    else:
        raise ValueError(f"unknown data source {source!r}")
    constant = _constant_spectra(d, cfg, out)
    labels, n_train = d["labels"], d["n_train"]
    _require_all_classes(labels[n_train:], "the validation set")
    if d["test_labels"] is not None:
        _require_all_classes(d["test_labels"], "the test set")
    train_counts = _counts(labels[:n_train])
    if d["flux"] is not None:
        _save_npy(out / "flux.npy", d["flux"].astype(np.float32))
    _save_npy(out / "labels.npy", labels.astype(np.int64))
    with atomic_path(out / "ids.txt") as tmp:
        tmp.write_text("\n".join(map(str, d["ids"])) + "\n")
    if "mnist1d" in raw:
        from kexue.data.fetch import dataset_files

        with atomic_path(out / "mnist1d.npz") as tmp:
            shutil.copyfile(dataset_files(Path(raw["mnist1d"])) / "mnist1d.npz", tmp)
    write_json(out / "data.json", {
        **d["meta"], "source": source, "classes": list(CLASSES), "grid": GRID_NOTE,
        "flux_units": "raw flux; the network input is flux / 100",
        "n_train": n_train, "n_val": int(len(labels) - n_train), "split_seed": cfg.split_seed,
        "constant_spectra": constant,
        "train_counts": train_counts, "val_counts": _counts(labels[n_train:])})


@dataclass
class Prepared:
    flux: np.ndarray  # memory-mapped (n, 2600)
    labels: np.ndarray
    n_train: int
    meta: dict
    test_flux: np.ndarray | None
    test_labels: np.ndarray | None


def load_prepared(data_dir: Path) -> Prepared:
    data_dir = Path(data_dir)
    meta = read_json(data_dir / "data.json")
    test = data_dir / "test_flux.npy"
    has_test = test.exists()
    return Prepared(load_npy(data_dir / "flux.npy", "f", 2, mmap=True),
                    load_npy(data_dir / "labels.npy", "i", 1), meta["n_train"], meta,
                    load_npy(test, "f", 2, mmap=True) if has_test else None,
                    load_npy(data_dir / "test_labels.npy", "i", 1) if has_test else None)


class ClassMixSampler:
    """Su's batches: a fixed count per class (keyed by name), each drawn with replacement."""

    def __init__(self, labels: np.ndarray, mix: dict[str, int]):
        unknown = set(mix) - set(CLASSES)
        if unknown:
            raise ValueError(f"batch_mix: unknown class(es) {sorted(unknown)}; use {CLASSES}")
        self.pools = []
        for name in CLASSES:  # class order, not dict order: the same batch for the same mix
            if mix.get(name, 0) > 0:
                members = np.flatnonzero(np.asarray(labels) == CLASSES.index(name))
                if not len(members):
                    raise ValueError(f"batch_mix asks for {name} but the training set has none")
                self.pools.append((torch.from_numpy(members), int(mix[name])))

    def __call__(self, generator: torch.Generator) -> np.ndarray:
        return torch.cat([pool[torch.randint(len(pool), (k,), generator=generator)]
                          for pool, k in self.pools]).numpy()
