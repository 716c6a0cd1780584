"""The fault suite (``pytest -m faults``): disk full, broken checkpoints, hostile and broken
input, unpickling and shell-injection scans, numerical faults. Each test names its fault class
in ``FAULT_CLASS`` order; the summary at the end of the run counts them (see conftest).

Every fault must end in a clear, one-line message naming the file (or key) and the problem, and
must leave no partial file and no lost earlier result.
"""

from __future__ import annotations

import ast
import errno
import gzip
import hashlib
import io
import os
import pickle
import re
import stat
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from kexue import cli, config
from kexue.data import registry
from kexue.data.archives import read_zip_member
from kexue.data.embedded import load_npz
from kexue.data.fetch import dataset_files, materialise
from kexue.data.idx import read_idx
from kexue.data.images import load_image_dataset, read_cifar_records
from kexue.data.registry import Dataset, RemoteFile
from kexue.errors import ConfigError, DataError, UserError
from kexue.io import DiskFull, read_json, write_json
from kexue.training import Checkpointer, NonFiniteLoss, fit

faults = pytest.mark.faults  # faults("class"): the class the summary counts it under
torch.set_num_threads(1)

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).rglob("*") if ".tmp" in p.name)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture
def disk_full(monkeypatch):
    """Every Path.write_bytes (all atomic writes go through it) fails with ENOSPC."""
    def full(self, data):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])  # part of it reached the disk, then no space
        raise OSError(ENOSPC.errno, ENOSPC.strerror, str(self))

    return lambda: monkeypatch.setattr(Path, "write_bytes", full)


# ------------------------------------------------------------------------------ disk full


@faults("Disk full")
def test_disk_full_checkpoint_keeps_the_good_one(tmp_path, disk_full):
    ckpt = Checkpointer(tmp_path, "tag")
    ckpt.save({"step": 2, "w": torch.ones(3)})
    disk_full()
    with pytest.raises(DiskFull) as err:
        ckpt.save({"step": 4, "w": torch.zeros(3)})
    assert str(tmp_path / "last.pt") in str(err.value) and "No space left" in str(err.value)
    assert temporaries(tmp_path) == []
    state = ckpt.load()  # the rotated earlier checkpoint
    assert state["step"] == 2 and torch.equal(state["w"], torch.ones(3))


@faults("Disk full")
def test_disk_full_json_result_keeps_the_earlier_file(tmp_path, disk_full):
    path = tmp_path / "metrics.json"
    write_json(path, {"accuracy": 0.9})
    disk_full()
    with pytest.raises(DiskFull, match=rf"cannot write {re.escape(str(path))}: No space left "
                                       r"on device \(its earlier version is unchanged\)"):
        write_json(path, {"accuracy": 0.1})
    assert read_json(path) == {"accuracy": 0.9}
    assert temporaries(tmp_path) == []


@pytest.fixture
def tiny_remote(tmp_path, monkeypatch):
    """A remote dataset of one file, in a folder mirror."""
    data = bytes(range(256)) * 64
    (tmp_path / "mirror" / "tiny").mkdir(parents=True)
    (tmp_path / "mirror" / "tiny" / "a.bin").write_bytes(data)
    monkeypatch.setitem(registry.DATASETS, "tiny", Dataset(
        name="tiny", kind="remote", description="test", files=(
            RemoteFile("a.bin", (), sha256=hashlib.sha256(data).hexdigest(), size=len(data)),)))
    return tmp_path / "mirror"


@faults("Disk full")
def test_disk_full_download_keeps_the_earlier_dataset(tmp_path, tiny_remote, monkeypatch):
    dest = tmp_path / "raw" / "tiny"
    materialise("tiny", dest, mirror=str(tiny_remote))
    before = {p.name: p.read_bytes() for p in dest.iterdir()}

    def full(fin, fout, length=0):
        fout.write(fin.read(100))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("kexue.data.fetch.shutil.copyfileobj", full)
    with pytest.raises(DiskFull, match=r"cannot write .*a\.bin: No space left on device"):
        materialise("tiny", dest, mirror=str(tiny_remote))
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tiny"]  # no staging folder left


