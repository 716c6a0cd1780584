"""The shared loop: resume after a kill replays the same run; NaN stops with the checkpoint kept."""

import math

import pytest
import torch

from conftest import Killed, without_wall_time
from kexue.io import load_torch, save_torch
from kexue.rng import step_generator
from kexue.training import Checkpointer, NonFiniteLoss, TrackedState, fit


def _run(ckpt_dir, total_steps, kill_at=None, nan_at=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    best = TrackedState(val=math.inf)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def train_step(step):
        if step == kill_at:
            raise Killed
        idx = torch.randint(0, 64, (8,), generator=step_generator(0, step))
        loss = ((model(x[idx]) - y[idx]) ** 2).mean()
        if step == nan_at:
            loss = loss * math.nan
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def end_of_epoch(epoch, row):
        best["val"] = min(best["val"], row["train_loss"])
        return {"best": best["val"]}

    result = fit(modules={"model": model, "opt": opt, "best": best}, total_steps=total_steps,
                 steps_per_epoch=5, train_step=train_step, end_of_epoch=end_of_epoch,
                 ckpt=Checkpointer(ckpt_dir, "tag"), checkpoint_every=2)
    return model, result


def test_resume_after_kill_gives_the_uninterrupted_result(tmp_path):
    reference, ref = _run(tmp_path / "a", 23)
    with pytest.raises(Killed):
        _run(tmp_path / "b", 23, kill_at=13)
    assert load_torch(tmp_path / "b" / "last.pt")["step"] == 12  # checkpoint_every=2
    resumed, res = _run(tmp_path / "b", 23)
    for p, q in zip(reference.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert without_wall_time(res.history) == without_wall_time(ref.history)
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4, 5]
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLoss, match="at step 7.*last good checkpoint"):
        _run(tmp_path, 20, nan_at=7)
    state = load_torch(tmp_path / "last.pt")
    assert state["step"] == 6
    assert all(torch.isfinite(v).all() for v in state["modules"]["model"].values())


def test_atomic_save_leaves_no_partial_file(tmp_path):
    target = tmp_path / "model.pt"
    with pytest.raises((TypeError, AttributeError)):
        save_torch(target, {"bad": lambda: 0})  # not picklable: the write fails midway
    assert list(tmp_path.iterdir()) == []


def test_compilation_is_decided_by_the_run_length():
    from kexue.training import CompileCost, compiled_if_long

    def loss(x):
        return (x * x).sum()

    # 60 s of compilation, 20 % of a 0.1 s step saved: repaid after 3,000 steps
    cost = CompileCost(compile_s=60.0, step_s=0.1, saving=0.2)
    assert cost.break_even_steps() == pytest.approx(3000)
    assert compiled_if_long(loss, 2999, cost=cost) is loss
    assert compiled_if_long(loss, 3001, cost=cost) is not loss
    assert compiled_if_long(loss, 10**6, "off", cost) is loss
    assert compiled_if_long(loss, 10**6) is loss  # no measured cost: never on "auto"
    assert compiled_if_long(loss, 1, "on") is not loss
    # a step that compilation does not speed up never pays, however long the run
    assert not CompileCost(60.0, 0.1, 0.0).pays(10**9)
    # a slower step repays the same compilation sooner
    assert CompileCost(60.0, 0.2, 0.2).pays(2000) and not cost.pays(2000)


def test_compiled_for_batches_compiles_one_batch_size(monkeypatch):
    from kexue import training

    compiled_sizes = []

    def fake_compile(fn):  # records what reaches the compiled function
        return lambda x: compiled_sizes.append(len(x)) or fn(x)

    monkeypatch.setattr(training.torch, "compile", fake_compile)

    def double(x):
        return 2 * x

    fn = training.compiled_for_batches(double, 4, 10, "on")
    assert torch.equal(fn(torch.ones(4)), 2 * torch.ones(4))
    assert torch.equal(fn(torch.ones(3)), 2 * torch.ones(3))  # the ragged last batch: eager
    assert compiled_sizes == [4]
    assert training.compiled_for_batches(double, 4, 10, "off") is double
