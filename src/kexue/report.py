"""Reports: papermill renders one notebook per article; the index compares all articles.

The notebooks call ``ArticleReport`` for everything they share: the page header (title,
links, data and provenance), formatted tables and the published-vs-reproduced table.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import math
import shutil
import subprocess
import sys
from pathlib import Path

from kexue import config
from kexue.comparison import ArticleResults, Comparison, RunResults
from kexue.io import atomic_path, read_json, write_bytes
from kexue.registry import ARTICLES, get_article

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "workflow" / "notebooks"
REFERENCE = REPO / "docs" / "reference"
STATUS_COLOURS = {"within band": "#d4f7d4", "outside band": "#f7d4d4",
                  "not comparable": "#eeeeee", "no published number": "#ffffff",
                  "failed": "#f7a0a0"}


# --------------------------------------------------------------------------- results


def load_results(article_id: str, results_dir: str | Path) -> ArticleResults:
    """Every evaluated run and seed of one article (``<run>/seed<k>/metrics.json``)."""
    runs: dict[str, RunResults] = {}
    for p in sorted(Path(results_dir).glob("*/seed*/metrics.json")):
        run = runs.setdefault(p.parent.parent.name, RunResults(p.parent.parent.name))
        run.seeds[int(p.parent.name.removeprefix("seed"))] = read_json(p)
    prov = [s["provenance"] for r in runs.values() for s in r.seeds.values()]
    profile = prov[0]["profile"] if prov else ""
    source = prov[0]["data_source"] if prov else ""
    return ArticleResults(article_id, profile, source, runs)


def comparisons(article_id: str, results_dir: str | Path) -> list[Comparison]:
    results = load_results(article_id, results_dir)
    return get_article(article_id).part("published").comparisons(results)


# --------------------------------------------------------------------------- formatting


def fmt(v) -> str:
    """A number with 4 significant digits (integers as they are); blanks for missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return html.escape(str(v))
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.4g}"


def _cell_class(v) -> str:
    """Numbers stay on one line; text wraps within a readable width."""
    return "num" if isinstance(v, (int, float)) and not isinstance(v, bool) else "text"


TABLE_STYLE = ("<style>table.kexue{border-collapse:collapse}table.kexue td,table.kexue th"
               "{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}"
               "table.kexue th{background:#f4f4f4}table.kexue td.num{white-space:nowrap}"
               "table.kexue td.text{min-width:6em;max-width:60em}</style>")


