"""evaluate(): macro-F1 of both stages, per-class F1, confusion matrix, example spectra;
MNIST-1D accuracy (spec §6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kexue.data.embedded import load_npz
from kexue.data.spectra import CLASSES, wavelength_grid
from kexue.io import load_torch
from kexue.metrics.classification import confusion, macro_f1, per_class_f1
from kexue.nn import parameter_count
from kexue.plots import confusion_figure, save_figure
from kexue.training import RunContext, effective_precision, read_history

from .data import load_prepared
from .model import build_model
from .train import predict


def _load_model(ctx: RunContext, task: str):
    model = build_model(task, ctx.cfg.model.dropout).to(ctx.device)
    model.load_state_dict(load_torch(Path(ctx.out_dir) / "model.pt", map_location=ctx.device))
    return model.eval()


def _precision(ctx: RunContext) -> dict:
    """The precision asked for and the one training and evaluation really used."""
    return {"precision": ctx.cfg.precision,
            "effective_precision": effective_precision(ctx.device, ctx.cfg.precision)}


def _stage_best(history: list[dict], stage: int) -> tuple[float, int]:
    rows = [r for r in history if int(r["stage"]) == stage]
    best = max(rows, key=lambda r: (r["val_macro_f1"], r["epoch"]))  # a later tie wins
    return float(best["val_macro_f1"]), int(best["epoch"])


def _evaluate_spectra(ctx: RunContext) -> dict:
    data = load_prepared(ctx.data_dir)
    history = read_history(Path(ctx.out_dir) / "history.csv")
    (s1, e1), (s2, e2) = _stage_best(history, 1), _stage_best(history, 2)
    model = _load_model(ctx, "spectra")
    if data.test_flux is not None:
        eval_set, x, y = "test", data.test_flux, data.test_labels
    else:  # the competition's test sets are unlabelled: report the validation split
        eval_set, x, y = "validation", data.flux[data.n_train:], data.labels[data.n_train:]
    prob = predict(model, x, ctx.device, ctx.cfg.eval_batch, precision=ctx.cfg.precision)
    pred = prob.argmax(1)
    f1 = per_class_f1(y, pred)
    out = Path(ctx.out_dir) / "artifacts"
    _plot_confusion(confusion(y, pred), CLASSES, out / "confusion.png",
                    f"{eval_set} set, {data.meta['data_label']}")
    _plot_examples(x, y, prob, ctx.cfg.n_examples, out / "examples.png", data.meta["data_label"])
    cfg = ctx.cfg
    return {
        "task": "spectra",
        "data_label": data.meta["data_label"],
        "synthetic": bool(data.meta["synthetic"]),
        "complete_data": not data.meta["synthetic"] and not ctx.data_cfg.n_train_val,
        "profile": ctx.profile,
        "index_sha256": data.meta.get("index_sha256"),
        "grid": data.meta["grid"],
        "classes": list(CLASSES),
        "parameters": parameter_count(model),
        **_precision(ctx),
        "batch_mix": cfg.batch_mix, "steps_per_epoch": cfg.steps_per_epoch,
        "epochs1": cfg.epochs1, "epochs2": cfg.epochs2,
        "val_macro_f1_stage1": s1, "best_epoch_stage1": e1,
        "val_macro_f1_stage2": s2, "best_epoch_stage2": e2,
        # Su's rule: stage 2's weights ship only if they reach the stage-1 best
        "shipped_stage": 2 if s2 >= s1 else 1,
        "eval_set": eval_set, "n_eval": len(y),
        "macro_f1": macro_f1(y, pred),
        "per_class_f1": {c: float(v) for c, v in zip(CLASSES, f1)},
        "confusion": confusion(y, pred).tolist(),  # rows true, columns predicted
        "constant_spectra": data.meta["constant_spectra"],
        "counts": {"train": data.meta["train_counts"], "val": data.meta["val_counts"],
                   **({"test": data.meta["test_counts"]} if "test_counts" in data.meta else {})},
    }


def _evaluate_mnist1d(ctx: RunContext) -> dict:
    d = load_npz(Path(ctx.data_dir) / "mnist1d.npz", {"x_test": ("f", 2), "y_test": ("i", 1)})
    model = _load_model(ctx, "mnist1d")
    pred = predict(model, d["x_test"], ctx.device, ctx.cfg.eval_batch, scale=False,
                   precision=ctx.cfg.precision).argmax(1)
    cm = confusion(d["y_test"], pred, 10)
    _plot_confusion(cm, [str(i) for i in range(10)], Path(ctx.out_dir) / "artifacts" /
                    "confusion.png", "MNIST-1D test set (adapted network)")
    return {
        "task": "mnist1d",
        "complete_data": True,  # the package generates the published dataset itself
        "data_label": "MNIST-1D (mnist1d 0.0.2.post1, generated offline, seed 42)",
        "profile": ctx.profile,
        "adaptation": "8 blocks, same widths, 3 max-pools (40 -> 5), no /100, 10-way head",
        "parameters": parameter_count(model),
        **_precision(ctx),
        "steps": ctx.cfg.mnist_steps, "batch": ctx.cfg.mnist_batch,
        "n_test": len(pred),
        "test_accuracy": float((pred == d["y_test"]).mean()),
        "confusion": cm.tolist(),
    }


def evaluate(ctx: RunContext) -> dict:
    return _evaluate_mnist1d(ctx) if ctx.cfg.task == "mnist1d" else _evaluate_spectra(ctx)


# ---------------------------------------------------------------- figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_confusion(cm: np.ndarray, names, path: Path, title: str) -> None:
    save_figure(confusion_figure(cm, names, title), path)


def _plot_examples(x, y, prob, per_class: int, path: Path, label: str) -> None:
    plt = _pyplot()
    lam = wavelength_grid()
    fig, axes = plt.subplots(len(CLASSES), per_class, figsize=(4 * per_class, 2.2 * len(CLASSES)),
                             squeeze=False, sharex=True)
    for c, name in enumerate(CLASSES):
        members = np.flatnonzero(y == c)[:per_class]  # the first ones: no cherry-picking
        for j, ax in enumerate(axes[c]):
            if j >= len(members):
                ax.set_axis_off()
                continue
            i = members[j]
            ax.plot(lam, np.asarray(x[i]) / 100, lw=0.5, color="k")
            guess = int(prob[i].argmax())
            ax.set_title(f"true {name} | pred {CLASSES[guess]} ({prob[i, guess]:.2f})",
                         fontsize=8, color="k" if guess == c else "r")
    for ax in axes[-1]:
        ax.set_xlabel("λ (Å, assumed linear grid)")
    fig.suptitle(f"example spectra (flux / 100): {label}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
