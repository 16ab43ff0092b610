"""Render a result store into one self-contained HTML page.

:func:`build_context` turns the tables of :mod:`pgbench.report.tables` and the
pictures of :mod:`pgbench.report.figures` into display-ready text (formatted
numbers, table cells, captions); :func:`render_html` fills the jinja2 template
``reports/templates/report.html.j2`` with autoescaping on, so every text that
comes from the store (method labels, data set names, error messages) is shown as
text.  Figures are inlined as base64 PNG and the CSS lives in the template: the
page needs no network.  Nothing here runs k-means.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import jinja2

from .. import paths
from . import figures, paper_views, summary, tables, verdicts
from .data import ReportData, load
from .stats import Interval, has_metrics

TEMPLATE = "report.html.j2"


@dataclass
class Cell:
    text: str
    sub: str = ""                 # a smaller second line (interval)
    sub2: str = ""                # a smaller third line (paired difference)
    num: bool = False
    bold: bool = False
    swatch: str | None = None     # the method's colour
    title: str | None = None      # tooltip


@dataclass
class Table:
    title: str
    caption: str
    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    swatches: list[str | None] = field(default_factory=list)   # a colour per header column (method columns)


# -------------------------------------------------------------------- formats

def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a table: 3 significant digits, no exponent for everyday sizes, ∞ and '-' for inf/None."""
    if x is None:
        return "-"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 0.001:
        return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:.0f}"
    return f"{x:.{digits - 1}e}"


def fmt_interval(iv: Interval, scale: float = 1.0, digits: int = 3) -> tuple[str, str]:
    """(mean, "[low, high]") texts; the second is empty without an interval."""
    if iv.mean is None:
        return "-", ""
    if iv.low is None:
        return fmt(iv.mean * scale, digits), ""
    return fmt(iv.mean * scale, digits), f"[{fmt(iv.low * scale, digits)}, {fmt(iv.high * scale, digits)}]"


def _method_cell(method: str, styles: dict[str, figures.Style]) -> Cell:
    st = styles.get(method)
    return Cell(method, swatch=st.color if st else None)


# --------------------------------------------------------------------- tables

def _pivot(title: str, caption: str, corner: str, records: Sequence[dict], row_key: str, col_key: str,
           value, styles: dict[str, figures.Style]) -> Table:
    cols = sorted({r[col_key] for r in records})
    row_names: list[str] = []
    for r in records:
        if r[row_key] not in row_names:
            row_names.append(r[row_key])
    table = Table(title, caption, [corner] + cols)
    by = {(r[row_key], r[col_key]): r for r in records}
    for name in row_names:
        table.rows.append([Cell(name)] + [value(by[(name, c)]) if (name, c) in by else Cell("-", num=True)
                                          for c in cols])
    table.swatches = [None] + [styles[c].color if c in styles else None for c in cols]
    return table


def layer_type_tables(rows: list[dict], styles) -> list[Table]:
    records = tables.layer_type_table(rows)
    out = []
    for s in sorted({r["setting"] for r in records}):
        out.append(_pivot(f"Average empty clusters per layer type: {s}",
                          "Mean final empty clusters over the layers of each type (and every seed); lower is better.",
                          "Layer type", [r for r in records if r["setting"] == s], "layer_name", "method",
                          lambda r: Cell(f"{r['mean_empty']:.1f}", num=True, title=f"{r['n']} layer run(s)"), styles))
    return out


def layer_share_tables(rows: list[dict], styles) -> list[Table]:
    records = tables.layer_share_table(rows)
    if not records:
        return []
    return [_pivot("Layers with empty clusters",
                   "Percentage of quantized layers left with at least one empty cluster (layers with empties / "
                   "layers, every seed counted); lower is better.", "Setting", records, "setting", "method",
                   lambda r: Cell(f"{r['share_pct']:.1f} %", sub=f"{r['n_with_empty']} / {r['n_layers']}", num=True),
                   styles)]


