"""spectra_conv1d data: the synthetic generator, the loaders and their errors, the FITS
resampler on two real LAMOST spectra, the split and the class-mix sampler."""

import functools
import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from kexue.articles.spectra_conv1d.config import DataConfig
from kexue.articles.spectra_conv1d.data import (
    ClassMixSampler,
    load_prepared,
    prepare,
    split_order,
    to_input,
)
from kexue.data.spectra import CLASSES, synthetic, wavelength_grid
from kexue.data.spectra.readers import (
    SpectraDataError,
    read_fits_spectrum,
    read_lamost_fits,
    read_txt,
)
from kexue.errors import DataError
from kexue.rng import step_generator

FITS = ("spec-58397-EG014118N254444M01_sp03-031.fits",
        "spec-57287-KP193637N444141V03_sp10-161.fits.gz")


# ---------------------------------------------------------------- synthetic generator


def test_synthetic_set_is_deterministic_finite_and_never_constant():
    a, b = synthetic.make_set(60, seed=7), synthetic.make_set(60, seed=7)
    assert np.array_equal(a["flux"], b["flux"]) and np.array_equal(a["labels"], b["labels"])
    assert a["flux"].shape == (60, 2600) and a["flux"].dtype == np.float32
    assert np.isfinite(a["flux"]).all() and (np.ptp(a["flux"], axis=1) > 0).all()
    assert not np.array_equal(a["flux"], synthetic.make_set(60, seed=8)["flux"])


def test_synthetic_class_mix_is_exact():
    labels = synthetic.draw_labels(12_000, synthetic.SEED_TRAIN_VAL)
    assert np.bincount(labels).tolist() == [10_200, 1_080, 480, 240]  # 85 / 9 / 4 / 2 %
    assert not np.array_equal(labels[:100], np.sort(labels[:100]))  # shuffled


def test_every_class_and_unknown_treatment_is_generated():
    d = synthetic.make_set(300, seed=3)
    assert set(d["labels"].tolist()) == {0, 1, 2, 3}
    unknown = d["labels"] == CLASSES.index("unknown")
    assert set(d["treatment"][unknown].tolist()) == {1, 2}
    assert (d["treatment"][~unknown] == 0).all()
    low = d["snr"][unknown & (d["treatment"] == 1)]
    assert ((low >= 0.3) & (low <= 2.0)).all()


def test_a_spectrum_is_regenerated_alone_bit_for_bit():
    full = synthetic.make_set(50, seed=11)
    some = synthetic.make_set(50, seed=11, only=np.array([3, 41]))
    assert np.array_equal(some["flux"], full["flux"][[3, 41]])


