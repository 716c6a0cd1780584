"""Critic saturation of an f-GAN stack, read by the GAN kit's detector (``kexue.gan.saturation``).

The detector reads a D loss in the units of ½·[BCE real + BCE fake]: log 2 at chance, 0 when D
tells real from generated with certainty. Member k's critic maximises F_k = E_P[T] − E_Q[f*(T)],
a lower bound on D_f(P‖Q_k) between two ends: f(1) when it cannot tell the samples apart
(P = Q) and, when it tells every sample apart, D_f of two distributions with disjoint supports,
f(0) + lim_{u→∞} f(u)/u. Mapping F_k linearly from [f(1), disjoint] onto [log 2, 0] gives the
detector's units, and for the rows whose critic is a sigmoid classifier (GAN, JS, ½JS) the map
is exactly ½·BCE: the same threshold means the same certainty as in vi_gan.

Where D_f of disjoint supports is infinite (KL, reverse KL, both χ², Jeffrey), a critic that
separates perfectly drives F_k up without bound: there is no ceiling to be near, hence no
"near certainty" to detect, and the detector does not apply (the report says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from kexue.errors import DataError
from kexue.gan.saturation import Saturation, discriminator_saturation
from kexue.nn.divergences import Divergence

# D_f(P‖Q) when P and Q have disjoint supports, f(0) + lim f(u)/u, for the rows where it is
# finite: TV ½ + ½; squared Hellinger 1 + 1; JS log 2 + log 2 (½JS half of it); GAN 0 + 0
DISJOINT = {"tv": 1.0, "squared_hellinger": 2.0, "js": math.log(4.0), "js_half": math.log(2.0),
            "gan": 0.0}


def applies(divergence: Divergence) -> bool:
    return divergence.key in DISJOINT


def classifier_d_loss(divergence: Divergence, bound: float) -> float:
    """F_k in the detector's units: log 2 at P = Q, 0 at disjoint supports (a sampled F_k can
    fall slightly outside)."""
    top = DISJOINT[divergence.key]
    return math.log(2.0) * (top - bound) / (top - divergence.f_at_one)


def member_saturation(history: Sequence[dict], divergence: Divergence,
                      where: str = "the history") -> Saturation | None:
    """The detector on member k's ``bound_<key>`` history column (the critic's bound on a fixed
    probe at every logged row); None where it does not apply."""
    if not applies(divergence):
        return None
    column = f"bound_{divergence.key}"
    if not history or column not in history[0]:
        raise DataError(f"{where}: no {column} column (trained before the critics' bounds were "
                        f"logged?): train the run again")
    rows = [{"step": row["step"], "d_loss": classifier_d_loss(divergence, float(row[column]))}
            for row in history]
    return discriminator_saturation(rows, d_loss="d_loss")


def saturation_metrics(history: Sequence[dict], divergences: Sequence[Divergence],
                       where: str = "the history") -> dict:
    """Flat metrics: per member ``d_saturated__<key>`` (None where the detector does not
    apply), the step since when and the final D loss in the detector's units; for the run,
    ``d_saturated`` (any member) and the members saturated. ``where`` names the history in
    errors."""
    out, saturated = {}, []
    for d in divergences:
        s = member_saturation(history, d, where)
        out[f"d_saturated__{d.key}"] = None if s is None else s.saturated
        out[f"d_saturated_since_step__{d.key}"] = (s.since_step if s is not None and s.saturated
                                                   else math.nan)
        out[f"final_d_loss__{d.key}"] = math.nan if s is None else s.final_d_loss
        if s is not None and s.saturated:
            saturated.append(d.key)
    return {**out, "d_saturated": bool(saturated), "d_saturated_divergences": saturated}
