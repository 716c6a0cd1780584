"""Materialise a dataset of the registry into its folder (``data/raw/<name>/``).

* ``remote``: download every file from its official URLs (tried in order) or from a mirror
  (``<mirror>/<dataset>/<file>``; a folder or an http(s) URL), verify it, rename it into place.
  With a user folder (``data_dirs.<name>``) nothing is downloaded: the files there are verified
  and ``source.json`` points at them.
* ``local``: ``source.json`` points at the user folder (the article checks the format).
* ``embedded``: the registry's generator writes the files.

Every dataset folder gets a ``PROVENANCE.json`` saying where each file came from ("official",
"mirror", "mirror subset", "user folder" or "embedded") and which hash was verified.

A mirror that lacks a dataset's official files may hold a partial, derived copy in
``<mirror>/<dataset>-subset/``: for a dataset whose registry entry lists ``mirror_subset``, those
files are fetched instead (verified against their own sha256), with a warning and
``source: "mirror subset"``. The official URLs never fall back to a subset.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import logging
import os
import shutil
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import pooch
from tqdm import tqdm  # not tqdm.auto, which warns inside the report notebooks

from kexue.data.registry import Dataset, RemoteFile, get_dataset
from kexue.errors import ConfigError, DataError, UserError
from kexue.io import atomic_path, read_json, write_json

log = logging.getLogger(__name__)

SOURCE_JSON = "source.json"
PROVENANCE_JSON = "PROVENANCE.json"
_CHUNK = 1 << 20
_URL_SCHEMES = ("http", "https", "ftp", "sftp")
_TIMEOUT_S = 60
SUBSET_SUFFIX = "-subset"  # <mirror>/<dataset>-subset/: a partial, derived copy


class ChecksumError(DataError):
    """A file does not match the registry; the message names it, its source and both hashes."""


class DownloadError(UserError, OSError):
    """No source could deliver a file; the message names every location tried."""


class MissingFile(DataError, FileNotFoundError):
    """A file the dataset needs is not where it should be; the message names it."""


# --- public API ---------------------------------------------------------------------------------


def fetch_dataset(name: str, dest: Path, *, mirror: str | None = None,
                  local_dir: Path | None = None, progress: bool = True) -> None:
    """Download and verify a ``remote`` dataset into ``dest``, or point ``dest`` at a user
    folder (``local_dir``: required for ``local`` datasets, verified for ``remote`` ones)."""
    ds = get_dataset(name)
    if ds.kind == "embedded":
        raise ValueError(f"dataset {name!r} is embedded: use generate_dataset()")
    if ds.kind == "local" or local_dir is not None:
        _use_user_folder(ds, Path(dest), local_dir)
    else:
        _download(ds, Path(dest), mirror, progress)


def dataset_files(raw_dir: Path) -> Path:
    """The folder that holds a dataset's files: ``raw_dir``, or the user folder it points at."""
    raw_dir = Path(raw_dir)
    pointer = raw_dir / SOURCE_JSON
    if not pointer.exists():
        return raw_dir
    where = read_json(pointer)
    if not isinstance(where, dict) or not isinstance(where.get("folder"), str):
        raise DataError(f"{pointer}: expected {{\"folder\": \"<path>\"}} (rerun the download "
                        f"stage to rewrite it)")
    folder = Path(where["folder"])
    if not folder.is_dir():
        raise MissingFile(f"{pointer} points at {folder}, which is not a folder (moved? "
                                f"fix data_dirs in params.yaml and rerun the download stage)")
    return folder


def generate_dataset(name: str, dest: Path) -> None:
    """Run an ``embedded`` dataset's generator in a temporary sibling folder, then rename it
    to ``dest`` (replacing an earlier one)."""
    ds = get_dataset(name)
    if ds.kind != "embedded" or not ds.generator:
        raise ValueError(f"dataset {name!r} is {ds.kind}, not embedded: use fetch_dataset()")
    generator = _load_generator(ds.generator)
    with _staged_dir(Path(dest)) as tmp:
        generator(tmp)
        files = [{"name": p.name, "source": "embedded", "from": ds.generator,
                  "algorithm": "sha256", "hash": pooch.file_hash(str(p), alg="sha256")}
                 for p in sorted(tmp.iterdir()) if p.is_file()]
        _write_provenance(ds, tmp, "embedded", files, generator=ds.generator)


