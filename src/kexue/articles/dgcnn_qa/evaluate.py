"""evaluate(): the Sogou score (accuracy, F1, their mean) of the kept EMA weights on the validation
set, with Su's product decoding and the √ ablation (E3); the submission file and example
questions (passages, predicted span, gold answer) go to the artifacts."""

from __future__ import annotations

import math

import torch

from kexue.io import atomic_path, load_torch, write_json
from kexue.metrics.sogou import prediction_lines, score_predictions
from kexue.nn import parameter_count
from kexue.training import RunContext, read_history

from .data import load_prepared
from .engine import Corpus, decode_all, predict
from .train import build_model

N_EXAMPLES = 12


def _examples(valid: Corpus, probs, answers: dict[str, str], ref, n: int) -> list[dict]:
    """The first ``n`` questions: each passage with the predicted answer's first occurrence
    and the passage's own gold answer form."""
    out = []
    for i in range(min(n, len(valid))):
        qid, answer = valid.qids[i], answers[valid.qids[i]]
        passages = []
        for text, gold, (s, e) in zip(valid.passages[i], valid.answers[i], probs[i], strict=True):
            at = text.find(answer) if answer else -1
            passages.append({"text": text, "gold": gold,
                             "span": [at, at + len(answer)] if at >= 0 else None,
                             "max_start": float(s.max()) if len(s) else 0.0,
                             "max_end": float(e.max()) if len(e) else 0.0})
        out.append({"qid": qid, "question": valid.questions[i], "predicted": answer,
                    "gold": ref.gold[qid], "passages": passages})
    return out


def evaluate(ctx: RunContext) -> dict:
    cfg = ctx.cfg
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    _, _, valid_q, ref, vocab, meta = load_prepared(ctx.data_dir)
    valid = Corpus.encode(valid_q, vocab, cfg.variant)
    model = build_model(len(vocab), cfg.model, cfg.variant).to(ctx.device)
    model.load_state_dict(load_torch(ctx.out_dir / "model.pt", map_location=ctx.device))
    probs = predict(model, valid, cfg)
    scores = {}
    for scoring in ("product", "sqrt"):
        answers = decode_all(valid, probs, cfg, scoring)
        scores[scoring] = (score_predictions(ref, valid.qids, answers), answers)
    main, answers = scores[cfg.scoring]
    ctx.artifacts.mkdir(parents=True, exist_ok=True)
    with atomic_path(ctx.artifacts / "predictions.txt") as tmp:
        tmp.write_text("".join(f"{line}\n" for line in prediction_lines(valid.qids, answers)),
                       encoding="utf-8")
    write_json(ctx.artifacts / "examples.json", _examples(valid, probs, answers, ref, N_EXAMPLES))
    history = read_history(ctx.out_dir / "history.csv")
    best = max(history, key=lambda r: (r["val_score"], -r["epoch"]))  # the first maximum
    positions = [x for per_q in probs for s, e in per_q for x in (s, e)]
    return {
        "variant": cfg.variant,
        "dataset": meta["dataset"],
        "data_label": meta["data_label"],
        "synthetic": meta["synthetic"],
        "complete_data": meta["complete_data"],
        "n_valid_questions": len(valid),
        "n_train_samples_per_epoch": meta["n_train_samples_per_epoch"],
        "vocab_size": len(vocab),
        "parameters": parameter_count(model),
        "epochs": cfg.epochs,
        "best_epoch": int(best["epoch"]),
        "ema_decay": cfg.ema_decay,
        "score": main.score,
        "accuracy": main.accuracy,
        "f1": main.f1,
        "scoring": cfg.scoring,
        "product_score": scores["product"][0].score,
        "sqrt_score": scores["sqrt"][0].score,
        "product_minus_sqrt": scores["product"][0].score - scores["sqrt"][0].score,
        "answered_rate": sum(bool(a) for a in answers.values()) / max(1, len(answers)),
        "positive_rate": float(sum((p > cfg.threshold).sum() for p in positions)
                               / max(1, sum(len(p) for p in positions))),
        "val_score_history_max": best["val_score"],
        "score_matches_history": math.isclose(main.score, best["val_score"], abs_tol=1e-9),
        **_metric_check(meta),
    }


def _metric_check(meta: dict) -> dict:
    """E5's counts when prepare checked the metric port on the official files."""
    check = meta.get("metric_check")
    if check is None:
        return {}
    return {f"metric_{k}": check[k] for k in (
        "self_test_rows", "self_test_rows_identical", "check_cases", "check_cases_passed")}
