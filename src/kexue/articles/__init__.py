"""One module (or package) per article. Each exposes the same small interface:

``DataConfig``, ``RunConfig``
    Plain dataclasses. Their defaults are the article's own (``full``) settings; params.yaml
    overrides them per profile (``articles.<id>.<profile>.data`` and ``.runs.<run>``), and
    unknown keys are rejected by name. ``RunConfig`` has a ``seed`` field.

``prepare(cfg: DataConfig, raw: dict[str, Path], out: Path, source: str) -> None``
    Turn raw datasets (``raw[name]`` is the folder holding that dataset's files) into the
    processed data under ``out`` (``data/processed/<article>/``).

``train(ctx: kexue.training.RunContext) -> float``
    Train one run; write ``ctx.out_dir/model.pt`` (weights only) and ``history.csv`` (one row
    per epoch). Checkpoint to ``ctx.ckpt_dir`` and resume from it (``kexue.training.fit`` does
    both). Returns the training wall time in seconds.

``evaluate(ctx: kexue.training.RunContext) -> dict``
    Evaluate the trained run; return a JSON-able dict of metrics. Figures and sample grids go
    under ``ctx.out_dir / "artifacts"``. The caller adds provenance and writes metrics.json.

``comparisons(metrics: dict[str, dict], source: str) -> list[kexue.report.Comparison]``
    Published-vs-reproduced rows for the summary, from every run's metrics.
"""
