"""The fault suite, hostile and broken input (part 2): .npy arrays and the articles' prepared
files, LAMOST FITS (spectra_conv1d's official reader) and xlsx workbooks (dgcnn_qa's WebQA
annotated sets). Each broken file ends in a one-line ``DataError`` naming it and the problem;
absurd declared sizes are refused before anything sized by them is allocated."""

from __future__ import annotations

import gzip
import re
import struct
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from astropy.io import fits

from kexue.articles.amsoftmax_sim.data import load_prepared as amsoftmax_prepared
from kexue.articles.glow.data import load_prepared as glow_prepared
from kexue.articles.nice.data import load_prepared as nice_prepared
from kexue.articles.spectra_conv1d.data import load_prepared as spectra_prepared
from kexue.articles.vi_gan.data import load_images as vi_gan_images
from kexue.data.embedded import load_npy, save_npz
from kexue.data.qa import read_webqa_annotated_xlsx
from kexue.data.spectra.readers import read_fits_spectrum, read_lamost_fits
from kexue.errors import DataError
from kexue.io import write_json

faults = pytest.mark.faults


def _raises_naming(path: Path, problem: str):
    return pytest.raises(DataError, match=rf"^{re.escape(str(path))}: {problem}")


def _one_line(err: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(err.value), str(err.value)


# ------------------------------------------------------------------------------ npy, prepared


@faults("Broken/hostile input: npz")
@pytest.mark.parametrize("mmap", [False, True], ids=["read", "memory-mapped"])
@pytest.mark.parametrize("make, problem", [
    (lambda p: np.save(p, np.zeros((4, 6), np.float32)) or p.write_bytes(p.read_bytes()[:-7]),
     "not a valid .npy file"),
    (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00garbage"), "not a valid .npy file"),
    (lambda p: np.save(p, np.array([{"a": 1}], dtype=object)), "not a valid .npy file"),
    (lambda p: np.save(p, np.zeros((4,), np.float32)), r"float32 of shape \(4,\); expected 2"),
    (lambda p: np.save(p, np.zeros((4, 6), np.int64)), "int64 .* dtype kind f"),
], ids=["truncated", "bad header", "pickled objects", "wrong shape", "wrong dtype"])
def test_broken_npy_is_named(tmp_path, make, problem, mmap):
    path = tmp_path / "flux.npy"
    make(path)
    with _raises_naming(path, problem) as err:
        load_npy(path, "f", 2, mmap=mmap)
    _one_line(err)


@faults("Broken/hostile input: npz")
def test_npy_control_reads_back_memory_mapped(tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    np.save(tmp_path / "ok.npy", a)
    got = load_npy(tmp_path / "ok.npy", "f", 2, mmap=True)
    assert isinstance(got, np.memmap) and np.array_equal(got, a)


def _prepared(folder: Path, name: str, **arrays) -> None:
    save_npz(folder / name, **arrays)


U8 = np.zeros((3, 1, 4, 4), np.uint8)
WRONG = np.zeros((3, 16), np.float32)  # flat floats where uint8 images are expected
ARTICLE_READERS = {
    "nice": (lambda d: _prepared(d, "images.npz", train=WRONG) or write_json(d / "data.json", {}),
             lambda d: nice_prepared(d, "train"), "images.npz"),
    "glow": (lambda d: _prepared(d, "digits.npz", train=WRONG) or write_json(
        d / "data.json", {"default": "digits", "datasets": {"digits": {}}}),
        lambda d: glow_prepared(d, "", "train"), "digits.npz"),
    "vi_gan": (lambda d: _prepared(d, "digits.npz", train=U8, test=U8, train_labels=WRONG,
                                   test_labels=np.zeros(3, np.int64))
               or write_json(d / "data.json", {"digits": {}}),
               lambda d: vi_gan_images(d, "digits"), "digits.npz"),
    "amsoftmax_sim": (lambda d: _prepared(d, "sentences.npz", ids=WRONG),
                      amsoftmax_prepared, "sentences.npz"),
    "spectra_conv1d": (lambda d: np.save(d / "flux.npy", U8) or write_json(d / "data.json", {}),
                       spectra_prepared, "flux.npy"),
}


@faults("Broken/hostile input: npz")
@pytest.mark.parametrize("article", sorted(ARTICLE_READERS))
def test_an_articles_broken_prepared_file_is_named(tmp_path, article):
    """Every article that reads its prepared arrays through load_npz/load_npy names the file
    and the member when one has the wrong dtype or shape (before: numpy's anonymous error, or
    a wrong result further on)."""
    write, read, name = ARTICLE_READERS[article]
    write(tmp_path)
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / name))}: .*expected"):
        read(tmp_path)


# ------------------------------------------------------------------------------------ FITS


def _lamost_fits(path: Path, rows: int = 5, cols: int = 3909) -> bytes:
    data = np.ones((rows, cols), np.float32)  # flux row 0 varies; ivar row 1 > 0
    data[0] = np.linspace(1, 2, cols)
    data[2] = 10 ** np.linspace(3.57, 3.96, cols)  # wavelength (Å), log-linear like LAMOST's
    data[3:] = 0  # andmask, ormask: every pixel good
    fits.PrimaryHDU(data).writeto(path, overwrite=True)
    return path.read_bytes()


def _claim_columns(raw: bytes, n: int) -> bytes:
    card = re.search(rb"NAXIS1  = +\d+", raw[:2880]).group()
    new = b"NAXIS1  = " + str(n).rjust(len(card) - 10).encode()
    return raw.replace(card, new, 1)


