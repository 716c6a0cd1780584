"""Checkpoints: keep-the-best with a direction, the ``previous`` fallback, config tags."""

import math

import pytest
import torch

from kexue.training import Checkpointer, KeepBest


def _model(value: float) -> torch.nn.Linear:
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(value)
        model.bias.fill_(value)
    return model


def _best_after(tmp_path, mode, scores):
    best = KeepBest(Checkpointer(tmp_path, "tag"), mode)
    kept = [best.update(epoch, score, _model(epoch)) for epoch, score in enumerate(scores, 1)]
    return best, kept


def test_keep_best_min_keeps_the_lowest_score_and_its_weights(tmp_path):
    best, kept = _best_after(tmp_path, "min", [3.0, 1.0, 2.0])
    assert kept == [True, True, False]
    assert (best["epoch"], best["score"]) == (2, 1.0)
    assert torch.equal(best.weights()["weight"], torch.full((1, 2), 2.0))


def test_keep_best_max_keeps_the_highest_score(tmp_path):
    best, kept = _best_after(tmp_path, "max", [0.5, 0.9, 0.7])
    assert kept == [True, True, False]
    assert (best["epoch"], best["score"]) == (2, 0.9)
    assert torch.equal(best.weights()["bias"], torch.tensor([2.0]))


@pytest.mark.parametrize("mode", ["min", "max"])
def test_a_tie_goes_to_the_later_epoch(tmp_path, mode):
    best, kept = _best_after(tmp_path, mode, [1.0, 1.0])
    assert kept == [True, True] and best["epoch"] == 2
    assert torch.equal(best.weights()["bias"], torch.tensor([2.0]))


def test_non_finite_scores_are_never_kept(tmp_path):
    best, kept = _best_after(tmp_path, "min", [math.nan, 2.0, -math.inf, math.nan])
    assert kept == [False, True, False, False]
    assert best["epoch"] == 2


def test_keep_best_state_survives_a_checkpoint_round_trip(tmp_path):
    best, _ = _best_after(tmp_path, "min", [3.0, 1.0])
    resumed = KeepBest(Checkpointer(tmp_path, "tag"), "min")
    resumed.load_state_dict(best.state_dict())
    assert not resumed.update(3, 1.5, _model(3))  # still compared against epoch 2's 1.0
    assert resumed["epoch"] == 2


def test_keep_best_rejects_an_unknown_mode(tmp_path):
    with pytest.raises(ValueError, match="'lowest'"):
        KeepBest(Checkpointer(tmp_path, "tag"), "lowest")


def test_weights_without_any_best_checkpoint_raise(tmp_path):
    with pytest.raises(RuntimeError, match="no best checkpoint"):
        KeepBest(Checkpointer(tmp_path, "tag"), "min").weights()


def test_truncated_last_falls_back_to_previous(tmp_path, capsys):
    ckpt = Checkpointer(tmp_path, "tag")
    ckpt.save({"step": 4})
    ckpt.save({"step": 8})
    assert ckpt.load()["step"] == 8
    last = ckpt.path("last")
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # killed mid-write
    assert ckpt.load()["step"] == 4
    assert "unreadable" in capsys.readouterr().err


def test_unreadable_last_without_previous_starts_afresh(tmp_path):
    ckpt = Checkpointer(tmp_path, "tag")
    ckpt.path("last").write_bytes(b"not a checkpoint")
    assert ckpt.load() is None


def test_checkpoint_of_another_config_is_ignored(tmp_path, capsys):
    Checkpointer(tmp_path, "old").save({"step": 3})
    assert Checkpointer(tmp_path, "new").load() is None
    assert "another config" in capsys.readouterr().err
    assert Checkpointer(tmp_path, "old").load()["step"] == 3


def test_best_of_another_config_is_not_used(tmp_path):
    KeepBest(Checkpointer(tmp_path, "old"), "min").update(1, 0.5, _model(1))
    with pytest.raises(RuntimeError, match="no best checkpoint"):
        KeepBest(Checkpointer(tmp_path, "new"), "min").weights()


def test_clear_removes_every_checkpoint(tmp_path):
    ckpt = Checkpointer(tmp_path, "tag")
    ckpt.save({"step": 1})
    ckpt.save({"step": 2})
    KeepBest(ckpt, "min").update(1, 0.0, _model(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt", "previous.pt"]
    ckpt.clear()
    assert list(tmp_path.iterdir()) == []
