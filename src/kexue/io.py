"""Atomic file writes: every artefact is written to a temporary name, then renamed."""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kexue.errors import DataError, UserError

_UMASK = os.umask(0)
os.umask(_UMASK)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFull(UserError):
    """A write ran out of space; the message names the file, and the earlier file is intact."""


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name keeps the suffix: tools such as papermill check it
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
    except OSError as e:
        if e.errno not in _DISK_FULL:
            raise
        before = "its earlier version is unchanged" if path.exists() else "nothing was written"
        raise DiskFull(f"cannot write {path}: {os.strerror(e.errno)} ({before})") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_bytes(path, (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """torch.save into memory first: the archive then carries no temporary file name, so the
    same content always gives the same bytes (and the same DVC hash)."""
    import torch  # here, not at the top: Snakemake imports this module while parsing the DAG

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def load_torch(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    import torch

    # weights_only: checkpoints hold tensors, numbers, strings and plain containers only.
    return torch.load(path, map_location=map_location, weights_only=True)
