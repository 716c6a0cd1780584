"""Dataset fetching and verification, on the real offline mirror (../shared/datasets)."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from conftest import MIRROR
from kexue.data import registry
from kexue.data.fetch import (
    ChecksumError,
    DownloadError,
    MissingFile,
    dataset_files,
    fetch_dataset,
    materialise,
)
from kexue.data.idx import IdxFormatError, read_idx
from kexue.data.registry import Dataset, RemoteFile
from kexue.errors import ConfigError, DataError, UserError

MNIST = registry.get_dataset("mnist")
MNIST_FILES = [f.name for f in MNIST.files]
TRAIN_IMAGES, _, _, TEST_LABELS = MNIST_FILES

needs_mirror = pytest.mark.skipif(
    not all((MIRROR / "mnist" / f).is_file() for f in MNIST_FILES),
    reason=f"the offline dataset mirror with the 4 MNIST files is not at {MIRROR}")

SHAPES = {"train-images-idx3-ubyte.gz": (60000, 28, 28), "train-labels-idx1-ubyte.gz": (60000,),
          "t10k-images-idx3-ubyte.gz": (10000, 28, 28), "t10k-labels-idx1-ubyte.gz": (10000,)}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def provenance(folder: Path) -> dict:
    return json.loads((folder / "PROVENANCE.json").read_text())


def leftovers(folder: Path) -> list[str]:
    """Everything under folder (temporary files included)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path, request) -> str:
    """Serve folder over HTTP on 127.0.0.1 in a thread until the requesting fixture ends."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()
        thread.join()

    request.addfinalizer(stop)
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def http_mirror(request):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1")  # never send the local server through a proxy
        yield serve(MIRROR, request)


@pytest.fixture
def http_folder(request, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    return lambda folder: serve(folder, request)


@pytest.fixture
def tmp_mirror(tmp_path):
    """A writable mirror: links to the real MNIST files, to be replaced by bad copies."""
    root = (tmp_path / "mirror").resolve()
    (root / "mnist").mkdir(parents=True)
    for name in MNIST_FILES:
        (root / "mnist" / name).symlink_to(MIRROR / "mnist" / name)
    return root


def replace_with(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


# --- MNIST from the real mirror -----------------------------------------------------------------


@needs_mirror
def test_fetch_mnist_from_folder_mirror(tmp_path):
    dest = tmp_path / "raw" / "mnist"
    fetch_dataset("mnist", dest, mirror=str(MIRROR), progress=False)

    assert leftovers(tmp_path / "raw") == sorted(["mnist", *(f"mnist/{f}" for f in
                                                              [*MNIST_FILES, "PROVENANCE.json"])])
    assert dataset_files(dest) == dest
    for name, shape in SHAPES.items():
        array = read_idx(dest / name)
        assert array.shape == shape and array.dtype == np.uint8
    prov = provenance(dest)
    assert prov["source"] == "mirror"
    files = {f["name"]: f for f in prov["files"]}
    # The mirror's train images are recompressed: accepted on their decompressed content.
    assert files[TRAIN_IMAGES]["verified"] == "decompressed content"
    assert files[TRAIN_IMAGES]["hash"] == MNIST.files[0].sha256_uncompressed
    assert all(files[n]["verified"] == "file" for n in MNIST_FILES[1:])
    assert files[TEST_LABELS]["from"] == str(MIRROR.resolve() / "mnist" / TEST_LABELS)


@needs_mirror
def test_fetch_mnist_over_http(tmp_path, http_mirror):
    dest = tmp_path / "mnist"
    fetch_dataset("mnist", dest, mirror=http_mirror + "/", progress=False)
    for name in MNIST_FILES:
        assert (dest / name).read_bytes() == (MIRROR / "mnist" / name).read_bytes()
    assert read_idx(dest / TEST_LABELS).shape == (10000,)
    files = {f["name"]: f for f in provenance(dest)["files"]}
    assert files[TEST_LABELS]["from"] == f"{http_mirror}/mnist/{TEST_LABELS}"


@needs_mirror
def test_corrupt_mnist_file_is_rejected_and_nothing_left(tmp_path, tmp_mirror):
    # The last file is bad: the three verified before it must be taken back too.
    bad = tmp_mirror / "mnist" / TEST_LABELS
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    replace_with(bad, bytes(data))
    dest = tmp_path / "raw" / "mnist"

    with pytest.raises(ChecksumError) as err:
        fetch_dataset("mnist", dest, mirror=str(tmp_mirror), progress=False)
    msg = str(err.value)
    assert TEST_LABELS in msg and str(bad) in msg
    assert MNIST.files[3].sha256 in msg and sha256(bytes(data)) in msg
    assert leftovers(tmp_path / "raw") == []


@needs_mirror
def test_corrupt_train_images_fails_both_container_and_content(tmp_path, tmp_mirror):
    bad = tmp_mirror / "mnist" / TRAIN_IMAGES
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0x01
    replace_with(bad, bytes(data))

    with pytest.raises(ChecksumError, match="decompressed sha256 expected") as err:
        fetch_dataset("mnist", tmp_path / "mnist", mirror=str(tmp_mirror), progress=False)
    msg = str(err.value)
    assert TRAIN_IMAGES in msg and MNIST.files[0].sha256 in msg and sha256(bytes(data)) in msg
    assert MNIST.files[0].sha256_uncompressed in msg
    assert leftovers(tmp_path / "mnist") == []


@needs_mirror
def test_materialise_keeps_old_dest_on_failure_and_replaces_it_on_success(tmp_path, tmp_mirror):
    dest = tmp_path / "raw" / "mnist"
    dest.mkdir(parents=True)
    (dest / "stale.txt").write_text("from an earlier run")
    bad = tmp_mirror / "mnist" / TEST_LABELS
    replace_with(bad, bad.read_bytes()[:-10])  # truncated

    with pytest.raises(ChecksumError, match="size expected 4542 bytes, got 4532 bytes"):
        materialise("mnist", dest, mirror=str(tmp_mirror))
    assert leftovers(tmp_path / "raw") == ["mnist", "mnist/stale.txt"]

    materialise("mnist", dest, mirror=str(MIRROR))
    assert leftovers(tmp_path / "raw") == sorted(
        ["mnist", *(f"mnist/{f}" for f in [*MNIST_FILES, "PROVENANCE.json"])])


@needs_mirror
def test_missing_file_in_mirror_folder(tmp_path, tmp_mirror):
    missing = tmp_mirror / "mnist" / TEST_LABELS
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        fetch_dataset("mnist", tmp_path / "mnist", mirror=str(tmp_mirror), progress=False)
    assert leftovers(tmp_path / "mnist") == []


def test_missing_mirror_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        fetch_dataset("mnist", tmp_path / "mnist", mirror=str(tmp_path / "nowhere"))


@needs_mirror
def test_missing_file_over_http(tmp_path, http_mirror):
    with pytest.raises(FileNotFoundError, match=r"nowhere/mnist/train-images.*HTTP 404"):
        fetch_dataset("mnist", tmp_path / "mnist", mirror=f"{http_mirror}/nowhere",
                      progress=False)
    assert leftovers(tmp_path / "mnist") == []


# --- mirror subsets (cifar10, celeba) ------------------------------------------------------------

CIFAR10, CELEBA = registry.get_dataset("cifar10"), registry.get_dataset("celeba")
CIFAR_SUBSET, CELEBA_SUBSET = CIFAR10.mirror_subset[0].name, CELEBA.mirror_subset[0].name

needs_subsets = pytest.mark.skipif(
    not ((MIRROR / "cifar10-subset" / CIFAR_SUBSET).is_file()
         and (MIRROR / "celeba-subset" / CELEBA_SUBSET).is_file()),
    reason=f"the offline dataset mirror with cifar10-subset/ and celeba-subset/ is not at {MIRROR}")


def mirror_sha256sums(folder: Path) -> dict[str, str]:
    lines = (folder / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split(None, 1) for line in lines if line)}


@needs_subsets
@pytest.mark.parametrize("ds", [CIFAR10, CELEBA], ids=["cifar10", "celeba"])
def test_registry_subset_hashes_match_the_mirror_sha256sums(ds):
    sums = mirror_sha256sums(MIRROR / f"{ds.name}-subset")
    for rf in ds.mirror_subset:
        assert rf.urls == () and rf.sha256 == sums[rf.name]
        assert rf.size == (MIRROR / f"{ds.name}-subset" / rf.name).stat().st_size


@needs_subsets
def test_cifar10_falls_back_to_the_mirror_subset(tmp_path, caplog):
    assert not (MIRROR / "cifar10" / CIFAR10.files[0].name).exists()  # the mirror lacks it
    dest = tmp_path / "raw" / "cifar10"
    fetch_dataset("cifar10", dest, mirror=str(MIRROR), progress=False)

    assert leftovers(tmp_path / "raw") == ["cifar10", "cifar10/PROVENANCE.json",
                                           f"cifar10/{CIFAR_SUBSET}"]
    assert (dest / CIFAR_SUBSET).read_bytes() == (MIRROR / "cifar10-subset" / CIFAR_SUBSET
                                                  ).read_bytes()
    prov = provenance(dest)
    assert prov["source"] == "mirror subset"
    assert "PARTIAL, DERIVED" in prov["note"] and "not byte-identical" in prov["note"]
    assert prov["official_files"] == ["cifar-10-binary.tar.gz"]
    assert "cifar-10-binary.tar.gz" in prov["official_files_missing"]
    [entry] = prov["files"]
    assert entry == {"name": CIFAR_SUBSET, "source": "mirror subset",
                     "from": str(MIRROR.resolve() / "cifar10-subset" / CIFAR_SUBSET),
                     "algorithm": "sha256", "hash": CIFAR10.mirror_subset[0].sha256,
                     "verified": "file"}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("Falling back to the mirror subset" in w and "PARTIAL" in w for w in warnings)


@needs_subsets
def test_celeba_falls_back_to_the_verified_subset_tarball(tmp_path):
    dest = tmp_path / "celeba"
    fetch_dataset("celeba", dest, mirror=str(MIRROR), progress=False)
    assert sorted(p.name for p in dest.iterdir()) == ["PROVENANCE.json", CELEBA_SUBSET]
    prov = provenance(dest)
    assert prov["source"] == "mirror subset" and "img_align_celeba.zip" in prov["note"]
    [entry] = prov["files"]
    assert entry["name"] == CELEBA_SUBSET and entry["verified"] == "file"
    assert entry["hash"] == mirror_sha256sums(MIRROR / "celeba-subset")[CELEBA_SUBSET]


@needs_subsets
def test_cifar10_subset_over_http(tmp_path, http_mirror):
    dest = tmp_path / "cifar10"
    fetch_dataset("cifar10", dest, mirror=http_mirror, progress=False)
    prov = provenance(dest)
    assert prov["source"] == "mirror subset" and "HTTP 404" in prov["official_files_missing"]
    assert prov["files"][0]["from"] == f"{http_mirror}/cifar10-subset/{CIFAR_SUBSET}"


@needs_subsets
def test_corrupt_subset_is_rejected_and_nothing_left(tmp_path):
    root = (tmp_path / "mirror").resolve()
    (root / "cifar10-subset").mkdir(parents=True)
    bad = root / "cifar10-subset" / CIFAR_SUBSET
    data = bytearray((MIRROR / "cifar10-subset" / CIFAR_SUBSET).read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    dest = tmp_path / "raw" / "cifar10"

    with pytest.raises(ChecksumError) as err:
        fetch_dataset("cifar10", dest, mirror=str(root), progress=False)
    msg = str(err.value)
    assert f"{CIFAR_SUBSET} from mirror subset {bad}" in msg
    assert CIFAR10.mirror_subset[0].sha256 in msg and sha256(bytes(data)) in msg
    assert leftovers(tmp_path / "raw") == []


def test_no_subset_folder_keeps_the_missing_file_error(tmp_path):
    (tmp_path / "mirror").mkdir()
    with pytest.raises(FileNotFoundError, match=r"cifar10/cifar-10-binary\.tar\.gz: no such file"):
        fetch_dataset("cifar10", tmp_path / "d", mirror=str(tmp_path / "mirror"), progress=False)
    assert leftovers(tmp_path / "d") == []


@pytest.fixture
def tiny_with_subset(tmp_path, tiny, monkeypatch):
    """The tiny dataset with a mirror subset (part.bin) in <mirror>/tiny-subset/."""
    part = b"a partial, derived copy\n"
    (tiny.mirror / "tiny-subset").mkdir()
    (tiny.mirror / "tiny-subset" / "part.bin").write_bytes(part)

    def register(urls=lambda name: (f"http://127.0.0.1:9/{name}",)):
        tiny.register(urls)
        monkeypatch.setitem(registry.DATASETS, "tiny", dataclasses.replace(
            registry.DATASETS["tiny"],
            mirror_subset=(RemoteFile("part.bin", (), sha256=sha256(part), size=len(part)),)))

    register()
    tiny.register_with_subset = register
    return tiny


def test_mirror_with_the_official_files_ignores_the_subset(tmp_path, tiny_with_subset):
    fetch_dataset("tiny", tmp_path / "d", mirror=str(tiny_with_subset.mirror), progress=False)
    assert provenance(tmp_path / "d")["source"] == "mirror"
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["PROVENANCE.json", "a.bin",
                                                                  "b.gz"]


def test_partial_official_files_are_taken_back_before_the_subset(tmp_path, tiny_with_subset):
    (tiny_with_subset.mirror / "tiny" / "b.gz").unlink()  # a.bin is fetched, then b.gz is missing
    fetch_dataset("tiny", tmp_path / "d", mirror=str(tiny_with_subset.mirror), progress=False)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["PROVENANCE.json", "part.bin"]
    assert provenance(tmp_path / "d")["source"] == "mirror subset"


def test_official_urls_never_fall_back_to_a_subset(tmp_path, tiny_with_subset, http_folder):
    url = http_folder(tiny_with_subset.mirror)
    tiny_with_subset.register_with_subset(lambda name: (f"{url}/gone/{name}",))
    with pytest.raises(DownloadError, match="every official URL failed"):
        fetch_dataset("tiny", tmp_path / "d", progress=False)
    assert leftovers(tmp_path / "d") == []


# --- user folders -------------------------------------------------------------------------------


@needs_mirror
def test_remote_dataset_from_user_folder(tmp_path):
    folder = MIRROR / "mnist"  # the official layout
    dest = tmp_path / "mnist"
    fetch_dataset("mnist", dest, local_dir=folder)

    assert sorted(p.name for p in dest.iterdir()) == ["PROVENANCE.json", "source.json"]
    source = json.loads((dest / "source.json").read_text())
    assert source == {"folder": str(folder.resolve()), "verified": MNIST_FILES}
    assert dataset_files(dest) == folder.resolve()
    assert read_idx(dataset_files(dest) / TEST_LABELS).shape == (10000,)
    assert provenance(dest)["source"] == "user folder"


@needs_mirror
def test_user_folder_is_verified(tmp_path, tmp_mirror):
    bad = tmp_mirror / "mnist" / TEST_LABELS
    replace_with(bad, bad.read_bytes()[:100])
    with pytest.raises(ChecksumError, match=f"{TEST_LABELS} from user folder"):
        fetch_dataset("mnist", tmp_path / "dest", local_dir=tmp_mirror / "mnist")
    bad.unlink()
    with pytest.raises(FileNotFoundError, match="missing from data_dirs.mnist"):
        fetch_dataset("mnist", tmp_path / "dest", local_dir=tmp_mirror / "mnist")
    assert not (tmp_path / "dest").exists()


def test_local_dataset_needs_data_dirs(tmp_path):
    with pytest.raises(ConfigError, match="data_dirs.tianchi_spectra"):
        fetch_dataset("tianchi_spectra", tmp_path / "t")
    with pytest.raises(ConfigError, match="data_dirs.tianchi_spectra"):
        materialise("tianchi_spectra", tmp_path / "t")
    with pytest.raises(DataError, match="data_dirs.tianchi_spectra.*no such folder"):
        materialise("tianchi_spectra", tmp_path / "t", local_dir=tmp_path / "absent")
    assert leftovers(tmp_path) == []


def test_local_dataset_points_at_user_folder(tmp_path):
    folder = tmp_path / "tianchi"
    (folder / "first_train_data_20180131").mkdir(parents=True)
    dest = tmp_path / "raw" / "tianchi_spectra"
    with pytest.raises(DataError, match="lacks first_train_index_20180131.csv"):
        materialise("tianchi_spectra", dest, local_dir=folder)  # not the official layout
    (folder / "first_train_index_20180131.csv").write_text("id,type\n")
    materialise("tianchi_spectra", dest, local_dir=folder)
    assert dataset_files(dest) == folder.resolve()
    assert provenance(dest)["source"] == "user folder"
    shutil.rmtree(folder)
    with pytest.raises(DataError, match="source.json points at"):
        dataset_files(dest)


@pytest.mark.parametrize("error", [ChecksumError, DownloadError, MissingFile])
def test_fetch_errors_are_user_errors(error):
    # the CLI prints a UserError's one line instead of a traceback
    assert issubclass(error, UserError)


# --- checks on a tiny fake dataset ---------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A fake remote dataset: a.bin (sha256 + size), b.gz (md5 + uncompressed sha256)."""
    content = b"tiny content\n" * 100
    files = {"a.bin": bytes(range(256)) * 4, "b.gz": gzip.compress(content, mtime=1)}
    root = (tmp_path / "mirror").resolve()
    (root / "tiny").mkdir(parents=True)
    for name, data in files.items():
        (root / "tiny" / name).write_bytes(data)

    def register(urls=lambda name: (f"http://127.0.0.1:9/{name}",)):
        monkeypatch.setitem(registry.DATASETS, "tiny", Dataset(
            name="tiny", kind="remote", description="test", files=(
                RemoteFile("a.bin", urls("a.bin"), sha256=sha256(files["a.bin"]), size=1024),
                RemoteFile("b.gz", urls("b.gz"), md5=hashlib.md5(files["b.gz"]).hexdigest(),
                           sha256_uncompressed=sha256(content)))))

    register()
    return type("Tiny", (), {"mirror": root, "files": files, "content": content,
                             "register": staticmethod(register)})