def test_generated_files_are_byte_reproducible(tmp_path):
    for name in ("a", "b"):
        synthetic.generate_dataset(tmp_path / name, n_train_val=30, n_test=10)
    for f in ("train_val.npz", "test.npz", "generator.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_retuned_unknown_snr_changes_only_unknown_spectra(tmp_path):
    synthetic.generate_dataset(tmp_path / "raw", n_train_val=400, n_test=200)
    raw = {"synthetic_spectra": tmp_path / "raw"}
    prepare(DataConfig(), raw, tmp_path / "a", "embedded")
    prepare(DataConfig(unknown_snr_low=[0.1, 0.5]), raw, tmp_path / "b", "embedded")
    a, b = load_prepared(tmp_path / "a"), load_prepared(tmp_path / "b")
    changed = (np.asarray(a.flux) != np.asarray(b.flux)).any(1)
    unknown = a.labels == CLASSES.index("unknown")
    assert changed.any() and not changed[~unknown].any()
    assert np.array_equal(a.test_flux[a.test_labels != 1], b.test_flux[b.test_labels != 1])
    meta = json.loads((tmp_path / "b" / "data.json").read_text())
    assert meta["unknown_snr_low"] == [0.1, 0.5] and meta["data_label"].startswith("synthetic")
    assert meta["n_train"] == 320 and meta["n_val"] == 80 and meta["n_test"] == 200


# ---------------------------------------------------------------- split and sampler


def test_split_is_randomstate_2018_then_80_20():
    order, n_train = split_order(10, DataConfig())
    expected = np.arange(10)
    np.random.RandomState(2018).shuffle(expected)
    assert np.array_equal(order, expected) and n_train == 8
    order, n_train = split_order(1000, DataConfig(n_train_val=100))
    assert len(order) == 100 and n_train == 80


def _labels():
    return np.repeat(np.arange(4), [500, 40, 20, 10])


def test_sampler_composition_is_exact_by_class_name():
    mix = {"qso": 8, "galaxy": 8, "unknown": 16, "star": 128}  # order must not matter
    sampler = ClassMixSampler(_labels(), mix)
    for step in range(5):
        idx = sampler(step_generator(0, step))
        counts = np.bincount(_labels()[idx], minlength=4)
        assert dict(zip(CLASSES, counts.tolist())) == {"star": 128, "unknown": 16,
                                                       "galaxy": 8, "qso": 8}


def test_sampler_is_deterministic_per_seed_and_step_and_draws_with_replacement():
    sampler = ClassMixSampler(_labels(), {"star": 128, "unknown": 16, "galaxy": 8, "qso": 8})
    a, b = sampler(step_generator(3, 17)), sampler(step_generator(3, 17))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, sampler(step_generator(3, 18)))
    assert not np.array_equal(a, sampler(step_generator(4, 17)))
    qso = sampler(step_generator(3, 17))[-8:]
    draws = np.concatenate([sampler(step_generator(0, s))[-8:] for s in range(20)])
    assert set(qso) <= set(np.flatnonzero(_labels() == 3))
    assert len(set(draws.tolist())) < len(draws)  # 10 qso, 160 draws: repeats


def test_sampler_rejects_unknown_or_absent_classes():
    with pytest.raises(ValueError, match="quasar"):
        ClassMixSampler(_labels(), {"star": 4, "quasar": 1})
    with pytest.raises(ValueError, match="qso"):
        ClassMixSampler(np.zeros(10, dtype=int), {"star": 4, "qso": 1})


# ---------------------------------------------------------------- Tianchi layout


@functools.cache
def _spectra():
    return synthetic.make_set(800, seed=5)  # 16 qso, 32 galaxies


def _tianchi(folder, n_per_class=15):
    """A tiny folder in the competition's layout, from synthetic spectra."""
    d = _spectra()
    (folder / "first_train_data_20180131").mkdir(parents=True)
    rows = ["id,type"]
    for c, name in enumerate(CLASSES):
        for i in np.flatnonzero(d["labels"] == c)[:n_per_class]:
            rows.append(f"{1000 + i},{name}")
            text = ",".join(f"{v:.4f}" for v in d["flux"][i])
            (folder / "first_train_data_20180131" / f"{1000 + i}.txt").write_text(text + "\n")
    (folder / "first_train_index_20180131.csv").write_text("\n".join(rows) + "\n")
    return folder


def _raw(tmp_path, folder):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "source.json").write_text(json.dumps({"folder": str(folder)}))
    return {"tianchi_spectra": raw}


def test_tianchi_folder_is_prepared_with_its_index_hash(tmp_path):
    folder = _tianchi(tmp_path / "tianchi")
    prepare(DataConfig(), _raw(tmp_path, folder), tmp_path / "out", "official")
    meta = json.loads((tmp_path / "out" / "data.json").read_text())
    assert meta["data_label"] == "Tianchi LAMOST DR3 (user folder)" and not meta["synthetic"]
    index = folder / "first_train_index_20180131.csv"
    assert meta["index_sha256"] == hashlib.sha256(index.read_bytes()).hexdigest()
    data = load_prepared(tmp_path / "out")
    assert data.flux.shape == (60, 2600) and data.test_flux is None and data.n_train == 48
    first = (tmp_path / "out" / "ids.txt").read_text().split()[0]
    txt = folder / "first_train_data_20180131" / f"{first}.txt"
    assert np.allclose(data.flux[0], read_txt(txt), atol=1e-3)