@faults("Disk full")
def test_disk_full_at_the_cli_is_one_line(tmp_path, disk_full, monkeypatch, capsys):
    target = tmp_path / "result.json"
    monkeypatch.setattr("kexue.stages.download", lambda params, dataset: write_json(target, {}))
    disk_full()
    with pytest.raises(SystemExit) as done:
        cli.main(["--params", str(REPO / "params.yaml"), "download", "mnist"])
    assert done.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert str(target) in line and "No space left on device" in line


# ------------------------------------------------------------------------ broken checkpoints


def _two_checkpoints(tmp_path) -> Checkpointer:
    ckpt = Checkpointer(tmp_path, "tag")
    ckpt.save({"step": 4, "w": torch.arange(1000.0)})
    ckpt.save({"step": 8, "w": torch.arange(1000.0) + 1})
    return ckpt


def _flip_tensor_byte(path: Path, tensor: torch.Tensor) -> None:
    data = bytearray(path.read_bytes())
    at = data.find(tensor.numpy().tobytes()[:64])
    assert at > 0
    data[at + 100] ^= 0x01  # one bit of the tensor's data: torch.load does not notice
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def _hostile_pickle(path: Path) -> None:
    class Payload:  # unpickling it would create the marker folder
        def __reduce__(self):
            return os.mkdir, (str(path.parent / "PWNED"),)

    path.write_bytes(pickle.dumps({"tag": "tag", "step": 99, "x": Payload()}))


@faults("Broken checkpoints")
@pytest.mark.parametrize("damage", [_truncate, _garbage, _hostile_pickle, "flip"],
                         ids=["truncated", "garbage", "hostile pickle", "one bit flipped"])
def test_broken_last_checkpoint_falls_back_to_previous(tmp_path, capsys, damage):
    ckpt = _two_checkpoints(tmp_path)
    if damage == "flip":
        _flip_tensor_byte(ckpt.path("last"), torch.arange(1000.0) + 1)
    else:
        damage(ckpt.path("last"))
    state = ckpt.load()
    assert state["step"] == 4 and torch.equal(state["w"], torch.arange(1000.0))
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"warning: checkpoint {ckpt.path('last')} is unreadable (")
    assert line.endswith("trying the previous one")
    assert not (tmp_path / "PWNED").exists()


@faults("Broken checkpoints")
def test_both_checkpoints_broken_starts_afresh(tmp_path, capsys):
    ckpt = _two_checkpoints(tmp_path)
    _truncate(ckpt.path("last"))
    _flip_tensor_byte(ckpt.path("previous"), torch.arange(1000.0))
    assert ckpt.load() is None
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Unpickling" not in err
    assert err.splitlines() == [
        err.splitlines()[0], (f"warning: checkpoint {ckpt.path('previous')} is unreadable "
        f"(content does not match its sha256: corrupted); ignoring it"),
        f"warning: no readable checkpoint in {tmp_path}; starting afresh"]

    # and fit really starts from step 0
    steps = []
    fit(modules={}, total_steps=3, steps_per_epoch=3, train_step=lambda s: steps.append(s) or {},
        end_of_epoch=None, ckpt=ckpt, checkpoint_every=1)
    assert steps == [0, 1, 2]


# ------------------------------------------------------------------------ hostile input: idx


