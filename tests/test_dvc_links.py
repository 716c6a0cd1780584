"""kexue.dvcgen.link_reproduced_outputs: a rerun that reproduces a model DVC already holds must
not leave the model with the old cache object's timestamp (Snakemake would retrain)."""

import hashlib
import os
import shutil

from conftest import REPO
from kexue import config, dag, dvcgen


def _model_paths(params) -> list[str]:
    return [o for j in dag.jobs(params) if j.rule == "train" for o in j.outputs
            if o.endswith("model.pt")]


def test_a_reproduced_model_is_linked_to_its_cache_object_with_the_new_time(tmp_path,
                                                                            monkeypatch):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    params = config.load_params("params.yaml")
    reproduced, new = (tmp_path / p for p in _model_paths(params)[:2])
    for path, data in ((reproduced, b"same weights"), (new, b"new weights")):
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
    digest = hashlib.md5(b"same weights").hexdigest()
    cached = tmp_path / dvcgen.DVC_CACHE / digest[:2] / digest[2:]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"same weights")
    os.utime(cached, (1_000_000, 1_000_000))  # committed long ago
    written = reproduced.stat().st_mtime_ns
    before_new = new.stat()

    dvcgen.link_reproduced_outputs("smoke-official")  # not the variant dvc.yaml describes
    assert reproduced.stat().st_nlink == 1
    dvcgen.link_reproduced_outputs(config.variant(params))

    assert reproduced.stat().st_ino == cached.stat().st_ino  # DVC's commit finds it linked
    assert reproduced.stat().st_mtime_ns == written  # and keeps the time it was written
    assert reproduced.read_bytes() == b"same weights"
    assert new.stat().st_ino == before_new.st_ino  # not in the cache: DVC moves it in itself
    assert sorted(p.name for p in reproduced.parent.iterdir()) == ["model.pt"]

