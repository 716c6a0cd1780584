"""Physically motivated synthetic spectra (spec §5.3; every parameter is an [assumption]).

Labelled **synthetic** wherever a result on it is reported. Spectrum ``i`` of a set is a pure
function of ``(seed, i, its label, the UNKNOWN S/N ranges)``: its draws come from
``default_rng([seed, i])`` in a fixed order, and the UNKNOWN S/N is a quantile mapped onto the
configured range, so ``prepare`` can regenerate exactly the UNKNOWN spectra under a retuned range.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kexue.data.spectra import CLASSES, LAMBDA_MIN, wavelength_grid

C_KMS = 299_792.458
HC_OVER_K = 1.438777e8  # h c / k in Å K
SEED_TRAIN_VAL, SEED_TEST = 5505, 55050  # the test set is drawn with another seed
N_TRAIN_VAL, N_TEST = 12_000, 3_000
CLASS_MIX = {"star": 0.85, "unknown": 0.09, "galaxy": 0.04, "qso": 0.02}
UNKNOWN_SNR_LOW = (0.3, 2.0)  # treatment (a): very low S/N
UNKNOWN_SNR_DEFECT = (2.0, 10.0)  # treatment (b): defects
VERSION = 1
_LAM = wavelength_grid()
_BLUE_NOISE = 1 + 2 * np.exp(-(_LAM - LAMBDA_MIN) / 300)  # the blue end is noisier
_LAM_POW5 = _LAM**-5.0

BALMER = (6562.8, 4861.3, 4340.5, 4101.7, 3970.1)
CA_HK = (3933.7, 3968.5)
MG_B = (5167.3, 5172.7, 5183.6)
NA_D = (5890.0, 5895.9)


def _loguniform(rng, lo, hi):
    return 10 ** rng.uniform(np.log10(lo), np.log10(hi))


def _log_quantile(u, lo, hi):
    return 10 ** (np.log10(lo) + u * (np.log10(hi) - np.log10(lo)))


def _profiles(lam, centres, sigmas, heights):
    """Yield (slice, h·Gaussian) per line, cut at ±8σ (far wings underflow, and are slow);
    lines whose centre is off the grid are dropped."""
    c, s, h = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in
                                    (centres, sigmas, heights)))
    on = (c >= lam[0]) & (c <= lam[-1])
    c, s, h = np.atleast_1d(c[on]), np.atleast_1d(s[on]), np.atleast_1d(h[on])
    edges = np.searchsorted(lam, np.stack([c - 8 * s, c + 8 * s], axis=1))
    for (lo, hi_), ci, si, hi in zip(edges.tolist(), c.tolist(), s.tolist(), h.tolist()):
        yield slice(lo, hi_), hi * np.exp(-0.5 * ((lam[lo:hi_] - ci) / si) ** 2)


def _absorb(lam, centres, sigmas, depths) -> np.ndarray:
    out = np.ones_like(lam)
    for sl, g in _profiles(lam, centres, sigmas, depths):
        out[sl] *= 1 - g
    return out


def _emit(lam, centres, sigmas, peaks) -> np.ndarray:
    out = np.zeros_like(lam)
    for sl, g in _profiles(lam, centres, sigmas, peaks):
        out[sl] += g
    return out


def star_shape(rng, lam) -> np.ndarray:
    t = _loguniform(rng, 3000, 30000)
    shift = 1 + rng.uniform(-300, 300) / C_KMS
    cont = _LAM_POW5 / np.expm1(HC_OVER_K / (lam * t))  # Planck B_λ(T)
    d_balmer = 0.6 * np.exp(-(((np.log10(t) - 4) / 0.2) ** 2))
    d_ca = 0.7 * np.clip((9000 - t) / 4000, 0, 1)
    d_metal = 0.5 * np.clip((7000 - t) / 3000, 0, 1)
    s_broad, s_metal = rng.uniform(3, 8), rng.uniform(1.5, 3)
    # Ca II H&K share the Balmer width range [assumption: the spec leaves it open]
    lines = ([(c, s_broad, d_balmer) for c in BALMER] + [(c, s_broad, d_ca) for c in CA_HK]
             + [(c, s_metal, d_metal) for c in MG_B + NA_D])
    c, s, d = map(np.array, zip(*lines))
    return cont * _absorb(lam, c * shift, s, d)


def galaxy_shape(rng, lam) -> np.ndarray:
    z, beta, d4000 = rng.uniform(0, 0.3), rng.uniform(0.5, 2), rng.uniform(1.1, 2.0)
    sigma_v = rng.uniform(50, 250)
    rest = lam / (1 + z)
    # 4000 Å break: blueward flux / D4000 through a logistic step ~50 Å wide (scale 12.5 Å)
    cont = rest**beta / (1 + (d4000 - 1) / (1 + np.exp((rest - 4000) / 12.5)))

    def width(c):
        return c * (1 + z) * sigma_v / C_KMS

    absorption = [(3933.7, 0.3), (3968.5, 0.3), (4304.4, 0.15), (5175.0, 0.15), (5893.0, 0.1)]
    c, d = map(np.array, zip(*absorption))
    shape = cont * _absorb(lam, c * (1 + z), width(c), d)
    ha = _loguniform(rng, 0.5, 10)
    hb = ha / 2.86
    o3, n2 = hb * _loguniform(rng, 0.3, 5), ha * rng.uniform(0.1, 0.6)
    o2, s2 = hb * rng.uniform(0.5, 2), ha * rng.uniform(0.1, 0.3, size=2)
    if rng.random() < 0.6:  # 60 % have narrow emission lines (peaks relative to the continuum)
        lines = [(6562.8, ha), (4861.3, hb), (5006.8, o3), (4958.9, o3 / 3), (6583.5, n2),
                 (6548.0, n2 / 3), (3727.4, o2), (6716.4, s2[0]), (6730.8, s2[1])]
        c, a = map(np.array, zip(*lines))
        shape = shape + cont * _emit(lam, c * (1 + z), width(c), a)
    return shape


def qso_shape(rng, lam) -> np.ndarray:
    z, alpha = rng.uniform(0.1, 4.0), rng.uniform(-1.7, -1.0)
    sigma_v = rng.uniform(2000, 8000) / (2 * np.sqrt(2 * np.log(2)))  # FWHM -> σ
    broad = [(1215.7, rng.uniform(2, 6)), (1549.1, rng.uniform(0.5, 2)),
             (1908.7, rng.uniform(0.2, 0.8)), (2798.8, rng.uniform(0.3, 1.2)),
             (4861.3, rng.uniform(0.3, 1)), (6562.8, rng.uniform(1, 3))]
    c, a = map(np.array, zip(*broad))
    c = c * (1 + z)
    em = _emit(lam, c, c * sigma_v / C_KMS, a)
    o3 = 5006.8 * (1 + z)
    em += _emit(lam, o3, o3 * 300 / C_KMS, rng.uniform(0, 0.5))
    shape = lam**alpha * (1 + em)
    if z > 2.1:  # Lyα forest blueward of Lyα (a project addition)
        n = rng.integers(30, 101)
        pos = rng.uniform(LAMBDA_MIN, 1215.7 * (1 + z), size=n)
        shape = shape * _absorb(lam, pos, 1.0, rng.uniform(0.2, 0.9, size=n))
    return shape


SHAPES = {"star": star_shape, "galaxy": galaxy_shape, "qso": qso_shape}



def _defects(rng, lam, flux, amp) -> np.ndarray:
    kinds = set(rng.choice(4, size=rng.integers(1, 4), replace=False).tolist())
    if 2 in kinds:  # calibration tilt
        flux = flux * (lam / 6400) ** rng.uniform(-4, 4)
    if 3 in kinds:  # blue/red-arm jump
        flux = np.where(lam >= rng.uniform(5700, 5900), flux * rng.uniform(0.3, 3), flux)
    if 0 in kinds:  # zeroed segments
        for _ in range(rng.integers(1, 3)):
            n = rng.integers(50, 401)
            start = rng.integers(0, len(lam) - n + 1)
            flux[start: start + n] = 0.0
    if 1 in kinds:  # spikes; the noiseless median is amp by construction
        at = rng.integers(0, len(lam), size=rng.integers(5, 21))
        flux[at] += amp * rng.uniform(10, 50, size=len(at))
    return flux


def make_spectrum(seed: int, index: int, label: str, snr_low=UNKNOWN_SNR_LOW,
                  snr_defect=UNKNOWN_SNR_DEFECT) -> tuple[np.ndarray, dict]:
    """One spectrum (raw flux, float64) and what it was made of (snr, base class, treatment)."""
    rng = np.random.default_rng([seed, index])
    lam = _LAM
    amp = _loguniform(rng, 100, 1000)  # flux / 100 is of order 1-10
    base = label
    if label == "unknown":
        base = ("star", "galaxy", "qso")[rng.choice(3, p=[0.6, 0.2, 0.2])]
    shape = SHAPES[base](rng, lam)
    shape = shape / np.median(shape)
    treatment = 0
    if label == "unknown":
        treatment = 1 if rng.random() < 0.5 else 2
        snr = _log_quantile(rng.random(), *(snr_low if treatment == 1 else snr_defect))
    else:
        snr = _loguniform(rng, *((5, 100) if label == "star" else (3, 30)))
    flux = amp * shape + amp / snr * _BLUE_NOISE * rng.standard_normal(len(lam))
    if treatment == 2:
        flux = _defects(rng, lam, flux, amp)
    if not np.isfinite(flux).all() or np.ptp(flux) == 0:
        raise RuntimeError(f"synthetic spectrum {seed}/{index} ({label}) is constant or "
                           "non-finite")
    return flux, {"snr": snr, "base": CLASSES.index(base), "treatment": treatment}


def draw_labels(n: int, seed: int) -> np.ndarray:
    """Exactly round(n * share) per class (star takes the rounding), in a seeded order."""
    counts = {c: round(n * CLASS_MIX[c]) for c in CLASSES if c != "star"}
    counts["star"] = n - sum(counts.values())
    labels = np.concatenate([np.full(counts[c], CLASSES.index(c)) for c in CLASSES])
    np.random.default_rng([seed, 2**31]).shuffle(labels)
    return labels.astype(np.int64)


def make_set(n: int, seed: int, snr_low=UNKNOWN_SNR_LOW, snr_defect=UNKNOWN_SNR_DEFECT,
             only: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Spectra ``only`` (default: all n) of a set: flux float32 (k, 2600), labels, metadata."""
    labels = draw_labels(n, seed)
    index = np.arange(n) if only is None else np.asarray(only)
    flux = np.empty((len(index), len(_LAM)), dtype=np.float32)
    info = {"snr": np.empty(len(index), np.float32), "base": np.empty(len(index), np.int64),
            "treatment": np.empty(len(index), np.int64)}
    for k, i in enumerate(index):
        flux[k], meta = make_spectrum(seed, int(i), CLASSES[labels[i]], snr_low, snr_defect)
        for key, value in meta.items():
            info[key][k] = value
    return {"flux": flux, "labels": labels[index], **info}


def generate_dataset(dest: Path, n_train_val: int = N_TRAIN_VAL, n_test: int = N_TEST) -> None:
    """The embedded dataset: ``train_val.npz``/``test.npz`` (flux float32 (n, 2600) in raw units,
    labels, snr, base, treatment) and ``generator.json``. Fixed size whatever the profile;
    ``prepare`` subsamples."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train_val", n_train_val, SEED_TRAIN_VAL), ("test", n_test, SEED_TEST)):
        arrays = make_set(n, seed)
        with open(dest / f"{name}.npz", "wb") as f:
            np.savez(f, **arrays)  # uncompressed: noisy floats barely compress
    meta = {"version": VERSION, "seeds": {"train_val": SEED_TRAIN_VAL, "test": SEED_TEST},
            "sizes": {"train_val": n_train_val, "test": n_test}, "class_mix": CLASS_MIX,
            "unknown_snr_low": list(UNKNOWN_SNR_LOW),
            "unknown_snr_defect": list(UNKNOWN_SNR_DEFECT), "grid": "linspace(3690, 9100, 2600)",
            "label": "synthetic spectra (embedded)"}
    (dest / "generator.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
