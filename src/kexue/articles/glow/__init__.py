"""RealNVP and Glow (kexue.fm/archives/5807; Kingma & Dhariwal, arXiv 1807.03039).

One multi-scale model, three knobs (spec ../shared/specs/glow.md):

* ``su``: Su's article-time Keras model. Zero-init actnorm, a fixed random channel shuffle,
  additive coupling (Keras-initialised nets), conditional split prior, learned top; Adam 1e-4,
  batch 32 x 1000 steps an "epoch", and his collapse guard (from the 12th epoch, Keras's index
  > 10, a positive epoch loss reloads the best weights and drops the lr to 1e-5).
* ``original``: the Glow paper / openai/glow. Data-dependent actnorm, LU 1x1 conv, affine
  coupling with scale sigmoid(h + 2), openai's coupling net (actnorm after the hidden convs,
  output gains exp(3 logs)), openai's Adamax 1e-3 with linear warm-up, +-10 % shifts on CIFAR-10.
* ``ablation-<permutation>-<coupling>``: {reverse, shuffle, invconv} x {additive, affine} on
  top of the ``original`` recipe at reduced depth (Glow paper, figure 3; Su's remark 1).

Data are 8-bit (or 17-level for sklearn digits) images x = (k + u) / n_levels - 0.5 with
u ~ U[0, 1): Su's x/256 - 0.5 + U[0, 1/256) scale. The loss is the NLL of that continuous
density in nats per image; bits/dim = NLL / (D ln 2) + log2(n_levels) is then an exact upper
bound on the discrete NLL.
"""