def _idx(shape, dtype_byte=0x08, data: bytes | None = None) -> bytes:
    header = bytes([0, 0, dtype_byte, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
    return header + (bytes(int(np.prod(shape))) if data is None else data)


@faults("Broken/hostile input: idx")
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("content, problem", [
    (_idx((10, 28, 28))[:-5], r"size mismatch: header declares shape \(10, 28, 28\)"),
    (_idx((10,)) + b"extra", r"size mismatch.*file holds more bytes"),
    (b"\x00\x00\x08\x03\x00\x00", r"truncated header"),
    (b"PK\x03\x04" + bytes(100), r"bad IDX magic number 504b0304"),
    (b"", r"bad IDX magic number \(empty\)"),
    (_idx((3_000_000_000, 28, 28), data=bytes(64)), r"2,352,000,000,000 bytes of data"),
    (_idx((4294967295,) * 3, 0x0E, data=b""), r"more than the 4,294,967,296"),
], ids=["truncated data", "trailing data", "truncated header", "not idx", "empty",
        "billions of items", "absurd dims"])
def test_broken_idx_is_named(tmp_path, gz, content, problem):
    path = tmp_path / ("x-idx3-ubyte.gz" if gz else "x-idx3-ubyte")
    path.write_bytes(gzip.compress(content) if gz else content)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: .*{problem}"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # nothing sized by the header was allocated


@faults("Broken/hostile input: idx")
def test_truncated_gzip_idx_is_named(tmp_path):
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_idx((1000,)))[:-20])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: cannot read"):
        read_idx(path)


@faults("Broken/hostile input: idx")
def test_idx_dtypes_and_shapes_are_read():
    """The control: a well-formed file of every element type reads back exactly."""
    for byte, dtype in ((0x08, ">u1"), (0x0B, ">i2"), (0x0D, ">f4"), (0x0E, ">f8")):
        a = np.arange(24, dtype=dtype).reshape(2, 3, 4)
        path = Path(f"/tmp/kexue-faults-{os.getpid()}-{byte}.idx")
        try:
            path.write_bytes(_idx(a.shape, byte, a.tobytes()))
            assert np.array_equal(read_idx(path), a)
        finally:
            path.unlink()


# ------------------------------------------------------------------------ hostile input: npz


class _Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)  # numpy's own writer (pickles object arrays)
    return path


@faults("Broken/hostile input: npz")
@pytest.mark.parametrize("make, problem", [
    (lambda p: p.write_bytes(b"not a zip at all" * 10), "not a valid .npz file"),
    (lambda p: p.write_bytes(_npz(p, images=np.zeros((2, 3, 4), np.uint8)).read_bytes()[:200]),
     "not a valid .npz file"),
    (lambda p: _npz(p, images=np.array([_Payload(p.parent / "PWNED")], dtype=object)),
     "not a valid .npz file .*allow_pickle=False"),
    (lambda p: _npz(p, images=np.zeros((2, 3), np.uint8)), (r"images is uint8 of shape \(2, 3\); "
     r"expected 3 dimensions")),
    (lambda p: _npz(p, images=np.zeros((2, 3, 4), np.float32)), ("images is float32 .* dtype "
     "kind u")),
    (lambda p: _npz(p, pixels=np.zeros((2, 3, 4), np.uint8)), (r"no array 'images' \(it holds "
     r"\['pixels'\]\)")),
], ids=["not a zip", "truncated", "pickled member", "wrong shape", "wrong dtype", "missing"])
def test_broken_npz_is_named(tmp_path, make, problem):
    path = tmp_path / "images.npz"
    make(path)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: {problem}"):
        load_npz(path, {"images": ("u", 3)})
    assert not (tmp_path / "PWNED").exists()


@faults("Broken/hostile input: npz")
@pytest.mark.parametrize("member", [np.zeros((5, 8), np.uint8), np.array([_Payload(Path("PWNED"))])],
                         ids=["wrong shape", "pickled member"])
def test_broken_dataset_at_the_prepare_stage_is_one_line(tmp_path, monkeypatch, capsys, member):
    """The same through the CLI: NICE's prepare stage (smoke, embedded) on a broken digits.npz."""
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "data" / "raw" / "digits"
    raw.mkdir(parents=True)
    _npz(raw / "digits.npz", images=member, labels=np.zeros(5, np.int64))
    with pytest.raises(SystemExit) as done:
        cli.main(["--params", str(REPO / "params.yaml"), "--profile", "smoke",
                  "--source", "embedded", "prepare", "nice"])
    assert done.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("error: data/raw/digits/digits.npz: ")
    assert not (tmp_path / "PWNED").exists()


