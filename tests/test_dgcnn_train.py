"""The 2019 recipe's pieces: the debiased EMA, the lr-drop rule, the training crop and labels,
the loss masks, the optimiser restart, and a learning check on the synthetic KB-QA."""

import pytest
import torch

from kexue.articles.dgcnn_qa.config import ModelConfig, RunConfig
from kexue.articles.dgcnn_qa.engine import (
    Corpus,
    Evaluation,
    HeadsCollapsed,
    check_collapse,
    crop_window,
    ema,
    evaluate,
    focal_loss,
    model_inputs,
    should_drop,
    span_labels,
    training_batch,
)
from kexue.articles.dgcnn_qa.train import build_model, build_optimiser, restart_optimiser
from kexue.data import kbqa
from kexue.metrics.sogou import Reference
from kexue.text import Vocabulary

torch.set_num_threads(1)


def test_ema_is_keras_zero_debiased_average():
    d = 0.9
    w = torch.nn.Parameter(torch.zeros(1))
    model = torch.nn.Module()
    model.w = w
    averaged = ema(model, d)
    shadow, values = 0.0, [3.0, -1.0, 2.0, 5.0]
    for t, v in enumerate(values, 1):
        with torch.no_grad():
            w.fill_(v)
        averaged.update_parameters(model)
        shadow = d * shadow + (1 - d) * v
        assert averaged.module.w.item() == pytest.approx(shadow / (1 - d ** t))
    # the first value is the average after one step (not the initial weights)
    assert values[0] == pytest.approx((1 - d) * values[0] / (1 - d))


@pytest.mark.parametrize(("epoch", "score", "best_epoch", "dropped", "expected"), [
    (29, 0.9, 29, False, True),   # e + 1 == 30: always
    (29, 0.9, 29, True, True),    # ... also after an early drop (a second reload)
    (15, 0.1, 0, False, False),   # before the 17th epoch: never early
    (16, 0.4, 16, False, True),   # from e = 16: score < 0.5
    (16, 0.7, 11, False, True),   # best 5 epochs old
    (16, 0.7, 12, False, False),  # best 4 epochs old
    (20, 0.1, 0, True, False),    # early drop happens once (first stage only)
    (40, 0.1, 0, False, False),   # after epoch 30: no more drops
])
def test_lr_drop_rule(epoch, score, best_epoch, dropped, expected):
    assert should_drop(epoch, score, best_epoch, dropped, RunConfig()) is expected


def test_crop_window_ranges():
    cfg = RunConfig()
    g = torch.Generator().manual_seed(0)
    assert crop_window(100, g, cfg) == (0, 100)  # short: whole
    seen_random = False
    for _ in range(200):
        a, b = crop_window(1000, g, cfg)
        if (a, b) == (0, 256):
            continue
        seen_random = True
        assert 0 <= a <= 1000 - 128 and a + 128 <= b <= min(1000, a + 256)
    assert seen_random
    for _ in range(50):
        a, b = crop_window(150, g, cfg)
        assert (a, b) == (0, 150) or (b - a >= 128 and b <= 150)


def test_span_labels_mark_all_occurrences():
    start, end = span_labels("北京和北京", "北京")
    assert start.tolist() == [1, 0, 0, 1, 0] and end.tolist() == [0, 1, 0, 0, 1]
    assert span_labels("abc", "")[0].sum() == 0


def _tiny_corpus():
    train, _, valid, valid_expand = kbqa.build(seed=1, n_train=64, n_valid=16, n_subjects=40)
    texts = [q.question for q in train + valid] + [p.text for q in train + valid
                                                   for p in q.passages]
    vocab = Vocabulary.build(texts)
    ref = Reference.from_lines(f"{q}\t{g}\t{'|'.join(f)}" for q, g, f in valid_expand)
    return Corpus.encode(train, vocab), Corpus.encode(valid, vocab), ref, vocab


def test_training_batch_labels_the_chosen_passages_answer():
    corpus, _, _, _ = _tiny_corpus()
    b = training_batch(corpus, list(range(16)), torch.Generator().manual_seed(0), RunConfig())
    assert b["passage"].shape == b["start"].shape == b["mask"].shape
    assert ((b["start"] > 0) <= b["mask"]).all()  # labels only on real positions
    assert (b["start"].sum(1) == b["end"].sum(1)).all()
    assert b["start"].sum() > 0


def test_loss_ignores_padding_positions():
    corpus, _, _, vocab = _tiny_corpus()
    cfg = RunConfig()
    torch.manual_seed(0)
    model = build_model(len(vocab), ModelConfig(width=16)).eval()
    b = training_batch(corpus, list(range(8)), torch.Generator().manual_seed(0), cfg)
    wider = {k: torch.nn.functional.pad(v, (0, 7)) for k, v in b.items()}
    loss = focal_loss(model(b["question"], b["passage"]), b, cfg)
    loss_wider = focal_loss(model(wider["question"], wider["passage"]), wider, cfg)
    torch.testing.assert_close(loss, loss_wider)


def test_restart_optimiser_resets_radam_state():
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.RAdam([w], lr=1e-3, eps=1e-7)
    w.sum().backward()
    opt.step()
    assert opt.state[w]["step"] == 1
    restart_optimiser(opt, 1e-4)
    assert len(opt.state) == 0 and opt.param_groups[0]["lr"] == 1e-4


