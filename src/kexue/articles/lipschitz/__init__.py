"""Lipschitz constraints in deep learning: generalisation and generative models (kexue.fm/archives/6051).

Part A (Yoshida & Miyato 2017's claim, cited by the article; the design is the project's): a
VGG-style classifier with no constraint, L2 weight decay, spectral-norm regularisation (SNR) or
spectral normalisation (SN), across batch sizes: accuracy, train-test gap, the Lipschitz bound
and its empirical lower bound. Part B (Su's experiment): WGAN with spectral normalisation (Su's
recipe and PyTorch's), WGAN-GP (two-sided and Su's one-sided form) and DCGAN-SN: feature FID/KID
against iterations and wall-clock seconds, the critics' measured Lipschitz constants.
"""
