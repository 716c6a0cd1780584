"""f-GAN (kexue.fm/archives/6016; Nowozin, Cseke & Tomioka, arXiv 1606.00709): GANs from
f-divergences, Su's "production line".

* E1: both divergence tables (Su's and the paper's) as code, ``kexue.nn.divergences``, checked
  by ``tests/test_divergences.py``;
* E2 (``mixture`` runs): a Gaussian fitted to a 1-D mixture by variational divergence
  minimisation, against the (mu, sigma) minimising D_f directly (quadrature + scipy);
* E3 (``images`` runs): every divergence of each table on digits (embedded) or MNIST
  (official): Parzen-window test log-likelihood (the paper's Table 4 metric) and feature
  FID/KID.

Recipes: ``su`` = Su's table, alternating updates, direct saddle-point generator loss;
``original`` = the paper's table, its simultaneous Algorithm 1 and, on images, its
"maximise E_Q[T]" generator loss.
"""