def test_collapse_is_reported():
    result = Evaluation(score=None, answers={}, start_positive_rate=0.0, end_positive_rate=0.0)
    cfg = RunConfig()
    check_collapse(0, result, cfg)  # too early to tell
    with pytest.raises(HeadsCollapsed, match="collapsed"):
        check_collapse(cfg.collapse_check_from, result, cfg)


@pytest.mark.parametrize("variant, cfg", [
    ("2019", RunConfig(batch_size=32, lr=3e-3, crop_max=128, crop_min=64)),  # RAdam, as the CPU profiles
    ("2018", RunConfig(variant="2018", optimizer="adam", batch_size=32, lr=1e-3, crop_max=128,
                       crop_min=64, max_span=10)),
])
def test_the_model_learns_the_synthetic_task(variant, cfg):
    """250 steps on a small KB-QA: the validation score of the trained weights rises well above
    the untrained model's (2018: hand features and synonym labels from the expanded answers)."""
    train, train_expand, valid, valid_expand = kbqa.build(seed=5, n_train=400, n_valid=60,
                                                          n_subjects=120)
    texts = [q.question for q in train + valid] + [p.text for q in train + valid
                                                   for p in q.passages]
    vocab = Vocabulary.build(texts)
    ref = Reference.from_lines(f"{q}\t{g}\t{'|'.join(f)}" for q, g, f in valid_expand)
    synonyms = {q: tuple(f) for q, _, f in train_expand} if variant == "2018" else None
    corpus = Corpus.encode(train, vocab, variant, synonyms)
    val = Corpus.encode(valid, vocab, variant)
    torch.manual_seed(0)
    model = build_model(len(vocab), ModelConfig(width=32), variant)
    opt = build_optimiser(model, cfg)
    before = evaluate(model, val, ref, cfg).score.score
    losses = []
    for step in range(250):
        g = torch.Generator().manual_seed(step)
        b = training_batch(corpus, torch.randint(0, len(corpus), (32,), generator=g).tolist(), g,
                           cfg)
        model.train()
        loss = focal_loss(model(*model_inputs(b)), b, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    after = evaluate(model, val, ref, cfg)
    assert sum(losses[-20:]) < 0.5 * sum(losses[:20])
    assert after.score.score > max(0.15, before + 0.1), (before, after.metrics())


class _Killed(BaseException):
    pass


def _context(tmp_path, run_dir, **overrides):
    from kexue.articles.dgcnn_qa.config import DataConfig
    from kexue.articles.dgcnn_qa.data import prepare
    from kexue.training import RunContext

    raw, processed = tmp_path / "raw", tmp_path / "processed"
    if not processed.exists():
        kbqa.write(raw, seed=2, n_train=48, n_valid=12, n_subjects=30)
        prepare(DataConfig(min_count=1), {"kbqa": raw}, processed, "embedded")
    settings = {"ema_decay": 0.9, **overrides}
    cfg = RunConfig(model=ModelConfig(width=8), batch_size=16, epochs=3, checkpoint_every=2,
                    lr_drop_epoch=2, threads=1, **settings)
    return RunContext("dgcnn_qa", "tiny", 0, cfg, DataConfig(), processed, tmp_path / run_dir,
                      tmp_path / run_dir / "ckpt", torch.device("cpu"), "smoke", "embedded")


@pytest.mark.parametrize("overrides", [{}, {"variant": "2018", "optimizer": "adam",
                                           "ema_decay": 0.0, "max_span": 10}],
                         ids=["2019", "2018"])
def test_killed_training_resumes_to_the_same_model(tmp_path, monkeypatch, overrides):
    """3 epochs of 3 steps with the lr drop (reload of the best EMA weights) after epoch 2;
    killed after the third checkpoint (step 4), resumed: the same weights and history (the
    2018 variant: its gate noise and features included)."""
    from kexue.articles.dgcnn_qa.evaluate import evaluate as evaluate_run
    from kexue.articles.dgcnn_qa.train import train
    from kexue.io import load_torch, read_json
    from kexue.training import Checkpointer, read_history

    reference = _context(tmp_path, "reference", **overrides)
    train(reference)
    saves, real_save = [], Checkpointer.save

    def save_then_die(self, state, name="last"):
        real_save(self, state, name)
        saves.append(name)
        if saves.count("last") == 3:
            raise _Killed

    killed = _context(tmp_path, "killed", **overrides)
    monkeypatch.setattr(Checkpointer, "save", save_then_die)
    with pytest.raises(_Killed):
        train(killed)
    monkeypatch.setattr(Checkpointer, "save", real_save)
    assert load_torch(killed.ckpt_dir / "last.pt")["step"] == 4
    train(killed)
    a, b = (load_torch(c.out_dir / "model.pt") for c in (reference, killed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = read_history(reference.out_dir / "history.csv")
    resumed = read_history(killed.out_dir / "history.csv")
    assert [{k: v for k, v in r.items() if k != "wall_time"} for r in history] == [
        {k: v for k, v in r.items() if k != "wall_time"} for r in resumed]
    assert [r["lr_drop"] for r in history] == [0, 1, 0] and history[2]["lr"] == 1e-4
    metrics = evaluate_run(reference)
    assert metrics["score_matches_history"] and metrics["synthetic"]
    assert metrics["variant"] == overrides.get("variant", "2019")
    assert {"product_score", "sqrt_score", "accuracy", "f1"} <= set(metrics)
    lines = (reference.artifacts / "predictions.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12 and all(line.count("\t") == 1 for line in lines)
    assert len(read_json(reference.artifacts / "examples.json")) == 12
