"""Where every stage reads and writes, relative to the repository root.

The Snakemake rules use the same patterns (with wildcards), so the CLI and the DAG agree.
"""

from pathlib import Path

RAW = "data/raw/{dataset}"
PROCESSED = "data/processed/{article}"
RUN = "results/{article}/{run}"
MODEL = RUN + "/model.pt"
HISTORY = RUN + "/history.csv"
TRAIN_INFO = RUN + "/train.json"
METRICS = RUN + "/metrics.json"
ARTIFACTS = RUN + "/artifacts"
REPORT = "results/{article}/report.html"
REPORT_NOTEBOOK = "results/{article}/report.ipynb"
SUMMARY_CSV = "results/summary.csv"
SUMMARY_HTML = "results/index.html"
CHECKPOINTS = "checkpoints/{article}/{run}"  # not a workflow output: survives a killed job


def path(pattern: str, **wildcards) -> Path:
    return Path(pattern.format(**wildcards))