def test_tiny_corrupt_and_truncated(tmp_path, tiny):
    a = tiny.mirror / "tiny" / "a.bin"
    a.write_bytes(tiny.files["a.bin"][:-1] + b"\x00")
    with pytest.raises(ChecksumError) as err:
        fetch_dataset("tiny", tmp_path / "d", mirror=str(tiny.mirror), progress=False)
    assert f"a.bin from mirror {a}" in str(err.value)
    assert sha256(tiny.files["a.bin"]) in str(err.value)
    assert sha256(a.read_bytes()) in str(err.value)

    a.write_bytes(tiny.files["a.bin"][:500])
    with pytest.raises(ChecksumError, match="size expected 1024 bytes, got 500 bytes"):
        fetch_dataset("tiny", tmp_path / "d", mirror=str(tiny.mirror), progress=False)
    assert leftovers(tmp_path / "d") == []


def test_tiny_recompressed_gz_passes_on_content_truncated_gz_fails(tmp_path, tiny, caplog):
    b = tiny.mirror / "tiny" / "b.gz"
    b.write_bytes(gzip.compress(tiny.content, mtime=0))  # other header, same content
    fetch_dataset("tiny", tmp_path / "d", mirror=str(tiny.mirror), progress=False)
    entry = provenance(tmp_path / "d")["files"][1]
    assert entry["verified"] == "decompressed content" and "container_md5" in entry
    assert "container differs" in caplog.text

    b.write_bytes(tiny.files["b.gz"][:-12])
    with pytest.raises(ChecksumError, match="no valid gzip stream"):
        fetch_dataset("tiny", tmp_path / "e", mirror=str(tiny.mirror), progress=False)
    assert leftovers(tmp_path / "e") == []