@faults("Broken/hostile input: FITS")
@pytest.mark.parametrize("gz", [False, True], ids=["fits", "fits.gz"])
@pytest.mark.parametrize("damage, problem", [
    (lambda raw: raw[: len(raw) // 2], "not a readable FITS file"),
    (lambda raw: raw[:1000], "not a readable FITS file"),
    (lambda raw: b"SIMPLE? no" * 400, "not a readable FITS file"),
    (lambda raw: b"", "not a readable FITS file"),
    (lambda raw: _claim_columns(raw, 3_000_000_000), (r"expected a 5 x N primary HDU of at most "
     r"1,000,000 values, the header declares 5 x 3,000,000,000")),
], ids=["truncated data", "truncated header", "not fits", "empty", "billions of values"])
def test_broken_fits_is_named(tmp_path, gz, damage, problem):
    raw = damage(_lamost_fits(tmp_path / "ok.fits"))
    path = tmp_path / ("spec.fits.gz" if gz else "spec.fits")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no astropy warning escapes either
            with _raises_naming(path, problem) as err:
                read_fits_spectrum(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _one_line(err)
    assert peak < 8 << 20  # nothing sized by the header was allocated


@faults("Broken/hostile input: FITS")
def test_fits_of_the_wrong_shape_is_named(tmp_path):
    path = tmp_path / "spec.fits"
    _lamost_fits(path, rows=3)
    with _raises_naming(path, r"expected a 5 x N primary HDU .* declares 3 x 3,909"):
        read_lamost_fits(path)


@faults("Broken/hostile input: FITS")
def test_fits_control_reads_back(tmp_path):
    path = tmp_path / "spec.fits"
    _lamost_fits(path)
    assert read_lamost_fits(path)["flux"].shape == (3909,)
    assert read_fits_spectrum(path).shape == (2600,)


# ------------------------------------------------------------------------------------ xlsx


def _workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    wb.active.append([0, 1, 2, 3, 4, 5])
    wb.active.append(["the sky is blue", "what colour is the sky", "blue", 1, 11, 14])
    wb.save(path)
    return path


def _rewrite(path: Path, change) -> None:
    """Rewrite the members of the zip at ``path``: change(name, bytes) -> bytes or None (drop)."""
    with zipfile.ZipFile(path) as zin:
        members = {i.filename: zin.read(i.filename) for i in zin.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in members.items():
            data = change(name, data)
            if data is not None:
                zout.writestr(name, data)


def _declare_size(path: Path, member: str, size: int) -> None:
    """Patch the central directory so ``member`` claims ``size`` bytes uncompressed."""
    raw = bytearray(path.read_bytes())
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack("<H", raw[at + 28: at + 30])[0]
        if raw[at + 46: at + 46 + name_len] == member.encode():
            raw[at + 24: at + 28] = struct.pack("<I", size)
        at = raw.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(raw))


SHEET = "xl/worksheets/sheet1.xml"
BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                  b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                  b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                  b'<si><t>&lol3;</t></si></sst>')


@faults("Broken/hostile input: xlsx")
@pytest.mark.parametrize("damage, problem", [
    (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
     "not a readable xlsx workbook .*not a zip file"),
    (lambda p: p.write_bytes(b""), "not a readable xlsx workbook"),
    (lambda p: _rewrite(p, lambda n, d: d[: len(d) // 2] if n == SHEET else d),
     "not a readable xlsx workbook .*unclosed token: line 1"),
    (lambda p: _rewrite(p, lambda n, d: b"<not xml" if n == "xl/workbook.xml" else d),
     "not a readable xlsx workbook .*unclosed token: line 1"),
    (lambda p: _rewrite(p, lambda n, d: None if n == SHEET else d),
     "no worksheet in the workbook"),
    (lambda p: _rewrite(p, lambda n, d: BILLION_LAUGHS if n.endswith("sharedStrings.xml")
                        or n == SHEET else d), "not a readable xlsx workbook .*Entities"),
    (lambda p: _declare_size(p, SHEET, 0xFFFFFFF0), (r"declares 4,294,9\d\d,\d\d\d bytes "
     r"uncompressed, more than the 268,435,456 allowed \(a zip bomb\?\)")),
    (lambda p: _rewrite(p, lambda n, d: b"x" * (300 << 20) if n == "docProps/app.xml" else d),
     r"declares 31\d,\d{3},\d{3} bytes uncompressed"),
], ids=["truncated", "empty", "sheet xml cut", "workbook xml broken", "no sheet",
        "entity expansion", "huge declared size", "huge real size"])
def test_broken_xlsx_is_named(tmp_path, damage, problem):
    path = _workbook(tmp_path / "test_ann.xlsx")
    damage(path)
    tracemalloc.start()
    try:
        with _raises_naming(path, problem) as err:
            read_webqa_annotated_xlsx(path, "WT")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _one_line(err)
    assert peak < 32 << 20


@faults("Broken/hostile input: xlsx")
def test_xlsx_with_a_wrong_header_or_row_is_named(tmp_path):
    path = tmp_path / "validation_ann.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["evidence", "question"])
    wb.save(path)
    with _raises_naming(path, "expected a header row 0..5"):
        read_webqa_annotated_xlsx(path, "WV")
    wb = openpyxl.Workbook()
    wb.active.append([0, 1, 2, 3, 4, 5])
    wb.active.append(["only the evidence"])
    wb.save(path)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}, row 2: missing evidence"):
        read_webqa_annotated_xlsx(path, "WV")


@faults("Broken/hostile input: xlsx")
def test_xlsx_control_reads_back(tmp_path):
    got = read_webqa_annotated_xlsx(_workbook(tmp_path / "test_ann.xlsx"), "WT")
    assert [(q.id, q.question, q.passages[0].answer) for q in got.qa.questions] == [
        ("WT00001", "what colour is the sky", "blue")]
