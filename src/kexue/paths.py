"""Where every stage reads and writes, relative to the repository root.

Everything a run produces sits under its *variant*, ``<profile>-<data source>`` (e.g.
``default-embedded``), so runs of different profiles or data sources never overwrite each
other. Raw datasets are shared: they do not depend on the profile. The Snakemake rules use the
same patterns, so the CLI and the DAG agree.
"""

from pathlib import Path

RAW = "data/raw/{dataset}"
PROCESSED = "data/processed/{variant}/{article}"
# the feature network of an image dataset (model.pt, info.json), shared by the GAN articles
FEATURES = "data/features/{variant}/{dataset}"
RESULTS = "results/{variant}"
RUN = RESULTS + "/{article}/{run}/seed{seed}"
MODEL = RUN + "/model.pt"
HISTORY = RUN + "/history.csv"
TRAIN_INFO = RUN + "/train.json"
TRAIN_ARTIFACTS = RUN + "/training"
METRICS = RUN + "/metrics.json"
ARTIFACTS = RUN + "/artifacts"
REPORT = RESULTS + "/{article}/report.html"
REPORT_NOTEBOOK = RESULTS + "/{article}/report.ipynb"
SUMMARY_CSV = RESULTS + "/summary.csv"
SUMMARY_HTML = RESULTS + "/index.html"
BENCHMARK = "logs/{variant}/benchmarks/{job}.tsv"
LOG = "logs/{variant}/{job}.log"
CHECKPOINTS = "checkpoints/{variant}/{article}/{run}/seed{seed}"  # survives a killed job


def path(pattern: str, **wildcards) -> Path:
    return Path(pattern.format(**wildcards))
