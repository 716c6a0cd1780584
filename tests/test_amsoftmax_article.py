import numpy as np
import pytest
import torch

from kexue.articles.amsoftmax_sim import data as am_data
from kexue.articles.amsoftmax_sim.config import DataConfig, EncoderModel, RunConfig, SyntheticGroups
from kexue.comparison import ArticleResults, RunResults
from kexue.data.paraphrase import write_lexicon
from kexue.errors import DataError
from kexue.text import PAD

torch.set_num_threads(1)


def small_data_config(**kw) -> DataConfig:
    synthetic = SyntheticGroups(groups=120, values_per_type=40, heldout_heads=2,
                                heldout_modifiers=2)
    return DataConfig(synthetic=synthetic, val_fraction=0.1, min_count=2, **kw)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("am")
    (root / "raw").mkdir()
    write_lexicon(root / "raw")
    am_data.prepare(small_data_config(), {"paraphrase_lexicon": root / "raw"}, root / "out",
                    "embedded")
    return root / "out"


def test_normalise_is_halfwidth_then_lower():
    assert am_data.normalise("ＡＢＣ沙发？Ｘ") == "abc沙发?x"


def test_prepared_layout(prepared):
    d = am_data.load_prepared(prepared)
    meta = d.meta
    assert meta["synthetic"] and "SYNTHETIC" in meta["data_label"]
    assert d.ids.shape[1] == 32 and d.ids.dtype == np.int64
    # post-padding: once a row has padded, it stays padded
    padded = d.ids == PAD
    assert (padded[:, :-1] <= padded[:, 1:]).all() and padded[:, -1].all()
    counts = meta["counts"]
    assert counts["train"]["groups"] + counts["validation"]["groups"] == 108
    assert counts["validation"]["groups"] == round(108 * 0.1)
    assert counts["heldout"]["groups"] == 12
    for part in (am_data.TRAIN, am_data.VALIDATION, am_data.HELDOUT):
        _, groups = d.split(part)
        assert set(groups.tolist()) == set(range(groups.max() + 1))  # numbered 0..n-1
    assert meta["n_classes"] == counts["train"]["groups"]
    assert len(np.unique(d.ids, axis=0)) == len(d.ids)  # de-duplicated
    assert len(am_data.load_texts(prepared)) == len(d.ids)


def test_tongyiju_split_and_missing_file(tmp_path):
    lines = [f"{g}\t句子{g}号{k}" for g in range(10) for k in range(3)]
    (tmp_path / "tongyiju.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = DataConfig(datasets=("tongyiju",), val_fraction=0.0, min_count=1, deduplicate=False)
    am_data.prepare(cfg, {"tongyiju": tmp_path}, tmp_path / "out", "official")
    d = am_data.load_prepared(tmp_path / "out")
    assert d.meta["complete_data"] and d.meta["counts"]["heldout"] == {"groups": 1, "sentences": 3}
    with pytest.raises(DataError, match="tongyiju.csv: missing"):
        am_data.tongyiju_corpus(tmp_path / "nowhere", 0.1)


def test_lcqmc_components_from_the_mirror(shared_datasets, tmp_path):
    corpus = am_data.lcqmc_corpus(shared_datasets / "lcqmc")
    assert corpus.notes["dev_groups_dropped_for_sharing_a_sentence"] == 114
    assert (len(corpus.train), len(corpus.heldout)) == (5878, 3072)
    assert not corpus.synthetic and not corpus.complete_data


def make_context(tmp_path, data_dir, loss="am_softmax", epochs=2):
    from kexue.training import RunContext

    cfg = RunConfig(loss=loss, model=EncoderModel(embedding=8, hidden=8), epochs=epochs,
                    batch_size=50, examples=2, threads=1)
    out = tmp_path / loss
    return RunContext(article="amsoftmax_sim", run=loss, seed=0, cfg=cfg,
                      data_cfg=small_data_config(), data_dir=data_dir, out_dir=out,
                      ckpt_dir=tmp_path / "ckpt" / loss, device=torch.device("cpu"),
                      profile="smoke", source="embedded", threads=1)


def test_train_projects_class_vectors_after_every_step_and_evaluates(prepared, tmp_path,
                                                                     monkeypatch):
    from kexue.articles.amsoftmax_sim import evaluate as am_eval
    from kexue.articles.amsoftmax_sim import train as am_train
    from kexue.io import load_torch

    real = am_train.project_unit_norm_
    calls = []

    def checked(weight):
        real(weight)
        calls.append(torch.allclose(weight.norm(dim=1), torch.ones(len(weight)), atol=1e-6))

    monkeypatch.setattr(am_train, "project_unit_norm_", checked)
    ctx = make_context(tmp_path, prepared)
    am_train.train(ctx)
    n_train = (am_data.load_prepared(prepared).part == am_data.TRAIN).sum()
    assert len(calls) == 2 * int(np.ceil(n_train / 50)) and all(calls)
    weights = load_torch(ctx.out_dir / "model.pt")
    assert torch.allclose(weights["classifier.weight"].norm(dim=1),
                          torch.ones(len(weights["classifier.weight"])), atol=1e-6)
    m = am_eval.evaluate(ctx)
    for key in ("top1", "top5", "top10", "top1_own_group", "train_accuracy", "unhittable"):
        assert key in m
    assert 0 <= m["top1"] <= m["top5"] <= m["top10"] <= 1
    assert m["best_epoch"] in (1, 2) and m["synthetic"]
    assert (ctx.artifacts / "map.png").is_file()
    examples = (ctx.artifacts / "examples.json").read_text()
    assert '"hit"' in examples


def test_ordering_gaps_are_paired_by_seed():
    from kexue.articles.amsoftmax_sim.published import comparisons

    def run(loss, tops):
        return RunResults(loss, {s: {"loss": loss, "top1": t, "top5": t, "top10": t,
                                     "train_accuracy": 0.95, "epochs": 6,
                                     "data_label": "SYNTHETIC", "complete_data": False}
                                 for s, t in enumerate(tops)})

    results = ArticleResults("amsoftmax_sim", "default", "embedded", {
        "softmax": run("softmax", [0.80, 0.82]), "am_softmax": run("am_softmax", [0.83, 0.81]),
        "simpler_a_softmax": run("simpler_a_softmax", [0.81, 0.83])})
    rows = {c.run: c for c in comparisons(results)}
    gap = rows["am_softmax − softmax"]
    assert gap.values == pytest.approx((0.03, -0.01))
    assert gap.published.holds(0.01) and not gap.published.holds(-0.001)
    assert gap.status == "not comparable"  # synthetic data at the default profile


def test_training_killed_and_resumed_gives_identical_weights(prepared, tmp_path, monkeypatch):
    import dataclasses

    from kexue.articles.amsoftmax_sim import train as am_train
    from kexue.io import load_torch

    reference = make_context(tmp_path / "ref", prepared, epochs=2)
    reference.cfg = dataclasses.replace(reference.cfg, checkpoint_every=3)
    am_train.train(reference)

    ctx = make_context(tmp_path / "killed", prepared, epochs=2)
    ctx.cfg = reference.cfg
    real, calls = am_train.margin_loss, []

    def dies_at_step_7(*args, **kw):
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(am_train, "margin_loss", dies_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        am_train.train(ctx)
    monkeypatch.setattr(am_train, "margin_loss", real)
    am_train.train(ctx)
    a, b = load_torch(reference.out_dir / "model.pt"), load_torch(ctx.out_dir / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
