import torch
from PIL import Image
from torch import nn

from kexue.gan.samples import fixed_latent, generate, save_samples_grid, to_uint8

torch.set_num_threads(1)


def test_to_uint8_maps_the_tanh_range():
    assert to_uint8(torch.tensor([-2.0, -1.0, 0.0, 1.0])).tolist() == [0, 0, 128, 255]


def test_samples_use_eval_mode_and_restore_it(tmp_path):
    g = nn.Sequential(nn.Linear(4, 12), nn.BatchNorm1d(12), nn.Tanh(), nn.Unflatten(1, (3, 2, 2)))
    g.train()
    z = fixed_latent(torch.Generator().manual_seed(0), 6, 4)
    assert torch.equal(z, fixed_latent(torch.Generator().manual_seed(0), 6, 4))
    eval_out = generate(g, z)
    assert g.training
    assert torch.equal(eval_out, g.eval()(z))  # running statistics, not batch statistics
    g.train()
    save_samples_grid(tmp_path / "s.png", g, z, nrow=3, upscale=2)
    assert Image.open(tmp_path / "s.png").size == (2 * (3 * 3 + 1), 2 * (2 * 3 + 1))
