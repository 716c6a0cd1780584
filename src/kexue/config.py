"""params.yaml: loading, validation of every value, and resolution into config dataclasses.

Layout (the structure is also checked by ``workflow/schemas/params.schema.yaml`` in Snakemake)::

    profile: default            # smoke | default | full
    data_source: embedded       # embedded | official
    device: auto                # auto | cpu | cuda | cuda:<n>
    articles:
      <article>:
        <profile>:
          data: {...}           # fields of the article's DataConfig
          seeds: [0]            # default seeds of every run (one training job per seed)
          runs:
            <run>: {...}        # fields of the article's RunConfig (and `seeds`)
          official: {data: {...}, runs: {<run>: {...}}}   # overrides used with official data

Every value is checked against the type hints of the article's dataclasses before any job
starts: types, choices (``Literal``), ranges (``Positive[int]``, ``Probability[float]``, ...)
and nested model configs; a config class may add cross-field rules in ``check()``. Errors name
the key, the value and what is expected. This module imports no torch: Snakemake reads it
while it parses the DAG.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import re
import types
import typing
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml

from kexue.constraints import NonNegative, Positive, Probability, Range
from kexue.data.registry import DATASETS
from kexue.errors import ConfigError
from kexue.registry import get_article, implemented_ids

PROFILES = ("smoke", "default", "full")
DATA_SOURCES = ("embedded", "official")
TOP_LEVEL_KEYS = {"profile", "data_source", "device", "mirror", "data_dirs", "articles"}
BLOCK_KEYS = ("data", "seeds", "runs", "official")
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # no option, no "..", no shell word

__all__ = ["ConfigError", "NonNegative", "Positive", "Probability", "Range"]


# --------------------------------------------------------------------------- value checking


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        ranges = [a for a in args[1:] if isinstance(a, Range)]
        bounds = [f"{k} {v:g}" for r in ranges for k, v in
                  (("≥", r.ge), (">", r.gt), ("≤", r.le), ("<", r.lt)) if v is not None]
        return _describe(args[0]) + (f" {' and '.join(bounds)}" if bounds else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (tuple, list):
        return f"a list of {_describe(args[0])}" if args else "a list"
    if origin is dict:
        return f"a mapping to {_describe(args[1])}" if args else "a mapping"
    if dataclasses.is_dataclass(hint):
        return f"a mapping of {hint.__name__} fields"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            type(None): "null"}.get(hint, getattr(hint, "__name__", str(hint)))


def _fail(where: str, value: Any, hint) -> typing.NoReturn:
    raise ConfigError(f"{where}: {value!r} is not valid (expected {_describe(hint)})")


def coerce(value: Any, hint, where: str) -> Any:
    """``value`` checked (and lists turned into tuples, ints into floats) against ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin is Annotated:
        try:
            out = coerce(value, args[0], where)
        except ConfigError:
            _fail(where, value, hint)
        for r in (a for a in args[1:] if isinstance(a, Range)):
            if (why := r.violated(out)) is not None:
                raise ConfigError(f"{where}: {value!r} is out of range (expected {why})")
        return out
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        _fail(where, value, hint)
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return coerce(value, option, where)
            except ConfigError:
                continue
        _fail(where, value, hint)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            _fail(where, value, hint)
        item = args[0] if args else Any
        out = [coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            _fail(where, value, hint)
        item = args[1] if len(args) == 2 else Any
        return {k: coerce(v, item, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            _fail(where, value, hint)
        return build(hint, value, where)
    if hint is bool:
        if isinstance(value, bool):
            return value
        _fail(where, value, hint)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        _fail(where, value, hint)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        _fail(where, value, hint)
    if hint is str or hint is type(None):
        if isinstance(value, hint):
            return value
        _fail(where, value, hint)
    raise TypeError(f"{where}: unsupported config type {hint!r}")


def build(cls, values: dict | None, where: str):
    """An instance of the config dataclass ``cls`` from ``values`` (missing keys keep their
    defaults), every value checked; then ``cls.check()`` for cross-field rules."""
    values = values or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} "
                          f"(allowed: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            kwargs[name] = build(hint, value, f"{where}.{name}")
        else:
            kwargs[name] = coerce(value, hint, f"{where}.{name}")
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        try:
            check()
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return obj


# --------------------------------------------------------------------------- params.yaml


# libyaml's parser when PyYAML has it: 5x faster, and every Snakemake start and job reads
# params.yaml
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    try:
        params = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    validate_params(params, where=str(path))
    return params


@cache
def cuda_present() -> bool:
    """Whether CUDA can be used, without importing torch (Snakemake parses the DAG without it):
    a CUDA build of torch and an NVIDIA device node. Cached: Snakemake asks once per job and
    resource, and each metadata look-up scans sys.path."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return False
    return "+cpu" not in version and any(Path("/dev").glob("nvidia[0-9]*"))


def _check_top_level(params: dict, where: str) -> None:
    for key in params:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{where}: unknown top-level key {key!r} "
                              f"(allowed: {', '.join(sorted(TOP_LEVEL_KEYS))})")
    for key, choices in (("profile", PROFILES), ("data_source", DATA_SOURCES)):
        if params.get(key) not in choices:
            raise ConfigError(f"{where}: {key}: {params.get(key)!r} is not valid "
                              f"(expected one of {', '.join(choices)})")
    device = params.get("device", "auto")
    if not isinstance(device, str) or not DEVICE.fullmatch(device):
        raise ConfigError(f"{where}: device: {device!r} is not valid "
                          f"(expected auto, cpu, cuda or cuda:<n>)")
    if device.startswith("cuda") and not cuda_present():
        raise ConfigError(f"{where}: device: {device!r}, but this machine has no usable CUDA "
                          f"GPU (use auto or cpu; a GPU needs the CUDA build of torch)")
    if not isinstance(params.get("mirror") or "", str):
        raise ConfigError(f"{where}: mirror: expected a folder or URL, got {params['mirror']!r}")
    dirs = params.get("data_dirs") or {}
    if not isinstance(dirs, dict) or not all(isinstance(v, str) for v in dirs.values()):
        raise ConfigError(f"{where}: data_dirs: expected a mapping of dataset -> folder")
    if not isinstance(params.get("articles"), dict) or not params["articles"]:
        raise ConfigError(f"{where}: articles: expected a mapping of article -> profiles")


def _check_seeds(seeds: Any, where: str) -> None:
    if (not isinstance(seeds, list) or not seeds or len(set(map(str, seeds))) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ConfigError(f"{where}: {seeds!r} is not valid (expected a non-empty list of "
                          f"distinct integers ≥ 0)")


def _check_block(article_id: str, profile: str, block: Any, where: str) -> list[str]:
    """Validate one profile block for both data sources; return its run names."""
    here = f"{where}: articles.{article_id}.{profile}"
    if not isinstance(block, dict):
        raise ConfigError(f"{here}: expected a mapping with runs")
    for key in block:
        if key not in BLOCK_KEYS:
            raise ConfigError(f"{here}: unknown key {key!r} (allowed: {', '.join(BLOCK_KEYS)})")
    runs = block.get("runs")
    if not isinstance(runs, dict) or not runs:
        raise ConfigError(f"{here}.runs: expected at least one run")
    for run in runs:  # a run name is a path part and a word of the stage's shell command
        if not isinstance(run, str) or not RUN_NAME.fullmatch(run):
            raise ConfigError(f"{here}.runs: run name {run!r} is not valid (letters, digits, "
                              f"'_', '.', '-' only)")
    if "seeds" in block:
        _check_seeds(block["seeds"], f"{here}.seeds")
    official = block.get("official") or {}
    if not isinstance(official, dict) or set(official) - {"data", "runs"}:
        raise ConfigError(f"{here}.official: expected a mapping with data and/or runs")
    for run in official.get("runs") or {}:
        if run not in runs:
            raise ConfigError(f"{here}.official.runs: unknown run {run!r} "
                              f"(runs: {', '.join(runs)})")
    for source in DATA_SOURCES:
        tag = "" if source == "embedded" else " (with official data)"
        data = build(_config_classes(article_id)[0], _data_values_from(block, source),
                     f"{here}.data{tag}")
        for name in getattr(data, "datasets", ()):
            if name not in DATASETS:
                raise ConfigError(f"{here}.data.datasets: unknown dataset {name!r} "
                                  f"(registered: {', '.join(sorted(DATASETS))})")
        for run in runs:
            values = _run_values_from(block, run, source)
            if "seed" in values:
                raise ConfigError(f"{here}.runs.{run}: use seeds: [...] (one job per seed), "
                                  f"not seed")
            if "seeds" in values:
                _check_seeds(values["seeds"], f"{here}.runs.{run}.seeds")
            values.pop("seeds", None)
            build(_config_classes(article_id)[1], values, f"{here}.runs.{run}{tag}")
    return list(runs)


def validate_params(params: dict[str, Any], where: str = "params.yaml") -> None:
    _check_top_level(params, where)
    for article_id, block in params["articles"].items():
        if article_id not in implemented_ids():
            raise ConfigError(f"{where}: articles: unknown article {article_id!r} "
                              f"(implemented: {', '.join(implemented_ids())})")
        if not isinstance(block, dict) or set(block) != set(PROFILES):
            have = sorted(block) if isinstance(block, dict) else block
            raise ConfigError(f"{where}: articles.{article_id}: expected exactly the profiles "
                              f"{', '.join(PROFILES)} (got {have})")
        names = None
        for profile in PROFILES:
            runs = _check_block(article_id, profile, block[profile], where)
            if names is not None and runs != names:
                raise ConfigError(f"{where}: articles.{article_id}.{profile}: runs {runs} differ "
                                  f"from another profile's {names}; every profile must list "
                                  f"the same runs")
            names = runs


# --------------------------------------------------------------------------- resolution


@cache  # validation asks for them once per run and block (300 times per Snakemake start)
def _config_classes(article_id: str):
    module = get_article(article_id).part("config")
    return module.DataConfig, module.RunConfig


def _profile_block(params: dict[str, Any], article_id: str) -> dict:
    try:
        return params["articles"][article_id][params["profile"]]
    except KeyError:
        raise ConfigError(f"params.yaml has no block articles.{article_id}."
                          f"{params.get('profile')}") from None


def _data_values_from(block: dict, source: str) -> dict:
    extra = (block.get("official") or {}) if source == "official" else {}
    return _merge(block.get("data") or {}, extra.get("data") or {})


def _run_values_from(block: dict, run: str, source: str) -> dict:
    extra = (block.get("official") or {}) if source == "official" else {}
    values = _merge(block["runs"].get(run) or {}, (extra.get("runs") or {}).get(run) or {})
    return {k: v for k, v in values.items() if k != "<<"}


def _merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``, merging nested mappings (model configs) key by key."""
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def article_ids(params: dict[str, Any]) -> list[str]:
    return list(params["articles"])


def run_names(params: dict[str, Any], article_id: str) -> list[str]:
    return list(_profile_block(params, article_id)["runs"])


def seeds(params: dict[str, Any], article_id: str, run: str) -> list[int]:
    block = _profile_block(params, article_id)
    values = _run_values_from(block, run, params["data_source"])
    return list(values.get("seeds") or block.get("seeds") or [0])


def variant(params: dict[str, Any]) -> str:
    """The key that keeps runs of different profiles and data sources apart."""
    return f"{params['profile']}-{params['data_source']}"


def data_config(params: dict[str, Any], article_id: str):
    values = _data_values_from(_profile_block(params, article_id), params["data_source"])
    return build(_config_classes(article_id)[0], values, f"articles.{article_id}.data")


def run_config(params: dict[str, Any], article_id: str, run: str, seed: int | None = None):
    block = _profile_block(params, article_id)
    if run not in block["runs"]:
        raise ConfigError(f"articles.{article_id}: unknown run {run!r} (runs: "
                          f"{', '.join(block['runs'])}; `python -m kexue list` shows them all)")
    values = _run_values_from(block, run, params["data_source"])
    values.pop("seeds", None)
    run_seeds = seeds(params, article_id, run)
    seed = run_seeds[0] if seed is None else seed
    if seed not in run_seeds:
        raise ConfigError(f"articles.{article_id}.runs.{run}: seed {seed} is not one of its "
                          f"seeds {run_seeds}")
    return build(_config_classes(article_id)[1], {**values, "seed": seed},
                 f"articles.{article_id}.runs.{run}")


def data_dir_override(params: dict[str, Any], dataset: str) -> Path | None:
    """User folder holding a dataset in its official layout (skips the download)."""
    value = (params.get("data_dirs") or {}).get(dataset)
    return Path(value).expanduser() if value else None


# Every job reads params.yaml itself, so a Snakemake `--config` value reaches it only by one of
# these routes: profile and data_source as CLI flags, mirror through KEXUE_DATA_MIRROR.
COMMAND_LINE_KEYS = ("profile", "data_source", "mirror")


def unsupported_overrides(config: dict[str, Any], file_params: dict[str, Any]) -> list[str]:
    """Top-level keys where Snakemake's config (params.yaml + ``--config``/``--configfile``)
    differs from params.yaml itself, other than those the jobs receive: values the jobs would
    silently not see."""
    keys = (config.keys() | file_params.keys()) - set(COMMAND_LINE_KEYS)
    return sorted(k for k in keys if config.get(k) != file_params.get(k))


def apply_command_line(config: dict[str, Any], params_path: str | os.PathLike = "params.yaml"
                       ) -> None:
    """Snakemake's config against params.yaml: refuse values the jobs would silently not see,
    and pass a command-line mirror on as KEXUE_DATA_MIRROR (unless that is set: it wins)."""
    path = Path(params_path)
    try:
        file_params = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read it ({' '.join(str(e).split())})") from None
    overridden = unsupported_overrides(config, file_params)
    if overridden:
        raise ConfigError(f"--config {', '.join(overridden)}: the jobs read these from {path}; set "
                          f"them there (only {', '.join(COMMAND_LINE_KEYS)} can be given on the "
                          "command line)")
    if config.get("mirror") and not os.environ.get("KEXUE_DATA_MIRROR"):
        os.environ["KEXUE_DATA_MIRROR"] = str(config["mirror"])


def mirror(params: dict[str, Any]) -> str | None:
    """Mirror root (folder or http URL); the environment variable wins over params.yaml."""
    return os.environ.get("KEXUE_DATA_MIRROR") or params.get("mirror") or None