def materialise(name: str, dest: Path, mirror: str | None = None,
                local_dir: Path | None = None) -> None:
    """The download/generate stage: build ``dest`` afresh (from a mirror or a user folder when
    given).

    A failed run leaves an earlier ``dest`` as it was."""
    if get_dataset(name).kind == "embedded":
        generate_dataset(name, dest)
        return
    with _staged_dir(Path(dest)) as tmp:
        fetch_dataset(name, tmp, mirror=mirror, local_dir=local_dir)


def verify_file(path: Path, rf: RemoteFile, origin: str) -> dict[str, Any]:
    """Check ``path`` against the registry entry ``rf``; ``origin`` (where it came from) goes
    into the error message. Returns what was verified, for PROVENANCE.json.

    The file's sha256 (else md5) and size must match. A ``.gz`` with ``sha256_uncompressed``
    also passes when its decompressed bytes match: a recompressed copy of the official data.
    """
    algorithm, expected = ("sha256", rf.sha256) if rf.sha256 else ("md5", rf.md5)
    if expected is None and rf.record_sha256:
        actual = pooch.file_hash(str(path), alg="sha256")
        log.warning("%s from %s: no published checksum; recording sha256 %s", rf.name, origin,
                    actual)
        return {"algorithm": "sha256", "hash": actual,
                "verified": "recorded at first download (no published checksum)"}
    if expected is None:
        raise ChecksumError(f"{rf.name}: the registry has no checksum for it; refusing to use "
                            f"unverified data from {origin}")
    actual = pooch.file_hash(str(path), alg=algorithm)
    size = Path(path).stat().st_size
    problems = []
    if actual != expected.lower():
        problems.append(f"{algorithm} expected {expected}, got {actual}")
    if rf.size is not None and size != rf.size:
        problems.append(f"size expected {rf.size} bytes, got {size} bytes")
    if not problems:
        return {"algorithm": algorithm, "hash": actual, "verified": "file"}
    if rf.sha256_uncompressed:
        content = _content_sha256(path)
        if content == rf.sha256_uncompressed.lower():
            note = (f"the .gz container differs from the official file ({'; '.join(problems)}), "
                    f"but its decompressed content matches the official sha256")
            log.warning("%s from %s: %s %s: content verified", rf.name, origin, note, content)
            return {"algorithm": "sha256", "hash": content, "verified": "decompressed content",
                    f"container_{algorithm}": actual, "note": note}
        problems.append(f"decompressed sha256 expected {rf.sha256_uncompressed}, got {content}")
    raise ChecksumError(f"{rf.name} from {origin}: checksum mismatch: {'; '.join(problems)}")


# --- remote: download or copy --------------------------------------------------------------------


def _download(ds: Dataset, dest: Path, mirror: str | None, progress: bool) -> None:
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    placed: list[Path] = []
    try:
        try:
            entries = []
            for rf in ds.files:
                entries.append(_fetch_file(ds, rf, dest, mirror, progress))
                placed.append(dest / rf.name)
            source, extra = ("mirror" if mirror else "official"), {}
        except FileNotFoundError as missing:
            # Only a mirror that lacks the official files falls back, and only to a subset it has.
            if not (mirror and ds.mirror_subset and _has_subset(mirror, ds.name)):
                raise
            _take_back(placed)  # never mix official files with the subset
            entries, extra = _fetch_subset(ds, dest, mirror, progress, placed, missing)
            source = "mirror subset"
        (dest / SOURCE_JSON).unlink(missing_ok=True)  # a stale pointer would hide these files
        _write_provenance(ds, dest, source, entries, **extra)
    except BaseException:
        # A dataset is usable only whole: take back the files this call placed.
        _take_back(placed)
        if created and not any(dest.iterdir()):
            dest.rmdir()
        raise


def _take_back(placed: list[Path]) -> None:
    for path in placed:
        path.unlink(missing_ok=True)
    placed.clear()