def test_unset_tianchi_path_is_a_clear_error(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(SpectraDataError, match="data_dirs.tianchi_spectra is unset"):
        prepare(DataConfig(), {"tianchi_spectra": tmp_path / "raw"}, tmp_path / "out", "official")


def _break(folder, how):
    data = folder / "first_train_data_20180131"
    victim = sorted(data.glob("*.txt"))[3]
    values = victim.read_text().strip().split(",")
    if how == "missing":
        victim.unlink()
    elif how == "length":
        victim.write_text(",".join(values[:-1]))
    elif how == "non-numeric":
        victim.write_text(",".join(values[:10] + ["abc"] + values[11:]))
    elif how == "nan":
        victim.write_text(",".join(values[:10] + ["nan"] + values[11:]))
    return victim


@pytest.mark.parametrize("how, message", [
    ("missing", "missing spectrum file"), ("length", "expected 2600 values, found 2599"),
    ("non-numeric", "token 10 \\('abc'\\) is not a number"), ("nan", "NaN/Inf")])
def test_malformed_spectrum_names_the_file(tmp_path, how, message):
    folder = _tianchi(tmp_path / "tianchi", n_per_class=3)
    victim = _break(folder, how)
    with pytest.raises(SpectraDataError, match=message) as err:
        prepare(DataConfig(val_fraction=0.5), _raw(tmp_path, folder), tmp_path / "out",
                "official")
    assert str(victim) in str(err.value)


def _make_constant(folder, names):
    """Every value of these spectra set to 1.0 (a peer met 84 such spectra in the real data)."""
    for name in names:
        (folder / "first_train_data_20180131" / f"{name}.txt").write_text(",".join(["1.0"] * 2600))


def _ids(out):
    return (out / "ids.txt").read_text().split()


@pytest.mark.parametrize("drop", [False, True])
def test_constant_spectra_are_counted_and_kept_or_dropped(tmp_path, capsys, drop):
    folder = _tianchi(tmp_path / "tianchi")
    raw = _raw(tmp_path, folder)
    prepare(DataConfig(), raw, tmp_path / "reference", "official")
    ref_ids, n_train = _ids(tmp_path / "reference"), load_prepared(tmp_path / "reference").n_train
    constant = [ref_ids[2], ref_ids[n_train + 1]]  # one training, one validation spectrum
    _make_constant(folder, constant)
    capsys.readouterr()
    prepare(DataConfig(drop_constant=drop), raw, tmp_path / "out", "official")
    meta = json.loads((tmp_path / "out" / "data.json").read_text())
    assert meta["constant_spectra"] == {"found": 2, "train": 1, "validation": 1,
                                        "drop_constant": drop, "first_ids": constant}
    assert "2 of 60 spectra are constant" in capsys.readouterr().err
    data, ids = load_prepared(tmp_path / "out"), _ids(tmp_path / "out")
    assert data.flux.shape[0] == len(ids) == len(data.labels)
    if not drop:  # Su's script: every file is used, the split is unchanged
        assert ids == ref_ids and data.n_train == n_train
        assert all(np.ptp(data.flux[ids.index(c)]) == 0 for c in constant)
        return
    # dropped: the other spectra keep their side of the split, in the same order
    assert ids[: data.n_train] == [i for i in ref_ids[:n_train] if i not in constant]
    assert ids[data.n_train:] == [i for i in ref_ids[n_train:] if i not in constant]
    assert (np.ptp(np.asarray(data.flux), axis=1) > 0).all()
    reference = load_prepared(tmp_path / "reference")
    kept = [ref_ids.index(i) for i in ids]
    assert np.array_equal(data.flux, reference.flux[kept])
    assert np.array_equal(data.labels, reference.labels[kept])


def test_constant_synthetic_spectrum_is_dropped_from_memory(tmp_path):
    raw = tmp_path / "raw"
    synthetic.generate_dataset(raw, n_train_val=200, n_test=40)
    tv = dict(np.load(raw / "train_val.npz"))
    tv["flux"][5] = 3.0
    np.savez(raw / "train_val.npz", **tv)
    prepare(DataConfig(drop_constant=True), {"synthetic_spectra": raw}, tmp_path / "out",
            "embedded")
    meta = json.loads((tmp_path / "out" / "data.json").read_text())
    assert meta["constant_spectra"]["found"] == 1
    assert meta["constant_spectra"]["first_ids"] == ["5"]
    assert "5" not in _ids(tmp_path / "out") and meta["n_train"] + meta["n_val"] == 199
    assert (np.ptp(np.load(tmp_path / "out" / "flux.npy"), axis=1) > 0).all()


def test_unknown_label_names_the_index_file(tmp_path):
    folder = _tianchi(tmp_path / "tianchi", n_per_class=2)
    index = folder / "first_train_index_20180131.csv"
    index.write_text(index.read_text().replace("galaxy", "nebula", 1))
    with pytest.raises(SpectraDataError, match="unknown label 'nebula'") as err:
        prepare(DataConfig(), _raw(tmp_path, folder), tmp_path / "out", "official")
    assert str(index) in str(err.value)


def test_missing_index_names_the_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpectraDataError, match="first_train_index_20180131.csv: missing"):
        prepare(DataConfig(), _raw(tmp_path, tmp_path / "empty"), tmp_path / "out", "official")


