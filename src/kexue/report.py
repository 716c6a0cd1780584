"""Reports: papermill renders one notebook per article; the summary compares all articles."""

from __future__ import annotations

import csv
import html
import subprocess
import sys
from pathlib import Path

from kexue.comparison import Comparison
from kexue.io import atomic_path, read_json
from kexue.registry import get_article

NOTEBOOKS = Path(__file__).resolve().parents[2] / "workflow" / "notebooks"


def load_run_metrics(results_dir: str | Path) -> dict[str, dict]:
    """{run: metrics.json contents} for every evaluated run of one article."""
    return {p.parent.name: read_json(p) for p in sorted(Path(results_dir).glob("*/metrics.json"))}


def article_comparisons(article_id: str, results_dir: str | Path) -> list[Comparison]:
    metrics = load_run_metrics(results_dir)
    sources = {m.get("provenance", {}).get("data_source") for m in metrics.values()}
    source = sources.pop() if len(sources) == 1 else "mixed"
    return get_article(article_id).module.comparisons(metrics, source)


def comparison_frame(article_id: str, results_dir: str | Path):
    """The published-vs-reproduced table as a DataFrame (for the notebooks)."""
    import pandas as pd

    return pd.DataFrame([c.as_row() for c in article_comparisons(article_id, results_dir)])


def render_notebook(article_id: str, results_dir: Path, out_html: Path) -> None:
    """Execute ``workflow/notebooks/<article>.ipynb`` with papermill, then convert to HTML."""
    notebook = NOTEBOOKS / f"{article_id}.ipynb"
    if not notebook.exists():
        raise FileNotFoundError(f"{notebook}: the article {article_id!r} has no report notebook")
    executed = out_html.with_suffix(".ipynb")
    # -k python3 resolves to the interpreter running papermill, whatever the notebook says.
    subprocess.run([sys.executable, "-m", "papermill", str(notebook), str(executed),
                    "-k", "python3", "--log-level", "WARNING", "--cwd", str(Path.cwd()),
                    "-p", "article", article_id, "-p", "results_dir", str(results_dir)],
                   check=True)
    with atomic_path(out_html) as tmp:
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html",
                        "--no-input", "--output", tmp.name, "--output-dir", str(tmp.parent),
                        str(executed)], check=True)
        produced = tmp.parent / (tmp.name + ".html")
        if produced.exists():  # nbconvert appends .html to a name that lacks it
            produced.replace(tmp)


SUMMARY_FIELDS = ["article", "title", "run", "metric", "published", "published_source",
                  "reproduced", "band", "status", "data_source", "data_label", "note", "report"]


def data_label(metrics: dict) -> str:
    return metrics.get("data_label") or metrics.get("provenance", {}).get("data_source", "")


def summary_rows(article_ids: list[str], results_root: Path) -> list[dict]:
    rows = []
    for article_id in article_ids:
        art = get_article(article_id)
        results_dir = results_root / article_id
        metrics = load_run_metrics(results_dir)
        for comp in article_comparisons(article_id, results_dir):
            m = metrics.get(comp.run, {})
            rows.append({
                "article": article_id, "title": art.title, **comp.as_row(),
                "data_source": m.get("provenance", {}).get("data_source", ""),
                "data_label": data_label(m),
                "report": f"{article_id}/report.html",
            })
    return rows


def write_summary(article_ids: list[str], results_root: Path, csv_path: Path,
                  html_path: Path) -> None:
    rows = summary_rows(article_ids, results_root)
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    with atomic_path(html_path) as tmp:
        tmp.write_text(_index_html(rows))


def _fmt(v) -> str:
    if v is None or v == "":
        return "—"
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def _index_html(rows: list[dict]) -> str:
    cols = ["article", "run", "metric", "published", "published_source", "reproduced", "band",
            "status", "data_label", "note"]
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if c == "article":
                cells.append(f'<td><a href="{html.escape(r["report"])}">{html.escape(v)}</a></td>')
            else:
                cells.append(f'<td class="{c}">{_fmt(v)}</td>')
        status = r["status"].replace(" ", "-")
        body.append(f'<tr class="{status}">{"".join(cells)}</tr>')
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
             "tr.within-band td.status{background:#d4f7d4}"
             "tr.outside-band td.status{background:#f7d4d4}"
             "tr.failed td.status{background:#f7a0a0}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>kexue: published vs "
            f"reproduced</title><style>{style}</style></head><body>"
            f"<h1>kexue: published vs reproduced</h1>"
            f"<p>One row per reproduced number. <b>Data label</b> says what the number was "
            f"measured on: results on <i>embedded/synthetic</i> data or at a reduced profile are "
            f"never comparable with the published value, and say so in <b>status</b>.</p>"
            f"<table><tr>{head}</tr>{''.join(body)}</table>"
            f"<p>Machine-readable: <a href='summary.csv'>summary.csv</a>. "
            f"Raw metrics: <code>results/&lt;article&gt;/&lt;run&gt;/metrics.json</code>.</p>"
            f"</body></html>\n")
