"""params.yaml: loading, validation against each article's config dataclasses, resolution.

Layout (validated structurally by ``workflow/schemas/params.schema.yaml`` in Snakemake, and
key by key here against the dataclasses the article modules declare)::

    profile: default            # smoke | default | full
    data_source: embedded       # embedded | official
    articles:
      <article>:
        <profile>:
          data: {...}           # fields of the article's DataConfig
          runs:
            <run>: {...}        # fields of the article's RunConfig
          official: {data: {...}, runs: {<run>: {...}}}   # optional: overrides that apply
                                # when data_source is official (real data, other sizes)

Every profile of an article lists the same runs, so the DAG (and the generated dvc.yaml) does
not change with the profile: only sizes do.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from kexue.registry import ARTICLES, get_article

PROFILES = ("smoke", "default", "full")
DATA_SOURCES = ("embedded", "official")
TOP_LEVEL_KEYS = {"profile", "data_source", "device", "mirror", "data_dirs", "articles"}


class ConfigError(ValueError):
    """params.yaml is not valid; the message names the offending key."""


def load_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    validate_params(params, where=str(path))
    return params


def _check_fields(cls, values: Any, where: str) -> None:
    if values is None:
        return
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(known))})")


def _check_block(module, block: dict, here: str, allow_official: bool) -> None:
    allowed = ("data", "runs", "official") if allow_official else ("data", "runs")
    for key in block:
        if key not in allowed:
            raise ConfigError(f"{here}: unknown key {key!r} (allowed: {', '.join(allowed)})")
    _check_fields(module.DataConfig, block.get("data"), f"{here}.data")
    for run, values in (block.get("runs") or {}).items():
        _check_fields(module.RunConfig, values, f"{here}.runs.{run}")
    if allow_official and block.get("official") is not None:
        _check_block(module, block["official"], f"{here}.official", allow_official=False)


def validate_params(params: dict[str, Any], where: str = "params.yaml") -> None:
    for key in params:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{where}: unknown top-level key {key!r}")
    if params.get("profile") not in PROFILES:
        raise ConfigError(f"{where}: unknown profile {params.get('profile')!r} "
                          f"(choose one of {', '.join(PROFILES)})")
    if params.get("data_source") not in DATA_SOURCES:
        raise ConfigError(f"{where}: unknown data_source {params.get('data_source')!r} "
                          f"(choose one of {', '.join(DATA_SOURCES)})")
    for article_id, block in (params.get("articles") or {}).items():
        if article_id not in ARTICLES:
            raise ConfigError(f"{where}: unknown article {article_id!r} "
                              f"(registered: {', '.join(sorted(ARTICLES))})")
        module = get_article(article_id).module
        run_names = None
        for profile, prof_block in (block or {}).items():
            here = f"{where}: articles.{article_id}.{profile}"
            if profile not in PROFILES:
                raise ConfigError(f"{here}: unknown profile {profile!r}")
            _check_block(module, prof_block or {}, here, allow_official=True)
            runs = (prof_block or {}).get("runs") or {}
            for run in ((prof_block or {}).get("official") or {}).get("runs") or {}:
                if run not in runs:
                    raise ConfigError(f"{here}.official.runs: unknown run {run!r}")
            if run_names is not None and set(runs) != run_names:
                raise ConfigError(f"{here}: runs {sorted(runs)} differ from another profile's "
                                  f"{sorted(run_names)}; every profile must list the same runs")
            run_names = set(runs)
        if set(block or {}) != set(PROFILES):
            missing = sorted(set(PROFILES) - set(block or {}))
            raise ConfigError(f"{where}: articles.{article_id} lacks profile(s) {missing}")


def article_ids(params: dict[str, Any]) -> list[str]:
    return list(params.get("articles") or {})


def run_names(params: dict[str, Any], article_id: str) -> list[str]:
    return list(params["articles"][article_id][params["profile"]].get("runs") or {})


def data_values(params: dict[str, Any], article_id: str) -> dict[str, Any]:
    """The DataConfig overrides in force: profile block, then its ``official`` overrides."""
    block = _profile_block(params, article_id)
    extra = (block.get("official") or {}) if params["data_source"] == "official" else {}
    return {**(block.get("data") or {}), **(extra.get("data") or {})}


def run_values(params: dict[str, Any], article_id: str, run: str) -> dict[str, Any]:
    block = _profile_block(params, article_id)
    runs = block.get("runs") or {}
    if run not in runs:
        raise ConfigError(f"articles.{article_id}: unknown run {run!r} (runs: {sorted(runs)})")
    extra = (block.get("official") or {}) if params["data_source"] == "official" else {}
    return {**(runs[run] or {}), **((extra.get("runs") or {}).get(run) or {})}


def _profile_block(params, article_id):
    try:
        return params["articles"][article_id][params["profile"]]
    except KeyError:
        raise ConfigError(f"params.yaml has no block articles.{article_id}") from None


def data_config(params: dict[str, Any], article_id: str):
    return get_article(article_id).module.DataConfig(**data_values(params, article_id))


def run_config(params: dict[str, Any], article_id: str, run: str):
    return get_article(article_id).module.RunConfig(**run_values(params, article_id, run))


def data_dir_override(params: dict[str, Any], dataset: str) -> Path | None:
    """User folder holding a dataset in its official layout (skips the download)."""
    value = (params.get("data_dirs") or {}).get(dataset)
    return Path(value).expanduser() if value else None


def mirror(params: dict[str, Any]) -> str | None:
    """Mirror root (folder or http URL); the environment variable wins over params.yaml."""
    return os.environ.get("KEXUE_DATA_MIRROR") or params.get("mirror") or None