@faults("Broken/hostile input: npz")
def test_npz_control_reads_back(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(load_npz(_npz(tmp_path / "ok.npz", images=a), {"images": ("u", 3)})
                          ["images"], a)


# ------------------------------------------------------------------ hostile input: JSON, params


@faults("Broken/hostile input: JSON and params")
@pytest.mark.parametrize("content", [b'{"folder": "/data", ', b"\xff\xfe{}", b""],
                         ids=["truncated", "not utf-8", "empty"])
def test_broken_json_is_named(tmp_path, content):
    path = tmp_path / "data.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: not valid JSON"):
        read_json(path)


@faults("Broken/hostile input: JSON and params")
@pytest.mark.parametrize("content", [b'{"folder": ', b'["a list"]', b'{"folder": 3}'],
                         ids=["truncated", "not a mapping", "folder not a string"])
def test_broken_source_pointer_is_named(tmp_path, content):
    (tmp_path / "source.json").write_bytes(content)
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 'source.json'))}: "):
        dataset_files(tmp_path)


@faults("Broken/hostile input: JSON and params")
@pytest.mark.parametrize("text, problem", [
    ("profile: smoke\narticles: {nice: [", "not valid YAML"),
    ("- a list\n", "expected a mapping at the top level"),
    ("profile: 'smoke; rm -rf x'\ndata_source: embedded\narticles: {}\n",
     r"profile: 'smoke; rm -rf x' is not valid"),
], ids=["truncated", "not a mapping", "hostile profile"])
def test_broken_params_file_is_named(tmp_path, text, problem):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {problem}"):
        config.load_params(path)


# ---------------------------------------------------------------- hostile input: tar and zip