def html_table(rows: list[dict], columns: list[str] | None = None,
               row_class: str | None = None) -> str:
    """A clean HTML table (no index, readable headers, 4 significant digits) that scrolls
    sideways instead of hiding columns; ``row_class`` names a column that colours rows."""
    columns = columns or (list(rows[0]) if rows else [])
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
    body = []
    for r in rows:
        style = ""
        if row_class and r.get(row_class) in STATUS_COLOURS:
            style = f' style="background:{STATUS_COLOURS[r[row_class]]}"'
        cells = "".join(f'<td class="{_cell_class(r.get(c))}">{fmt(r.get(c))}</td>'
                        for c in columns)
        body.append(f"<tr{style}>{cells}</tr>")
    return (f'{TABLE_STYLE}<div style="overflow-x:auto"><table class="kexue">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def comparison_rows(comps: list[Comparison]) -> list[dict]:
    rows = []
    for c in comps:
        r = c.as_row()
        r["reproduced"] = (f"{fmt(r['reproduced'])} ± {fmt(r['sd'])}" if r["sd"] is not None
                           else fmt(r["reproduced"]))
        rows.append({k: r[k] for k in ("run", "metric", "published", "reproduced", "seeds",
                                       "band", "status", "published_source", "note")})
    return rows


class ArticleReport:
    """What an article's notebook shows: ``header()``, ``comparison_table()``, ``table()``."""

    def __init__(self, article_id: str, results_dir: str | Path):
        self.article = get_article(article_id)
        self.results_dir = Path(results_dir)
        self.results = load_results(article_id, results_dir)

    @property
    def runs(self) -> dict[str, RunResults]:
        return self.results.runs

    def metrics(self, run: str, seed: int | None = None) -> dict:
        seeds = self.runs[run].seeds
        return seeds[seed if seed is not None else min(seeds)]

    def seed_dir(self, run: str, seed: int | None = None) -> Path:
        seeds = self.runs[run].seeds
        return self.results_dir / run / f"seed{seed if seed is not None else min(seeds)}"

    def history(self, run: str, seed: int | None = None):
        import pandas as pd

        return pd.read_csv(self.seed_dir(run, seed) / "history.csv")

    def header(self) -> None:
        from IPython.display import HTML, display

        prov = [s["provenance"] for r in self.runs.values() for s in r.seeds.values()]
        p = prov[0] if prov else {}
        labels = sorted({s.get("data_label", "") for r in self.runs.values()
                         for s in r.seeds.values()} - {""})
        synthetic = any(lbl.startswith(("embedded", "synthetic")) or "SYNTHETIC" in lbl.upper()
                        for lbl in labels)
        banner = ('<p style="background:#fff3cd;padding:6px 10px"><b>Embedded/synthetic '
                  "data:</b> these numbers are not comparable with the published ones.</p>"
                  if synthetic else "")
        commits = sorted({x.get("git_commit", "unknown") for x in prov})
        display(HTML(
            f'<p><a href="../index.html">← all articles</a> · '
            f'<a href="{self.article.url}">{self.article.url}</a></p>'
            f"<h1>{html.escape(self.article.title)}</h1>{banner}"
            f"<p><b>Data:</b> {html.escape('; '.join(labels))}<br>"
            f"<b>Profile:</b> {html.escape(self.results.profile)} · <b>data source:</b> "
            f"{html.escape(self.results.source)} · <b>device:</b> "
            f"{html.escape(str(p.get('device_name', '')))} · <b>threads:</b> "
            f"{p.get('threads', '')}<br><b>git commit:</b> "
            f"<code>{html.escape(', '.join(commits))}</code></p>"))

    def comparison_table(self) -> None:
        from IPython.display import HTML, display

        comps = get_article(self.article.id).part("published").comparisons(self.results)
        display(HTML(html_table(comparison_rows(comps), row_class="status")))

    @staticmethod
    def table(rows: list[dict] | dict[str, dict], columns: list[str] | None = None) -> None:
        """Show rows (or {name: row}) as a formatted table."""
        from IPython.display import HTML, display

        if isinstance(rows, dict):
            rows = [{"run": k, **v} for k, v in rows.items()]
        display(HTML(html_table(rows, columns)))


# --------------------------------------------------------------------------- rendering


def render_notebook(article_id: str, results_dir: Path, out_html: Path) -> None:
    """Execute ``workflow/notebooks/<article>.ipynb`` with papermill, then convert to HTML."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = NOTEBOOKS / f"{article_id}.ipynb"
    if not notebook.exists():
        raise FileNotFoundError(f"{notebook}: the article {article_id!r} has no report notebook")
    executed = out_html.with_suffix(".ipynb")
    with atomic_path(executed) as tmp:
        # -k python3 resolves to the interpreter running papermill, whatever the notebook says.
        subprocess.run([sys.executable, "-m", "papermill", str(notebook), str(tmp), "-k",
                        "python3", "--log-level", "WARNING", "--no-progress-bar", "--cwd", str(Path.cwd()),
                        "-p", "article", article_id, "-p", "results_dir", str(results_dir)],
                       check=True)
        nb = nbformat.read(tmp, as_version=4)
        nb.metadata["title"] = f"kexue · {get_article(article_id).title}"
        nbformat.write(nb, tmp)
    body, _ = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(nb)
    write_bytes(out_html, body.encode())


# --------------------------------------------------------------------------- the index


SUMMARY_FIELDS = ["article", "title", "run", "metric", "published", "published_source",
                  "reproduced", "sd", "seeds", "band", "status", "data_label", "note", "report"]


def summary_rows(article_ids: list[str], results_root: Path) -> list[dict]:
    rows = []
    for article_id in article_ids:
        art = get_article(article_id)
        results = load_results(article_id, results_root / article_id)
        for comp in art.part("published").comparisons(results):
            # a row may compare runs (e.g. a paired gap): take the data label of any run
            run = results.runs.get(comp.run) or next(iter(results.runs.values()))
            m = run.first
            rows.append({"article": article_id, "title": art.title, **comp.as_row(),
                         "data_label": m.get("data_label", ""),
                         "report": f"{article_id}/report.html"})
    return rows


def _runtime_s(variant: str) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per article (and for the datasets and feature networks), summed
    over the jobs' Snakemake benchmark files."""
    totals: dict[str, tuple[float, float]] = {}
    for tsv in [*Path("logs", variant, "benchmarks").glob("*.tsv"),
                *Path("logs", "benchmarks").glob("*.tsv")]:
        with open(tsv) as f:
            row = next(csv.DictReader(f, delimiter="\t"), None)
        if row is None:
            continue
        parts = tsv.stem.split("--")
        key = parts[1] if parts[0] in ("prepare", "train", "evaluate", "report") else "datasets"
        wall, cpu = totals.get(key, (0.0, 0.0))
        totals[key] = (wall + float(row["s"]), cpu + float(row.get("cpu_time") or 0.0))
    return totals


def _minutes(wall_cpu: tuple[float, float] | None) -> str:
    return "—" if wall_cpu is None else f"{wall_cpu[0] / 60:.1f} min ({wall_cpu[1] / 60:.1f} CPU)"


def write_summary(params: dict, results_root: Path) -> None:
    from kexue.provenance import cpu_name, git_commit

    ids = config.article_ids(params)
    rows = summary_rows(ids, results_root)
    with atomic_path(results_root / "summary.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    meta = {"profile": params["profile"], "data source": params["data_source"],
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "git commit": git_commit(), "hardware": f"{cpu_name()}",
            "runtime": _runtime_s(config.variant(params))}
    write_bytes(results_root / "index.html", index_html(rows, ids, meta).encode())


def index_html(rows: list[dict], article_ids: list[str], meta: dict) -> str:
    runtime = meta.pop("runtime")
    facts = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in meta.items())
    total = (sum(w for w, _ in runtime.values()), sum(c for _, c in runtime.values()))
    facts += (f"<tr><th>total runtime</th><td>{_minutes(total)}: wall (CPU) minutes summed "
              f"over the jobs' Snakemake benchmark files; parallel jobs overlap</td></tr>")
    articles = []
    for a in ARTICLES.values():
        if a.id in article_ids:
            status = f'<a href="{a.id}/report.html">report</a>'
            timing = _minutes(runtime.get(a.id))
        else:
            status, timing = ("planned" if a.planned else "not in this run"), "—"
        articles.append(f'<tr><td><code>{a.id}</code></td><td><a href="{a.url}">'
                        f"{html.escape(a.title)}</a></td><td>{status}</td><td>{timing}</td></tr>")
    cols = ["article", "run", "metric", "published", "reproduced", "sd", "seeds", "band",
            "status", "published_source", "data_label", "note"]
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px}"
             "table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
             "th{background:#f4f4f4}")
    legend = " ".join(f'<span style="background:{c};padding:2px 6px;border:1px solid #ccc">'
                      f"{s}</span>" for s, c in STATUS_COLOURS.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>kexue: published vs "
            f"reproduced</title><style>{style}</style></head><body>"
            f"<h1>kexue: published vs reproduced</h1><table>{facts}</table>"
            f"<h2>Articles</h2><table><tr><th>id</th><th>article (kexue.fm)</th>"
            f"<th>report</th><th>runtime</th></tr>{''.join(articles)}</table>"
            f"<h2>Every reproduced number</h2><p>{legend}</p>"
            f"<p>Only official, complete data at the <code>full</code> profile is comparable "
            f"with a published number; the others say <i>not comparable</i>. Reproduced "
            f"values are the mean over the run's seeds (sd beside it).</p>"
            f"{html_table(rows, cols, row_class='status')}"
            f"<p>Machine-readable: <a href='summary.csv'>summary.csv</a>.</p></body></html>\n")


def publish_reference(params: dict) -> None:
    """Copy this variant's index, summary and reports to docs/reference/<variant>/ (where the
    DAG never writes): the reference results the README quotes."""
    variant = config.variant(params)
    src = Path("results") / variant
    if not (src / "index.html").exists():
        raise FileNotFoundError(f"{src}/index.html: run the workflow first (snakemake)")
    dest = REFERENCE / variant
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("index.html", "summary.csv"):
        shutil.copy2(src / name, dest / name)
    for report in src.glob("*/report.html"):
        (dest / report.parent.name).mkdir()
        shutil.copy2(report, dest / report.parent.name / "report.html")
