"""Spectra on the Tianchi/LAMOST 2600-point grid: the grid and classes shared by the readers
(``readers``: Tianchi text files, LAMOST FITS) and the synthetic generator (``synthetic``)."""

from __future__ import annotations

import numpy as np

# Index order is the competition's; everything that mixes classes is keyed by *name*.
CLASSES = ("star", "unknown", "galaxy", "qso")
N_PIX = 2600
LAMBDA_MIN, LAMBDA_MAX = 3690.0, 9100.0


def wavelength_grid() -> np.ndarray:
    """The 2600-point grid in Å. [assumption] linear: the competition documents only the
    range. The FITS resampler and the synthetic generator both use this one function."""
    return LAMBDA_MIN + np.arange(N_PIX) * (LAMBDA_MAX - LAMBDA_MIN) / (N_PIX - 1)