def test_tiny_official_urls_tried_in_order(tmp_path, tiny, http_folder):
    url = http_folder(tiny.mirror)
    tiny.register(lambda name: (f"{url}/gone/{name}", f"{url}/tiny/{name}"))
    fetch_dataset("tiny", tmp_path / "d", progress=False)
    prov = provenance(tmp_path / "d")
    assert prov["source"] == "official"
    assert [f["from"] for f in prov["files"]] == [f"{url}/tiny/a.bin", f"{url}/tiny/b.gz"]

    tiny.register(lambda name: (f"{url}/gone/{name}", f"{url}/gone2/{name}"))
    with pytest.raises(DownloadError, match=r"(?s)every official URL.*gone/a.bin.*gone2/a.bin"):
        fetch_dataset("tiny", tmp_path / "e", progress=False)
    assert leftovers(tmp_path / "e") == []


# --- idx reader ---------------------------------------------------------------------------------


def test_read_idx_roundtrip_and_errors(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 0x08, 3]) + np.array([2, 3, 4], ">u4").tobytes() + arr.tobytes()
    (tmp_path / "x.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz"), arr)

    (tmp_path / "bad").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(IdxFormatError, match=r"bad.*magic number 1234"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(IdxFormatError, match=r"short.*size mismatch"):
        read_idx(tmp_path / "short")
