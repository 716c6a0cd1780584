"""macro-F1 exactly as spec §6: over the whole set, F1_c = 2 TP_c / (|T_c| + |P_c|)."""

from __future__ import annotations

import warnings

import numpy as np


def confusion(y_true, y_pred, n_classes: int = 4) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes**2).reshape(
        n_classes, n_classes)


def per_class_f1(y_true, y_pred, n_classes: int = 4) -> np.ndarray:
    cm = confusion(y_true, y_pred, n_classes)
    tp, denom = np.diag(cm).astype(float), (cm.sum(1) + cm.sum(0)).astype(float)
    if (denom == 0).any():  # sklearn's zero_division=0
        warnings.warn(f"classes {np.flatnonzero(denom == 0).tolist()} are neither true nor "
                      "predicted; their F1 is set to 0", stacklevel=2)
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def macro_f1(y_true, y_pred, n_classes: int = 4) -> float:
    return float(per_class_f1(y_true, y_pred, n_classes).mean())