def _has_subset(mirror: str, name: str) -> bool:
    """Whether the mirror may hold ``<name>-subset/`` (an http(s) mirror: tried, not listed)."""
    if urlparse(str(mirror)).scheme in _URL_SCHEMES:
        return True
    try:
        return Path(_mirror_location(mirror, name + SUBSET_SUFFIX, "")).is_dir()
    except FileNotFoundError:  # no mirror folder at all
        return False


def _fetch_subset(ds: Dataset, dest: Path, mirror: str, progress: bool, placed: list[Path],
                  missing: FileNotFoundError) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    folder = _mirror_location(mirror, ds.name + SUBSET_SUFFIX, "").rstrip("/")
    official = ", ".join(rf.name for rf in ds.files)
    subset = ", ".join(rf.name for rf in ds.mirror_subset)
    note = (f"PARTIAL, DERIVED copy from the mirror's {ds.name}{SUBSET_SUFFIX}/ ({subset}): "
            f"not the official dataset and not byte-identical to the official {official}; "
            f"verified against the mirror's SHA256SUMS, not the official checksums. Results "
            f"on it are not comparable with the full dataset.")
    log.warning("%s: the mirror lacks the official files (%s). Falling back to the mirror "
                "subset %s/: %s", ds.name, missing, folder, note)
    entries = []
    for rf in ds.mirror_subset:
        where = _mirror_location(mirror, ds.name + SUBSET_SUFFIX, rf.name)
        try:
            entries.append(_get_verified(rf, where, "mirror subset", dest, progress))
        except FileNotFoundError as e:
            raise MissingFile(f"{missing}; the fallback mirror subset is incomplete "
                                    f"too: {e}") from missing
        placed.append(dest / rf.name)
    return entries, {"note": note, "official_files_missing": str(missing),
                     "official_files": [rf.name for rf in ds.files]}


def _fetch_file(ds: Dataset, rf: RemoteFile, dest: Path, mirror: str | None,
                progress: bool) -> dict[str, Any]:
    if mirror:
        return _get_verified(rf, _mirror_location(mirror, ds.name, rf.name), "mirror", dest,
                             progress)
    failures: list[Exception] = []
    for url in rf.urls:
        try:
            return _get_verified(rf, url, "official", dest, progress)
        except (OSError, ValueError) as e:  # a host may be down or serve a bad copy: try the next
            log.warning("%s", e)
            failures.append(e)
    listing = "\n".join(f"  {e}" for e in failures) or "  (the registry lists no URL)"
    if any(isinstance(e, ChecksumError) for e in failures):
        raise ChecksumError(f"{rf.name}: no official URL gave a verified file:\n{listing}")
    raise DownloadError(f"{rf.name}: every official URL failed:\n{listing}")


def _get_verified(rf: RemoteFile, where: str, kind: str, dest: Path,
                  progress: bool) -> dict[str, Any]:
    # atomic_path: a temporary name in dest, renamed only after verification, removed on error.
    with atomic_path(dest / rf.name) as tmp:
        _retrieve(where, tmp, progress)
        check = verify_file(tmp, rf, origin=f"{kind} {where}")
    log.info("%s: %s verified (%s %s)", rf.name, check["verified"], kind, where)
    return {"name": rf.name, "source": kind, "from": where, **check}


def _retrieve(where: str, tmp: Path, progress: bool) -> None:
    if urlparse(where).scheme in _URL_SCHEMES:
        _download_url(where, tmp, progress)
    else:
        _copy_file(Path(where), tmp, progress)


def _download_url(url: str, tmp: Path, progress: bool) -> None:
    import requests

    if urlparse(url).scheme in ("http", "https"):
        downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=_CHUNK,
                                          timeout=_TIMEOUT_S)
    else:
        downloader = pooch.choose_downloader(url, progressbar=progress)
    try:
        downloader(url, str(tmp), None)
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 404:
            raise MissingFile(f"{url}: not found (HTTP 404)") from e
        raise DownloadError(f"{url}: download failed ({e})") from e
    except requests.RequestException as e:
        raise DownloadError(f"{url}: download failed ({e})") from e


