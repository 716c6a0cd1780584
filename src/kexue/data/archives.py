"""Reading downloaded archives without trusting them.

Members are read in memory, never extracted. Before anything is read, every entry of the archive
is checked: an absolute name, a ``..`` component, a drive letter or backslash, a symbolic link
(zip: a Unix mode with S_IFLNK) or any non-regular entry rejects the whole archive with a
``DataError`` naming it, since such an archive cannot come from the official publisher.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from kexue.errors import DataError

MAX_MEMBER_BYTES = 4 << 30  # a zip bomb guard: no member of a real dataset is larger


def unsafe_reason(name: str) -> str | None:
    """Why an archive entry name could escape the target folder, or None."""
    if not name or "\x00" in name:
        return "empty name or NUL byte"
    if "\\" in name or (len(name) > 1 and name[1] == ":"):
        return "a Windows path"
    path = PurePosixPath(name)
    if path.is_absolute():
        return "an absolute path"
    if ".." in path.parts:
        return "a '..' component"
    return None


def check_zip(zf: zipfile.ZipFile, source: str, max_total: int | None = None) -> None:
    """Every entry is safe; with ``max_total``, the declared uncompressed sizes add up to at most
    that many bytes (zipfile never inflates a member past its declared size)."""
    total = sum(info.file_size for info in zf.infolist())
    if max_total is not None and total > max_total:
        raise DataError(f"{source}: declares {total:,} bytes uncompressed, more than the "
                        f"{max_total:,} allowed (a zip bomb?); refusing to read the archive")
    for info in zf.infolist():
        reason = unsafe_reason(info.filename)
        mode = info.external_attr >> 16
        if reason is None and mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            reason = "a link or special file"
        if reason is None and info.file_size > MAX_MEMBER_BYTES:
            reason = f"{info.file_size} bytes uncompressed"
        if reason:
            raise DataError(f"{source}: unsafe archive entry {info.filename!r} ({reason}); "
                            f"refusing to read the archive")


def check_tar(tf: tarfile.TarFile, source: str) -> None:
    for info in tf.getmembers():
        reason = unsafe_reason(info.name)
        if reason is None and not (info.isfile() or info.isdir()):
            reason = "a link or special file"
        if reason is None and info.size > MAX_MEMBER_BYTES:
            reason = f"{info.size} bytes"
        if reason:
            raise DataError(f"{source}: unsafe archive entry {info.name!r} ({reason}); "
                            f"refusing to read the archive")


def read_tar(path: Path, wanted) -> dict[str, bytes]:
    """The bytes of the regular members of a checked tar (any compression) for which
    ``wanted(name)`` is true; a truncated or malformed archive is a ``DataError`` naming it."""
    try:
        with tarfile.open(path, "r:*") as tf:
            check_tar(tf, str(path))
            return {m.name: tf.extractfile(m).read() for m in tf.getmembers()
                    if m.isfile() and wanted(m.name)}
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DataError(f"{path}: not a readable tar archive ({e})") from None


def zip_names(path: Path) -> list[str]:
    """The regular files of a checked zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            check_zip(zf, str(path))
            return [i.filename for i in zf.infolist() if not i.is_dir()]
    except zipfile.BadZipFile as e:
        raise DataError(f"{path}: not a zip archive ({e})") from None


def read_zip_member(path: Path, member: str) -> bytes:
    """The bytes of one member of a checked zip (``member`` may also name a path suffix, e.g.
    ``me_test.ann.json`` for ``WebQA.v1.0/me_test.ann.json``)."""
    try:
        with zipfile.ZipFile(path) as zf:
            check_zip(zf, str(path))
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
            matches = [n for n in names if n == member or n.endswith("/" + member)]
            if len(matches) != 1:
                raise DataError(f"{path}: expected one member named {member!r}, found "
                                f"{len(matches)} (members: {names[:10]})")
            return zf.read(matches[0])
    except zipfile.BadZipFile as e:
        raise DataError(f"{path}: not a zip archive ({e})") from None
