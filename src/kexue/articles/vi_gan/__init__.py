"""用变分推断统一理解生成模型 — a variational-inference view of VAE and GAN (kexue.fm/archives/5716;
arXiv 1807.05936, J. Su, 2018).

Reproduced: Su's regularised GAN, whose generator loss adds λ·E‖G(z) − G°(z)‖² against a
snapshot G° of itself (E1: DCGAN with batch norm, one batch each; E2: without batch norm, five
batches each; λ ∈ {0, 5}), judged by mode coverage, a collapse detector and feature FID/KID; the
VAE with a 2-d latent (E3, test ELBO in nats); and EM for a Gaussian mixture checked against
scikit-learn (E4). Offline, the GANs run on a synthetic ring of 8 Gaussians and the embedded
8x8 digits.
"""