def resolution_tables(rows: list[dict], baseline: str | None, styles) -> list[Table]:
    records = tables.resolution_table(rows, baseline)
    if not records:
        return []
    table = Table("Rounds and time of empty-cluster resolution",
                  "Means over each method's measured runs with 95% bootstrap intervals over the runs (never below "
                  "0). Ratios against the "
                  f"baseline ({baseline}) are baseline / method on the paired runs: higher is better; in every "
                  "other column lower is better.",
                  ["Method", "Runs", "Runs meeting empty clusters", "Rounds per run (count)",
                   "Rounds per iteration with empties (count)", "Resolution time per run (ms)",
                   "Share of run time in resolution (%)", "Fewer rounds than baseline (×)",
                   "Resolution speed-up over baseline (×)"])
    for r in records:
        rounds, rounds_ci = fmt_interval(r["rounds"])
        secs, secs_ci = fmt_interval(r["seconds_resolve"], scale=1e3)
        share = None if r["resolve_share"] is None else 100 * r["resolve_share"]
        table.rows.append([_method_cell(r["method"], styles), Cell(str(r["n"]), num=True),
                           Cell(str(r["n_resolving"]), num=True), Cell(rounds, rounds_ci, num=True),
                           Cell(fmt(r["rounds_per_iter"]), num=True), Cell(secs, secs_ci, num=True),
                           Cell(fmt(share), num=True),
                           Cell(fmt(r["fewer_rounds"]), sub=f"{r['n_pairs']} pairs" if r["n_pairs"] else "", num=True),
                           Cell(fmt(r["speedup"]), num=True)])
    return [table]


def downstream_tables(records: list[dict], styles) -> list[Table]:
    """The Table 2 form and the size table, from :func:`pgbench.report.tables.downstream_table` records."""
    if not records:
        return []
    tasks = sorted({r["task"] for r in records})
    metric_of = {t: ", ".join(sorted({r["metric"] for r in records if r["task"] == t})) for t in tasks}
    acc = Table("Accuracy against compression ratio",
                "Downstream score per task: its main metric (column header; accuracy for MNLI, RTE, QNLI), mean "
                "over seeds, 95% t-interval when there are several; best at each compression ratio in bold; "
                "higher is better.",
                ["Method", "Compression ratio (×)"] + [f"{t} ({metric_of[t]})" for t in tasks])
    keys: list[tuple] = []
    for r in records:
        if (r["method"], r["compression_ratio"]) not in keys:
            keys.append((r["method"], r["compression_ratio"]))
    by = {(r["method"], r["compression_ratio"], r["task"]): r for r in records}
    for method, ratio in keys:
        cells = [_method_cell(method, styles), Cell(fmt(ratio, 4), num=True)]
        for t in tasks:
            r = by.get((method, ratio, t))
            if r is None:
                cells.append(Cell("-", num=True))
            else:
                main, ci = fmt_interval(r["score"], digits=3)
                cells.append(Cell(main, sub=ci, num=True, bold=r["best"], title=f"n = {r['score'].n} seed(s)"))
        acc.rows.append(cells)
    sizes: dict[float, list[float]] = {}
    for r in records:
        if r["compression_ratio"] is not None and r["size_mb"] is not None:
            # rounded: the same preset's ratio can differ in the last bits between runs
            sizes.setdefault(round(float(r["compression_ratio"]), 6), []).append(r["size_mb"])
    out = [acc]
    if sizes:
        size_table = Table("Model size per compression ratio", "Size of the (quantized) model, mean over rows.",
                           ["Compression ratio (×)", "Size (MB)"])
        size_table.rows = [[Cell(fmt(k, 4), num=True), Cell(f"{sum(v) / len(v):.2f}", num=True)]
                           for k, v in sorted(sizes.items())]
        out.append(size_table)
    return out


def size_tables(rows: list[dict], styles) -> list[Table]:
    records = tables.size_table(rows)
    if not records:
        return []
    table = Table("Cluster sizes", "Means over measured runs. Smallest size: higher is better (0 = empty cluster); "
                  "largest size and CV: lower means more balanced.",
                  ["Method", "Runs", "Smallest cluster (× n/k)", "Largest cluster (× n/k)", "Size CV",
                   "Runs with an empty cluster (%)"])
    table.rows = [[_method_cell(r["method"], styles), Cell(str(r["n"]), num=True), Cell(fmt(r["min_rel"]), num=True),
                   Cell(fmt(r["max_rel"]), num=True), Cell(fmt(r["size_cv"]), num=True),
                   Cell(fmt(100 * r["share_empty"]), num=True)] for r in records]
    return [table]