def _tar(path: Path, members: dict[str, bytes | str]) -> Path:
    """members: name -> bytes (a file) or str (a symbolic link to that target)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


CIFAR_MEMBERS = [f"cifar-10-batches-bin/{n}" for n in
                 (*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin")]


@faults("Broken/hostile input: tar, zip, records")
@pytest.mark.parametrize("evil, problem", [
    ({"../../outside.bin": b"x"}, (r"unsafe archive entry '\.\./\.\./outside\.bin' \(a '\.\.' "
     r"component\)")),
    ({"/etc/passwd": b"x"}, r"unsafe archive entry '/etc/passwd' \(an absolute path\)"),
    ({CIFAR_MEMBERS[0]: "/etc/passwd"}, r"unsafe archive entry .*data_batch_1\.bin' \(a link"),
], ids=["zip-slip", "absolute", "symlink"])
def test_hostile_cifar_tar_is_refused(tmp_path, evil, problem):
    members = {m: bytes(3073) for m in CIFAR_MEMBERS}
    _tar(tmp_path / "cifar-10-binary.tar.gz", {**members, **evil})
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path))}/cifar-10-binary\.tar\.gz"
                                        rf": {problem}"):
        load_image_dataset("cifar10", tmp_path)


@faults("Broken/hostile input: tar, zip, records")
@pytest.mark.parametrize("cut", [0.5, 0.9], ids=["half", "tail cut"])
def test_truncated_cifar_tar_is_named(tmp_path, cut):
    path = _tar(tmp_path / "cifar-10-binary.tar.gz", {m: os.urandom(3073) for m in CIFAR_MEMBERS})
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * cut)])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: not a readable tar"):
        load_image_dataset("cifar10", tmp_path)


@faults("Broken/hostile input: tar, zip, records")
def test_cifar_records_of_wrong_size_or_labels_are_named():
    with pytest.raises(DataError, match=r"^x\.bin: 3072 bytes is not a whole number"):
        read_cifar_records(bytes(3072), "x.bin")
    with pytest.raises(DataError, match=r"^x\.bin: label 200 > 9"):
        read_cifar_records(bytes([200]) + bytes(3072), "x.bin")


@faults("Broken/hostile input: tar, zip, records")
def test_hostile_celeba_tar_is_refused(tmp_path):
    _tar(tmp_path / "celeba_align_89.tar.gz", {"000001.jpg": "../../../home/user/.ssh/id_rsa"})
    with pytest.raises(DataError, match=r"celeba_align_89\.tar\.gz: unsafe archive entry "
                                        r"'000001\.jpg' \(a link or special file\)"):
        load_image_dataset("celeba", tmp_path)


def _zip(path: Path, members: dict[str, bytes], link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


@faults("Broken/hostile input: tar, zip, records")
@pytest.mark.parametrize("members, link, problem", [
    ({"../evil.jpg": b"x"}, None, r"'\.\./evil\.jpg' \(a '\.\.' component\)"),
    ({"img_align_celeba\\..\\..\\evil.jpg": b"x"}, None, r"\(a Windows path\)"),
    ({}, "img_align_celeba/000001.jpg", r"'img_align_celeba/000001\.jpg' \(a link"),
], ids=["zip-slip", "windows path", "symlink"])
def test_hostile_zip_is_refused(tmp_path, members, link, problem):
    path = _zip(tmp_path / "img_align_celeba.zip", members, link)
    for read in (lambda: load_image_dataset("celeba", tmp_path),
                 lambda: read_zip_member(path, "000001.jpg")):  # the QA datasets' reader
        with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: unsafe archive entry "
                                            rf".*{problem}"):
            read()


@faults("Broken/hostile input: tar, zip, records")
def test_not_a_zip_is_named(tmp_path):
    path = tmp_path / "img_align_celeba.zip"
    path.write_bytes(b"PK\x03\x04 truncated")
    for read in (lambda: load_image_dataset("celeba", tmp_path),
                 lambda: read_zip_member(path, "x.json")):
        with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: not a zip archive"):
            read()


# ---------------------------------------------------------------------------------- scans


def _calls(func: str):
    """(file, line, call) of every call of ``<module>.<func>(`` under src/."""
    for path in sorted((REPO / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == func and isinstance(node.func.value, ast.Name)):
                yield path.relative_to(REPO), node.lineno, node


def _keyword(call: ast.Call, name: str):
    found = [k.value for k in call.keywords if k.arg == name]
    return found[0].value if found and isinstance(found[0], ast.Constant) else "missing"


@faults("Scans: unpickling and shell injection")
def test_scan_every_np_load_refuses_pickles():
    calls = [(f, n, c) for f, n, c in _calls("load") if c.func.value.id in ("np", "numpy")]
    assert len(calls) >= 2
    bad = [f"{f}:{n}" for f, n, c in calls if _keyword(c, "allow_pickle") is not False]
    assert bad == [], f"np.load without allow_pickle=False: {bad}"


@faults("Scans: unpickling and shell injection")
def test_scan_articles_read_arrays_through_the_checked_loaders():
    """Articles read .npz/.npy through kexue.data.embedded.load_npz/load_npy, whose errors name
    the file and the member; a raw np.load would give numpy's anonymous message."""
    raw = [f"{f}:{n}" for f, n, c in _calls("load") if c.func.value.id in ("np", "numpy")
           and f.parts[:3] == ("src", "kexue", "articles")]
    assert raw == [], f"raw np.load in articles (use load_npz/load_npy): {raw}"


@faults("Scans: unpickling and shell injection")
def test_scan_every_torch_load_is_weights_only():
    calls = [(f, n, c) for f, n, c in _calls("load") if c.func.value.id == "torch"]
    assert calls
    bad = [f"{f}:{n}" for f, n, c in calls if _keyword(c, "weights_only") is not True]
    assert bad == [], f"torch.load without weights_only=True: {bad}"


@faults("Scans: unpickling and shell injection")
def test_scan_nothing_unpickles():
    users = [f"{f}:{n}" for func in ("load", "loads", "Unpickler")
             for f, n, c in _calls(func) if c.func.value.id in ("pickle", "dill", "joblib")]
    assert users == []


SHELL_SAFE = {"params.cli", "threads", "log", "wildcards.article", "wildcards.run",
              "wildcards.seed", "wildcards.dataset"}


@faults("Scans: unpickling and shell injection")
def test_scan_shell_commands_interpolate_only_checked_values():
    """Every {...} of a Snakemake shell command is the fixed CLI prefix, a number, the log path
    or a wildcard constrained to a safe pattern; the CLI prefix holds only validated choices."""
    found = set()
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        for block in re.findall(r"shell:\n((?:\s+\".*\"\n)+)", text):
            found |= set(re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", block))
    assert found and found <= SHELL_SAFE, found - SHELL_SAFE
    snakefile = (REPO / "Snakefile").read_text()
    assert 'run="[A-Za-z0-9_.-]+"' in snakefile and 'seed="[0-9]+"' in snakefile
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert re.search(r"KEXUE = \(?\s*f\"python -m kexue --profile \{config\['profile'\]\} --source "
                     r"\{config\['data_source'\]\}\"", common)


def _params_with(mutate) -> dict:
    params = config.load_params(REPO / "params.yaml")
    mutate(params)
    return params


@faults("Scans: unpickling and shell injection")
@pytest.mark.parametrize("name", ["x; rm -rf x", "$(rm -rf x)", "`id`", "..", "-rf", "a b"])
def test_hostile_run_name_is_rejected(name):
    def mutate(p):
        for profile in config.PROFILES:
            runs = p["articles"]["nice"][profile]["runs"]
            runs[name] = runs[next(iter(runs))]
    with pytest.raises(ConfigError, match=r"articles\.nice\.smoke\.runs: run name .* is not "
                                          r"valid"):
        config.validate_params(_params_with(mutate))


@faults("Scans: unpickling and shell injection")
def test_hostile_paths_never_reach_a_command(tmp_path):
    """data_dirs and mirror are read by Python only: no generated command holds them."""
    from kexue.dvcgen import render

    hostile = f"{tmp_path}/x; rm -rf {tmp_path}"
    params = _params_with(lambda p: p.update(
        mirror=hostile, data_dirs={name: hostile for name in registry.DATASETS}))
    config.validate_params(params)
    commands = render(params)
    assert commands.count("cmd: snakemake --cores all") > 10  # the commands are there
    assert "rm -rf" not in commands


# ------------------------------------------------------------------------- numerical faults


def _regression(nan_at: int | None = None, inf_grad_at: int | None = None):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 4), torch.randn(64, 1)

    def train_step(step):
        batch = x[step % 8 * 8: step % 8 * 8 + 8].clone()
        if step == nan_at:
            batch[3, 1] = float("nan")  # a broken record in the data
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch), y[:8])
        loss.backward()
        if step == inf_grad_at:
            model.weight.grad[0, 2] = float("inf")  # an overflowing gradient
        opt.step()
        return {"loss": loss.item()}

    return {"model": model, "opt": opt}, train_step


