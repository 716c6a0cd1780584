"""train(): the encoder as a classifier over the training groups, with Adam, the class vectors
projected back to unit norm after every step, and the epoch with the best validation top-1."""

from __future__ import annotations

import math

import torch

from kexue.errors import ConfigError
from kexue.metrics.retrieval import retrieval_metrics
from kexue.nn.margin import margin_loss, project_unit_norm_
from kexue.rng import derive_seed, epoch_permutation
from kexue.training import Run, RunContext

from .config import RunConfig
from .data import TRAIN, VALIDATION, Prepared, load_prepared
from .model import GroupClassifier, SentenceEncoder


def build_model(cfg: RunConfig, data: Prepared) -> GroupClassifier:
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    m = cfg.model
    return GroupClassifier(data.meta["n_tokens"], data.meta["n_classes"], m.embedding, m.hidden,
                           m.masked)


@torch.no_grad()
def encode(encoder: SentenceEncoder, ids: torch.Tensor, device, batch: int = 1000
           ) -> torch.Tensor:
    was_training = encoder.training
    encoder.eval()
    out = torch.cat([encoder(ids[i:i + batch].to(device)) for i in range(0, len(ids), batch)])
    encoder.train(was_training)
    return out


def train(ctx: RunContext) -> None:
    cfg: RunConfig = ctx.cfg
    torch.set_num_threads(cfg.threads or ctx.threads)
    data = load_prepared(ctx.data_dir)
    ids, labels = (torch.from_numpy(a) for a in data.split(TRAIN))
    val_ids, val_groups = (torch.from_numpy(a) for a in data.split(VALIDATION))
    if len(val_ids) < 2:
        raise ConfigError(f"{ctx.data_dir}: {len(val_ids)} validation sentences; the best epoch "
                          f"needs some (raise data.val_fraction)")
    model = build_model(cfg, data).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    steps_per_epoch = math.ceil(len(ids) / cfg.batch_size)
    run = Run(ctx)

    def train_step(step: int) -> dict:
        epoch, i = divmod(step, steps_per_epoch)
        idx = epoch_permutation(len(ids), cfg.seed, epoch)[i * cfg.batch_size:
                                                           (i + 1) * cfg.batch_size]
        x, y = ids[idx].to(ctx.device), labels[idx].to(ctx.device)
        cos = model(x)
        loss = margin_loss(cfg.loss, cos, y, cfg.scale, cfg.margin)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        project_unit_norm_(model.classifier.weight)  # Keras's unit_norm constraint
        return {"loss": loss.item(), "acc": (cos.argmax(1) == y).float().mean().item()}

    best = run.keep_best("max")

    def end_of_epoch(epoch: int, row: dict) -> dict:
        m = retrieval_metrics(encode(model.encoder, val_ids, ctx.device), val_groups)
        best.update(epoch, m["top1"], model)  # ties go to the later epoch, as Su's >=
        return {"val_top1": m["top1"], "val_top5": m["top5"], "val_top10": m["top10"]}

    result = run.fit(modules={"model": model, "opt": opt, "best": best},
                     total_steps=cfg.epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch,
                     train_step=train_step, end_of_epoch=end_of_epoch,
                     checkpoint_every=cfg.checkpoint_every)
    run.finish(best.weights(), result.history)
