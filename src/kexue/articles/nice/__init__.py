"""NICE (kexue.fm/archives/5776; Dinh et al., arXiv 1410.8516): additive-coupling flow.

Two recipes share one model class:

* ``su``: Su's Keras model. Reverse permutation + interleaved split before each of 4 couplings,
  h2 = x2 - m(x1) with a ReLU on m's output, exp-scale layer (Glorot-normal init), Gaussian
  prior, x/255 with the negative training noise x - 0.01*U[0,1). Not a likelihood bound.
* ``original``: the paper. Linear-output m, h2 = x2 + m(x1), logistic prior, proper
  dequantisation x = (k + u)/n_levels, so its bits/dim is a valid bound.
"""