@faults("Numerical faults")
@pytest.mark.parametrize("fault", ["nan batch", "inf gradient"])
def test_numerical_fault_names_step_and_last_good_checkpoint(tmp_path, fault):
    modules, train_step = _regression(nan_at=5 if fault == "nan batch" else None,
                                      inf_grad_at=5 if fault == "inf gradient" else None)
    ckpt = Checkpointer(tmp_path, "tag")
    with pytest.raises(NonFiniteLoss) as err:
        fit(modules=modules, total_steps=20, steps_per_epoch=10, train_step=train_step,
            end_of_epoch=None, ckpt=ckpt, checkpoint_every=2, desc="toy")
    expected = ("loss became nan at step 5" if fault == "nan batch"
                else "parameter model.weight became NaN/Inf by step 6")
    assert expected in str(err.value)
    assert str(err.value).endswith(f"The last good checkpoint is {ckpt.path('last')}")
    assert isinstance(err.value, UserError)
    state = ckpt.load()
    assert state["step"] == 4
    assert all(torch.isfinite(t).all() for t in state["modules"]["model"].values())


@faults("Numerical faults")
def test_numerical_fault_before_any_checkpoint_says_so(tmp_path):
    modules, train_step = _regression(nan_at=0)
    with pytest.raises(NonFiniteLoss, match=rf"at step 0; training stopped\. There is no "
                                            rf"checkpoint yet in {re.escape(str(tmp_path))}$"):
        fit(modules=modules, total_steps=4, steps_per_epoch=4, train_step=train_step,
            end_of_epoch=None, ckpt=Checkpointer(tmp_path, "tag"), checkpoint_every=2)
