"""Reader for the IDX format of the MNIST files (plain or gzip-compressed)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

# Third byte of the magic number -> element type (IDX values are big-endian).
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxFormatError(ValueError):
    """The file is not a well-formed IDX file; the message names it."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file; ``.gz`` files are decompressed on the fly."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # BadGzipFile is an OSError; a truncated .gz an EOFError
        if isinstance(e, FileNotFoundError):
            raise
        raise IdxFormatError(f"{path}: cannot read ({e})") from e
    return _parse(raw, path)


def _parse(raw: bytes, path: Path) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise IdxFormatError(f"{path}: bad IDX magic number {raw[:4].hex() or '(empty)'} "
                             f"(expected 0000 + type byte 08/09/0b/0c/0d/0e + ndim)")
    dtype, ndim = np.dtype(_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxFormatError(f"{path}: truncated header ({len(raw)} bytes, {ndim} dims declared)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise IdxFormatError(f"{path}: size mismatch: header declares shape {shape} "
                             f"({expected} bytes in all), file holds {len(raw)} bytes")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)
