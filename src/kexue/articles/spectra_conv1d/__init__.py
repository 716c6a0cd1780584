"""Conv1D spectral classification (kexue.fm/archives/5505; spec ../shared/specs/spectra_conv1d.md).

Su's residual dilated Conv1D classifier for LAMOST spectra (4 classes: star, unknown, galaxy,
qso), trained in two stages (cross-entropy, then the soft macro-F1 ``score_loss``) on batches
with a fixed class mix. Runs: ``conv1d`` (the article; Tianchi files, or synthetic spectra on
the embedded source, always labelled synthetic) and ``mnist1d`` (the same blocks adapted to
MNIST-1D, an external check against the published 1-D CNN's 94 %).
"""
