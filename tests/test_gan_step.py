import pytest
import torch
from torch import nn

from kexue.data.toy2d import ring
from kexue.gan.losses import bce_d_loss, nonsaturating_g_loss, snapshot_mse
from kexue.gan.step import SCHEDULES, AlternatingGAN, EpochBatches, SampledBatches, Schedule
from kexue.training import Checkpointer, fit

torch.set_num_threads(1)


def mlp(n_in, n_out, batch_norm=False):
    norm = [nn.BatchNorm1d(16)] if batch_norm else []
    return nn.Sequential(nn.Linear(n_in, 16), *norm, nn.ReLU(), nn.Linear(16, n_out))


def make_gan(schedule, weight=5.0, seed=0, batch_norm=False, regulariser=snapshot_mse):
    torch.manual_seed(seed)
    g, d = mlp(4, 2, batch_norm), mlp(2, 1, batch_norm)
    return AlternatingGAN(
        generator=g, discriminator=d,
        opt_g=torch.optim.Adam(g.parameters(), 1e-3, betas=(0.5, 0.999)),
        opt_d=torch.optim.Adam(d.parameters(), 1e-3, betas=(0.5, 0.999)),
        real=SampledBatches(ring().sample, 32), latent_dim=4, batch_size=32,
        schedule=SCHEDULES[schedule] if isinstance(schedule, str) else schedule, seed=seed,
        snapshot_weight=weight, regulariser=regulariser)


def adam_steps(opt):
    return {int(s["step"]) for s in opt.state.values()}


@pytest.mark.parametrize("name,d_updates,g_updates", [("one_batch_each", 1, 2),
                                                      ("five_batches_each", 5, 10)])
@pytest.mark.parametrize("weight", [0.0, 5.0])
def test_schedules_do_the_same_updates_in_both_arms(name, d_updates, g_updates, weight):
    gan = make_gan(name, weight)
    out = gan(0)
    assert adam_steps(gan.opt_d) == {d_updates}
    assert adam_steps(gan.opt_g) == {g_updates}
    assert ("snapshot_mse" in out) == (weight > 0)
    assert all(p.requires_grad for p in gan.discriminator.parameters())


def recording_regulariser(generator, record):
    def regulariser(fake, snapshot):
        loss = snapshot_mse(fake, snapshot)
        grads = torch.autograd.grad(loss, list(generator.parameters()), retain_graph=True)
        record.append(max(g.abs().max().item() for g in grads))
        return loss
    return regulariser


@pytest.mark.parametrize("batch_norm", [False, True])
def test_regulariser_gradient_is_zero_only_at_the_first_update_after_the_snapshot(batch_norm):
    record = []
    gan = make_gan("one_batch_each", batch_norm=batch_norm)
    gan.regulariser = recording_regulariser(gan.generator, record)
    gan(0)
    assert record[0] == 0.0  # exactly: same z, same weights, same batch statistics
    assert record[1] > 0.0


def test_five_batches_each_snapshots_once_before_all_generator_updates():
    record = []
    gan = make_gan("five_batches_each")
    gan.regulariser = recording_regulariser(gan.generator, record)
    out = gan(0)
    assert len(record) == 10
    assert record[0] == 0.0
    # every later update, first updates of later chunks included, sees a changed G
    assert all(r > 0.0 for r in record[1:])
    assert out["snapshot_mse"] > 0


def test_snapshot_carries_no_gradient():
    fake = torch.randn(3, 2, requires_grad=True)
    snapshot = fake * 1.0  # still attached to the graph
    snapshot_mse(fake + 1, snapshot).backward()
    assert torch.allclose(fake.grad, torch.full_like(fake, 2 / 6))  # d/dfake mean((fake+1-c)²)


def test_losses_match_their_formulas():
    d = nn.Linear(2, 1)
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    sig = torch.sigmoid
    expected_d = -0.5 * (torch.log(sig(d(real))).mean() + torch.log(1 - sig(d(fake))).mean())
    assert torch.allclose(bce_d_loss(d, real, fake), expected_d, atol=1e-6)
    assert torch.allclose(nonsaturating_g_loss(d, fake), -torch.log(sig(d(fake))).mean(),
                          atol=1e-6)


def weights(gan):
    return torch.cat([p.detach().flatten() for m in (gan.generator, gan.discriminator)
                      for p in m.parameters()])


class Killed(Exception):
    pass


@pytest.mark.parametrize("schedule", ["one_batch_each", "five_batches_each"])
def test_kill_and_resume_gives_bit_identical_weights(tmp_path, schedule):
    def run(ckpt_dir, kill_at=None):
        gan = make_gan(schedule, batch_norm=True)

        def step(i):
            if i == kill_at:
                raise Killed
            return gan(i)
        fit(modules=gan.modules(), total_steps=12, steps_per_epoch=5, train_step=step,
            end_of_epoch=None, ckpt=Checkpointer(ckpt_dir, "t"), checkpoint_every=3)
        return gan

    straight = run(tmp_path / "a")
    with pytest.raises(Killed):
        run(tmp_path / "b", kill_at=8)  # last checkpoint at step 6
    resumed = run(tmp_path / "b")
    assert torch.equal(weights(straight), weights(resumed))


def test_epoch_batches_visit_every_example_once_per_epoch():
    data = torch.arange(10).float()[:, None]
    batches = EpochBatches(data, batch_size=3, seed=1)
    g = torch.Generator()
    epoch0 = torch.cat([batches(i, g) for i in range(3)]).flatten()
    assert len(set(epoch0.tolist())) == 9  # 10 // 3 batches; the remainder is dropped
    assert torch.equal(batches(4, g), EpochBatches(data, 3, seed=1)(4, g))  # pure in index
    assert not torch.equal(torch.cat([batches(i, g) for i in range(3, 6)]).flatten(), epoch0)


def test_schedule_rejects_zero_updates():
    with pytest.raises(ValueError):
        Schedule(d_steps=0, g_chunks=1, g_repeats=1)
