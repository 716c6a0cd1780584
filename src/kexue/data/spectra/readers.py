"""Real spectra: the Tianchi competition layout and LAMOST FITS files, onto one 2600-point grid.

Every error names the offending file. A spectrum of the Tianchi layout is ``<id>.txt`` (2600
comma-separated floats); ``<id>.fits`` / ``<id>.fits.gz`` (a LAMOST file) is accepted in its
place and resampled, so both kinds of real data go through the same code path.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from kexue.data.spectra import CLASSES, N_PIX, wavelength_grid
from kexue.errors import DataError


class SpectraDataError(DataError):
    """A spectrum or an index file is unusable; the message names the file."""


def check_spectrum(flux: np.ndarray, where: str | Path) -> np.ndarray:
    if flux.shape != (N_PIX,):
        raise SpectraDataError(f"{where}: expected {N_PIX} values, found {flux.size}")
    bad = np.flatnonzero(~np.isfinite(flux))
    if bad.size:
        raise SpectraDataError(f"{where}: value {flux[bad[0]]} (NaN/Inf) at position {bad[0]}")
    # a constant spectrum is no error: Su's script keeps every file (prepare counts them)
    return flux


def read_txt(path: Path) -> np.ndarray:
    try:
        tokens = Path(path).read_text().strip().split(",")
    except FileNotFoundError:
        raise SpectraDataError(f"{path}: missing spectrum file") from None
    try:
        flux = np.array(tokens, dtype=np.float64)
    except ValueError:
        pos = next(i for i, t in enumerate(tokens) if not _is_number(t))
        raise SpectraDataError(f"{path}: token {pos} ({tokens[pos]!r}) is not a number") from None
    return check_spectrum(flux, path)


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- LAMOST FITS


MAX_FITS_VALUES = 1_000_000  # a LAMOST low-resolution file holds 5 x 3909


def read_lamost_fits(path: Path) -> dict[str, np.ndarray]:
    """The primary HDU of a LAMOST low-resolution file: 5 x 3909 rows flux, inverse variance,
    wavelength (Å, log-linear), andmask, ormask. The header's shape is checked before any data
    is read, so an absurd one allocates nothing; a truncated file is an error, not astropy's
    warning followed by a short read."""
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyWarning)  # a truncated file only warns
            with fits.open(path) as hdul:
                _check_declared_shape(hdul[0].header, path)
                problems = [w.message for w in caught if issubclass(w.category, AstropyWarning)]
                if problems:
                    raise ValueError(problems[0])
                data = np.asarray(hdul[0].data, dtype=np.float64)
    except SpectraDataError:
        raise
    except FileNotFoundError:
        raise SpectraDataError(f"{path}: missing FITS file") from None
    except (OSError, ValueError, TypeError, IndexError) as err:
        reason = " ".join(str(err).split())  # astropy's messages span lines
        raise SpectraDataError(f"{path}: not a readable FITS file ({reason})") from None
    return dict(zip(("flux", "ivar", "wavelength", "andmask", "ormask"), data[:5]))


def _check_declared_shape(header, path: Path) -> None:
    shape = tuple(header.get(f"NAXIS{k}", 0) for k in range(header.get("NAXIS", 0), 0, -1))
    if len(shape) != 2 or shape[0] < 5 or not 0 < shape[0] * shape[1] <= MAX_FITS_VALUES:
        declared = " x ".join(f"{n:,}" for n in shape) or "no data"
        raise SpectraDataError(f"{path}: expected a 5 x N primary HDU of at most "
                               f"{MAX_FITS_VALUES:,} values, the header declares {declared}")


def resample(wavelength: np.ndarray, flux: np.ndarray, good: np.ndarray) -> np.ndarray:
    """[assumption] Linear interpolation in λ over the good pixels (bad ones are bridged);
    beyond the data (3690-3700 Å) the first/last valid value is repeated."""
    if good.sum() < 2:
        raise SpectraDataError("fewer than two valid pixels")
    return np.interp(wavelength_grid(), wavelength[good], flux[good])


def read_fits_spectrum(path: Path) -> np.ndarray:
    d = read_lamost_fits(path)
    # bad: no inverse variance, or flagged in every exposure (andmask); ormask (any exposure)
    # would also throw away pixels that are fine in the co-add
    good = (d["ivar"] > 0) & (d["andmask"] == 0) & np.isfinite(d["flux"])
    try:
        flux = resample(d["wavelength"], d["flux"], good)
    except SpectraDataError as err:
        raise SpectraDataError(f"{path}: {err}") from None
    return check_spectrum(flux, path)


# ---------------------------------------------------------------- Tianchi layout


def read_index(path: Path) -> tuple[list[str], np.ndarray]:
    """``id,type`` rows in file order -> ids and class indices (names are case-insensitive)."""
    if not Path(path).is_file():
        raise SpectraDataError(f"{path}: missing index file")
    ids, labels = [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not {"id", "type"} <= set(reader.fieldnames or ()):
            raise SpectraDataError(f"{path}: expected columns id,type, found {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            name = (row["type"] or "").strip().lower()
            if name not in CLASSES:
                raise SpectraDataError(f"{path}: line {line}: unknown label {row['type']!r} "
                                       f"(expected one of {', '.join(CLASSES)})")
            ids.append(row["id"].strip())
            labels.append(CLASSES.index(name))
    if not ids:
        raise SpectraDataError(f"{path}: no spectra listed")
    return ids, np.array(labels, dtype=np.int64)


def spectrum_path(data_dir: Path, spec_id: str) -> Path:
    for suffix in (".txt", ".fits", ".fits.gz"):
        path = data_dir / f"{spec_id}{suffix}"
        if path.exists():
            return path
    return data_dir / f"{spec_id}.txt"  # reported as missing


def read_spectrum(path: Path) -> np.ndarray:
    return read_fits_spectrum(path) if ".fits" in path.name else read_txt(path)


def tianchi_folder(folder: Path | None, name: str = "tianchi_spectra") -> Path:
    if folder is None or str(folder) in ("", "."):
        raise SpectraDataError(f"data_dirs.{name} is unset: set it in params.yaml to the folder "
                               "holding the competition files (index CSV + data folder)")
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SpectraDataError(f"{folder}: data_dirs.{name} is not a folder")
    return folder