# ---------------------------------------------------------------- LAMOST FITS (real spectra)


@pytest.mark.parametrize("name", FITS)
def test_fits_resampled_onto_the_2600_point_grid(shared_datasets, name):
    path = shared_datasets / "lamost-spectra" / name
    raw = read_lamost_fits(path)
    assert raw["flux"].shape == (3909,) and 3699 < raw["wavelength"][0] < 3701
    flux = read_fits_spectrum(path)
    assert flux.shape == (2600,) and np.isfinite(flux).all() and np.ptp(flux) > 0
    lam = wavelength_grid()
    assert lam[0] == 3690 and lam[-1] == 9100
    good = np.flatnonzero(raw["ivar"] > 0)
    below = lam < raw["wavelength"][good[0]]  # 3690-3700 Å: the first valid value
    assert below.sum() >= 4 and (flux[below] == raw["flux"][good[0]]).all()
    window = (lam > 6500) & (lam < 6630)
    assert abs(lam[window][np.argmin(flux[window])] - 6563) < 6  # Hα absorption


def test_fits_spectra_go_through_the_tianchi_path(shared_datasets, tmp_path):
    folder = tmp_path / "lamost"
    (folder / "first_train_data_20180131").mkdir(parents=True)
    rows = ["id,type"]
    for name in FITS:
        shutil.copy(shared_datasets / "lamost-spectra" / name, folder / "first_train_data_20180131")
        rows.append(f"{name.split('.fits')[0]},STAR")
    (folder / "first_train_index_20180131.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(SpectraDataError, match="validation set lacks class"):
        prepare(DataConfig(), _raw(tmp_path, folder), tmp_path / "out", "official")
    assert np.load(tmp_path / "out" / "flux.npy").shape == (2, 2600)  # both were read


def test_unreadable_fits_names_the_file(tmp_path):
    bad = tmp_path / "x.fits"
    bad.write_bytes(b"not a fits file at all" * 10)
    with pytest.raises(SpectraDataError, match="x.fits"):
        read_fits_spectrum(bad)
    with pytest.raises(SpectraDataError, match="missing FITS file"):
        read_fits_spectrum(tmp_path / "absent.fits")


def test_spectra_errors_are_data_errors():
    assert issubclass(SpectraDataError, DataError)


def test_network_input_is_flux_over_100():
    x = to_input(np.full((2, 2600), 250.0))
    assert x.shape == (2, 1, 2600) and torch.allclose(x, torch.full_like(x, 2.5))
