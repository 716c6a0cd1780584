"""Reader for the IDX format of the MNIST files (plain or gzip-compressed)."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from kexue.errors import DataError

# Third byte of the magic number -> element type (IDX values are big-endian).
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_BYTES = 4 << 30  # no IDX file of a real dataset is larger: a bigger header is a lie


class IdxFormatError(DataError):
    """The file is not a well-formed IDX file; the message names it."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file; ``.gz`` files are decompressed on the fly. The header
    is checked before the data is read, so a header claiming absurd sizes allocates nothing."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return _parse(f, path)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError, truncated .gz EOF
        if isinstance(e, FileNotFoundError):
            raise
        raise IdxFormatError(f"{path}: cannot read ({e})") from e


def _parse(f, path: Path) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
        raise IdxFormatError(f"{path}: bad IDX magic number {magic.hex() or '(empty)'} "
                             f"(expected 0000 + type byte 08/09/0b/0c/0d/0e + ndim)")
    dtype, ndim = np.dtype(_DTYPES[magic[2]]), magic[3]
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise IdxFormatError(f"{path}: truncated header ({4 + len(dims)} bytes, {ndim} dims "
                             f"declared)")
    shape = tuple(int(d) for d in np.frombuffer(dims, ">u4"))
    n_bytes = dtype.itemsize * int(np.prod(shape, dtype=object))  # exact: no int64 overflow
    if n_bytes > MAX_BYTES:
        raise IdxFormatError(f"{path}: header declares shape {shape} ({n_bytes:,} bytes of "
                             f"data), more than the {MAX_BYTES:,} any real IDX file holds")
    raw = f.read(n_bytes + 1)  # one more byte: trailing data is an error too
    if len(raw) != n_bytes:
        raise IdxFormatError(f"{path}: size mismatch: header declares shape {shape} "
                             f"({4 + 4 * ndim + n_bytes} bytes in all), file holds "
                             f"{'more' if len(raw) > n_bytes else 4 + 4 * ndim + len(raw)} "
                             f"bytes")
    return np.frombuffer(raw, dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)
