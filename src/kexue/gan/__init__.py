"""The shared GAN kit: alternating D/G training with a generator snapshot, the usual losses,
and sample grids at a fixed latent. Used by the articles vi_gan, fgan and lipschitz."""
