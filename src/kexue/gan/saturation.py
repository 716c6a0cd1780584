"""Discriminator saturation, read from a GAN's loss history.

A discriminator saturates when it tells real from generated samples with near certainty: its
loss ½·[BCE(D(x), 1) + BCE(D(G(z)), 0)] falls towards 0 (chance is log 2 ≈ 0.69). From then on
the generator learns little (the minimax loss's gradients vanish; the non-saturating loss only
pushes G towards whatever D currently rejects least), so the run is finished but its samples
mean little. That is a result to report, not a crash: training goes on, evaluation flags it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# ½·[BCE real + BCE fake] below this: D(x) >~ 0.98 and D(G(z)) <~ 0.02 on average
SATURATED_D_LOSS = 0.01
# consecutive history rows (evaluations) at the end of training: one low row is noise
SATURATED_ROWS = 3


@dataclass(frozen=True)
class Saturation:
    saturated: bool
    since_step: int | None  # the step of the first row of the final saturated stretch
    final_d_loss: float
    g_loss_during: float  # G's mean loss over that stretch (NaN when not saturated)

    def metrics(self) -> dict:
        """The flat entries a metrics.json holds (NaN where there is no stretch)."""
        return {"d_saturated": self.saturated,
                "d_saturated_since_step": math.nan if self.since_step is None
                else self.since_step,
                "final_d_loss": self.final_d_loss, "g_loss_while_saturated": self.g_loss_during}


def discriminator_saturation(history: Sequence[dict], threshold: float = SATURATED_D_LOSS,
                             rows: int = SATURATED_ROWS, d_loss: str = "train_d_loss",
                             g_loss: str = "train_g_loss") -> Saturation:
    """Whether D's loss (the history column ``d_loss``: the kit's ``fit`` writes a step's
    ``d_loss`` as ``train_d_loss``) stayed below ``threshold`` over the last ``rows`` rows (all
    of them when the history is shorter). A NaN loss is not saturation."""
    if not history or d_loss not in history[0]:
        raise ValueError(f"a GAN loss history needs rows with a {d_loss} column")
    d_losses = [float(row[d_loss]) for row in history]
    stretch = 0
    while stretch < len(d_losses) and d_losses[-1 - stretch] < threshold:
        stretch += 1
    if stretch < min(rows, len(d_losses)):
        return Saturation(False, None, d_losses[-1], math.nan)
    tail = history[len(history) - stretch:]
    g_losses = [float(row[g_loss]) for row in tail if g_loss in row]
    return Saturation(True, int(tail[0]["step"]), d_losses[-1],
                      sum(g_losses) / len(g_losses) if g_losses else math.nan)