def centroid_index_tables(rows: list[dict], styles) -> list[Table]:
    records = tables.centroid_index_table(rows)
    if not records:
        return []
    return [_pivot("Centroid index on ground-truth sets",
                   "Mean centroid index CI (true clusters without a centroid of their own) over seeds; lower is "
                   "better, 0 = every true cluster found. Below: runs with CI = 0 / runs.", "Data set", records,
                   "dataset", "method",
                   lambda r: Cell(fmt(r["mean_ci"]), sub=f"{r['n_zero']} / {r['n']} at 0", num=True), styles)]


# -------------------------------------------------------------------- context

def build_context(data: ReportData, baseline: str | None = tables.DEFAULT_BASELINE,
                  now: datetime | None = None, found: verdicts.Verdicts | None = None) -> dict[str, Any]:
    """Everything the template shows, as display-ready values; ``found`` are the verdicts (computed if None)."""
    from . import verdict_views   # it imports Cell / Table from here

    rows = data.rows
    found = found if found is not None else verdicts.compute(rows, data.downstream, baseline)
    scores = tables.downstream_table(data.downstream or [])
    styles = figures.method_styles(found.data.methods + [r["method"] for r in scores])
    base = found.baseline
    prov = summary.provenance(rows)
    primary = verdicts.METRICS[found.primary_metric].label
    time_label = ("run time relative to " + base) if found.data.time_reference == "baseline" \
        else "run time relative to the fastest"
    return {
        "title": "pgbench report: " + (", ".join(prov["suites"]) or "empty store"),
        "source": data.source,
        "generated": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "n_cases": len(rows),
        "n_measured": sum(1 for r in rows if has_metrics(r)),
        "prov": prov,
        "status_counts": summary.status_counts(rows),
        "n_reused": summary.reused_count(rows),
        "failed": summary.failed_cases(rows),
        "method_params": summary.method_parameters(rows),
        "sources": summary.sources(rows, data.skipped),
        "baseline": base,
        "baseline_asked": baseline,
        "verdict": verdict_views.display(found, styles),
        "pareto_figure": figures.pareto_figure(found.pareto, primary, time_label, styles),
        "layer_type_tables": layer_type_tables(rows, styles),
        "layer_share_tables": layer_share_tables(rows, styles),
        "resolution_tables": resolution_tables(rows, base, styles),
        "resolution_figure": figures.resolution_figure(rows, styles),
        "paper_checks": paper_views.display(rows, styles),
        "has_downstream_table": data.downstream is not None,
        "downstream_tables": downstream_tables(scores, styles),
        "downstream_failed": tables.downstream_failed(data.downstream or []),
        "downstream_figure": figures.downstream_figure(scores, styles),
        "curves_figure": figures.curves_figure(tables.curve_table(rows, data.traces), styles),
        "size_tables": size_tables(rows, styles),
        "sizes_figure": figures.sizes_figure(rows, styles),
        "centroid_tables": centroid_index_tables(rows, styles),
        "styles": {m: s.color for m, s in sorted(styles.items())},
    }


def environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    folder = Path(template_dir) if template_dir else paths.shipped("templates")
    if not (folder / TEMPLATE).is_file():
        raise ValueError(f"report template {folder / TEMPLATE} not found (a broken installation: reinstall pgbench).")
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(data: ReportData, baseline: str | None = tables.DEFAULT_BASELINE,
                template_dir: str | Path | None = None, now: datetime | None = None,
                found: verdicts.Verdicts | None = None) -> str:
    """The report page for ``data`` as one HTML string (``found``: its verdicts, computed if None)."""
    return environment(template_dir).get_template(TEMPLATE).render(**build_context(data, baseline, now, found))


def write_report(results: str | Path, out: str | Path, baseline: str | None = tables.DEFAULT_BASELINE,
                 suite: str | None = None, json_out: str | Path | None = None,
                 primary_metric: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Read the store at ``results``, write the report to ``out`` (and the verdicts to ``json_out``).

    The findings are computed once (:func:`pgbench.report.verdicts.compute`) and
    written twice, as the page and as JSON, so the two cannot disagree.  Returns
    (path, a short summary).
    """
    data = load(results, suite)
    found = verdicts.compute(data.rows, data.downstream, baseline, primary_metric)
    html = render_html(data, baseline, found=found)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    if json_out is not None:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(verdicts.as_json(found), indent=1, allow_nan=False) + "\n",
                                  encoding="utf-8")
    return out, {"cases": len(data.rows), "bytes": len(html.encode("utf-8")), "baseline_found": found.baseline
                 is not None, "downstream": data.downstream is not None, "headline": found.headline}
