# kexue: one DAG per article, download -> prepare -> train -> evaluate -> report, then a summary.
# The DAG is read from the article registry (src/kexue/registry.py) and params.yaml;
# dvc.yaml is generated from it (python -m kexue dvc-yaml).
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# Read the registry from this checkout (jobs import the installed package: `pip install -e .`).
sys.path.insert(0, os.path.join(workflow.basedir, "src"))


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/articles.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        paths.SUMMARY_HTML,
        paths.SUMMARY_CSV,


onsuccess:
    commit_to_dvc()
