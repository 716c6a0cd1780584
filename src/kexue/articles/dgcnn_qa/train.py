"""train(): Su's 2019 recipe. RAdam, focal loss on the global x head products, the debiased
weight EMA used for every evaluation, the Sogou score on the validation set after each epoch,
the best EMA weights kept (strictly better only), and the learning-rate drop with the reload of
the best weights. Stops with ``HeadsCollapsed`` if both heads fall silent. The 2018 variant runs
the same loop with its own model, inputs and labels (Adam and no EMA are run settings)."""

from __future__ import annotations

import math

import torch

from kexue.nn import keras_init
from kexue.rng import derive_seed, epoch_permutation, step_generator
from kexue.training import KeepBest, Run, RunContext, TrackedState

from .config import ModelConfig, RunConfig
from .data import load_prepared, load_train_synonyms
from .engine import (
    Corpus,
    check_collapse,
    ema,
    evaluate,
    focal_loss,
    model_inputs,
    should_drop,
    training_batch,
)
from .features import N_FEATURES
from .model import DGCNN2018, DGCNN2019


def build_model(vocab_size: int, cfg: ModelConfig, variant: str = "2019"
                ) -> DGCNN2019 | DGCNN2018:
    if variant == "2018":
        return DGCNN2018(vocab_size, cfg.width, N_FEATURES, cfg.question_dilations_2018,
                         cfg.passage_dilations_2018, cfg.kernel, cfg.embedding_dropout,
                         cfg.gate_noise)
    return DGCNN2019(vocab_size, cfg.width, cfg.question_dilations, cfg.passage_dilations,
                     cfg.kernel, cfg.embedding_dropout, cfg.gate_dropout)


def build_optimiser(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """RAdam (2019, Su's keras_radam) or Adam (2018); Keras's epsilon, no weight decay."""
    optimiser = torch.optim.RAdam if cfg.optimizer == "radam" else torch.optim.Adam
    return optimiser(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)


class KeepFirstBest(KeepBest):
    """Su saves only when the score is strictly above the best so far (the first maximum)."""

    def is_better(self, score: float) -> bool:
        return self["score"] is None or score > self["score"]


def restart_optimiser(opt: torch.optim.Optimizer, lr: float) -> None:
    """A fresh optimiser at ``lr``: step counter 0 (RAdam's warm-up restarts), zero moments."""
    opt.state.clear()
    for group in opt.param_groups:
        group["lr"] = lr


def train(ctx: RunContext) -> None:
    cfg: RunConfig = ctx.cfg
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train_q, copies, valid_q, ref, vocab, _ = load_prepared(ctx.data_dir)
    corpus = Corpus.encode(train_q, vocab, cfg.variant, load_train_synonyms(ctx.data_dir))
    valid = Corpus.encode(valid_q, vocab, cfg.variant)
    samples = [i for i, c in enumerate(copies) for _ in range(c)]
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = build_model(len(vocab), cfg.model, cfg.variant)
    keras_init(model)
    model.to(ctx.device)
    opt = build_optimiser(model, cfg)
    # Keras keeps the EMA's shadow sum and step count across the drop: so does this one
    averaged = ema(model, cfg.ema_decay)
    steps_per_epoch = math.ceil(len(samples) / cfg.batch_size)
    run = Run(ctx)
    best = KeepFirstBest(run.ckpt, "max")
    schedule = TrackedState(dropped_early=False, drops=0)

    def train_step(step: int) -> dict:
        epoch, i = divmod(step, steps_per_epoch)
        order = epoch_permutation(len(samples), cfg.seed, epoch)
        idx = [samples[j] for j in order[i * cfg.batch_size:(i + 1) * cfg.batch_size].tolist()]
        g = step_generator(cfg.seed, step)
        torch.manual_seed(int(torch.randint(0, 2**62, (), generator=g)))  # dropout masks
        b = {k: v.to(ctx.device) for k, v in training_batch(corpus, idx, g, cfg).items()}
        model.train()
        loss = focal_loss(model(*model_inputs(b)), b, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        averaged.update_parameters(model)
        return {"loss": loss.item(), "label_rate": b["start"].sum().item() / b["mask"].sum().item()}

    def end_of_epoch(epoch: int, row: dict) -> dict:
        e = epoch - 1  # 0-based, as in Su's callback
        result = evaluate(averaged.module, valid, ref, cfg)
        best.update(e, result.score.score, averaged.module)
        check_collapse(e, result, cfg)
        lr = opt.param_groups[0]["lr"]
        drop = should_drop(e, result.score.score, best["epoch"], schedule["dropped_early"], cfg)
        if drop and best["score"] is not None:
            model.load_state_dict(best.weights(map_location=ctx.device))
            restart_optimiser(opt, cfg.lr_low)
            schedule["dropped_early"] = schedule["dropped_early"] or e + 1 < cfg.lr_drop_epoch
            schedule["drops"] += 1
        return {**result.metrics("val_"), "lr": lr, "lr_drop": int(drop)}

    result = run.fit(modules={"model": model, "opt": opt, "ema": averaged, "best": best,
                              "schedule": schedule},
                     total_steps=cfg.epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch,
                     train_step=train_step, end_of_epoch=end_of_epoch,
                     checkpoint_every=cfg.checkpoint_every)
    run.finish(best.weights(), result.history)
