# kexue: one DAG for every article: download/generate -> prepare -> train -> evaluate ->
# report, then the index. The jobs come from the article registry (src/kexue/registry.py) and
# params.yaml (src/kexue/dag.py); dvc.yaml is generated from the same list.
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# Read the registry from this checkout (jobs import the installed package: `pip install -e .`).
sys.path.insert(0, os.path.join(workflow.basedir, "src"))


configfile: "params.yaml"


include: "workflow/rules/common.smk"


wildcard_constraints:
    article=one_of(ARTICLES),
    run="[A-Za-z0-9_.-]+",
    seed="[0-9]+",


include: "workflow/rules/data.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/articles.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        JOBS[-1].outputs,


onstart:
    hold_dvc_lock()


onsuccess:
    commit_to_dvc()