def _copy_file(src: Path, tmp: Path, progress: bool) -> None:
    # pooch has no file:// support: copy from a folder mirror ourselves.
    if not src.is_file():
        raise MissingFile(f"{src}: no such file in the mirror "
                                f"(a mirror holds <dataset>/<file>)")
    with (src.open("rb") as fin, tmp.open("wb") as fout,
          tqdm.wrapattr(fin, "read", total=src.stat().st_size, desc=src.name,
                        disable=not progress) as wrapped):
        shutil.copyfileobj(wrapped, fout, _CHUNK)


def _mirror_location(mirror: str, dataset: str, fname: str) -> str:
    parsed = urlparse(str(mirror))
    if parsed.scheme in _URL_SCHEMES:
        return f"{str(mirror).rstrip('/')}/{dataset}/{fname}"
    root = Path(url2pathname(parsed.path) if parsed.scheme == "file" else mirror).expanduser()
    if not root.is_dir():
        raise MissingFile(f"mirror {mirror}: no such folder (set by KEXUE_DATA_MIRROR or "
                                f"`mirror` in params.yaml)")
    return str(root.resolve() / dataset / fname)


def _content_sha256(path: Path) -> str:
    """sha256 of a gzip file's decompressed bytes, or why there are none."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as e:  # not gzip, or truncated
        return f"no valid gzip stream ({e})"
    return digest.hexdigest()


# --- user folders ---------------------------------------------------------------------------------


def _use_user_folder(ds: Dataset, dest: Path, local_dir: Path | None) -> None:
    folder = _user_folder(ds, local_dir)
    missing = [name for name in ds.required if not (folder / name).exists()]
    if missing:
        raise MissingFile(f"data_dirs.{ds.name} = {folder} lacks {', '.join(missing)} (the "
                          f"official layout of {ds.description})")
    entries = []
    for rf in ds.files:
        path = folder / rf.name
        if not path.is_file():
            raise MissingFile(
                f"{path}: missing from data_dirs.{ds.name} = {folder} (it must hold the "
                f"official files: {', '.join(f.name for f in ds.files)})")
        check = verify_file(path, rf, origin=f"user folder {folder}")
        entries.append({"name": rf.name, "source": "user folder", "from": str(path), **check})
    dest.mkdir(parents=True, exist_ok=True)
    write_json(dest / SOURCE_JSON, {"folder": str(folder), "verified": [e["name"] for e in entries]})
    extra = {} if ds.files else {"note": "format checks are done when the article reads it"}
    _write_provenance(ds, dest, "user folder", entries, folder=str(folder), **extra)


def _user_folder(ds: Dataset, local_dir: Path | None) -> Path:
    key = f"data_dirs.{ds.name}"
    if local_dir is None:
        raise ConfigError(
            f"dataset {ds.name!r} ({ds.description}) cannot be downloaded: set {key} in "
            f"params.yaml to the folder that holds its files")
    folder = Path(local_dir).expanduser()
    if not folder.is_dir():
        raise MissingFile(f"{key} = {local_dir}: no such folder")
    return folder.resolve()


# --- helpers --------------------------------------------------------------------------------------


def _write_provenance(ds: Dataset, dest: Path, source: str, files: list[dict],
                      **extra: Any) -> None:
    write_json(dest / PROVENANCE_JSON, {
        "dataset": ds.name, "kind": ds.kind, "description": ds.description, "source": source,
        "files": files, "citation": ds.citation, "licence": ds.licence,
        "notes": list(ds.notes), **extra})


def _load_generator(spec: str):
    module, sep, func = spec.partition(":")
    if not sep or not module or not func:
        raise ValueError(f"generator {spec!r}: expected 'module:function'")
    try:
        return getattr(importlib.import_module(module), func)
    except AttributeError:
        raise ValueError(f"generator {spec!r}: module {module} has no {func}") from None


@contextmanager
def _staged_dir(dest: Path):
    """Yield a fresh sibling folder of ``dest``; on success it replaces ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private
        _replace_dir(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _replace_dir(new: Path, dest: Path) -> None:
    if not (dest.exists() or dest.is_symlink()):
        os.replace(new, dest)
        return
    # A folder cannot be renamed over a non-empty one: move the old one aside first.
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
    aside = old / dest.name
    os.replace(dest, aside)
    try:
        os.replace(new, dest)
    except BaseException:
        os.replace(aside, dest)
        raise
    finally:
        shutil.rmtree(old)
