"""The verdict sections of the page, drawn from one :class:`~pgbench.report.verdicts.Verdicts`.

Display only: the numbers come from :func:`pgbench.report.verdicts.compute`, the
same object the ``--json`` file is written from.  Sections: ``verdict``
(headline, the aggregates table, the Pareto table), ``per-dataset`` (a table per
data set, win / tie / loss against the baseline) and ``paper-claims`` (the
ledger).
"""

from __future__ import annotations

from typing import Any

from . import aggregates as agg
from .evidence import METRICS
from .ledger import METRIC_LABELS
from .render import Cell, Table, fmt
from .verdicts import Verdicts

STAT_NAMES = {"mean": "mean", "geometric_mean": "geometric mean", "median": "median"}
PER_DATASET_LABELS = {"n_empty_final": "Empty clusters (mean count)", "rounds_total": "Rounds (mean count)",
                      "inertia_ratio": "Inertia (× best, geo. mean)", "rel_error_ratio": "Rel. error (× best)",
                      "seconds_total": "Run time (× fastest)"}


def _method(name: str, styles: dict[str, Any]) -> Cell:
    st = styles.get(name)
    return Cell(name, swatch=st.color if st else None)


def _agg_cell(a: agg.Aggregate | None, suffix: str = "") -> Cell:
    if a is None or a.value is None:
        return Cell("-", num=True)
    sub = f"[{fmt(a.low)}, {fmt(a.high)}]" if a.low is not None else "no interval (1 block)"
    title = f"{STAT_NAMES[a.statistic]} over {a.n_blocks} run(s)" + (
        f"; {a.n_infinite} run(s) with an infinite ratio left out" if a.n_infinite else "")
    return Cell(fmt(a.value) + suffix, sub=sub, num=True, title=title)


def aggregates_table(v: Verdicts, styles: dict[str, Any]) -> Table:
    """Per method: the primary metric, run time, empties, rounds (statistic + interval), front, wins."""
    primary = METRICS[v.primary_metric]
    ref = v.baseline if v.data.time_reference == "baseline" else "the fastest method on the same run"
    header = ["Method", f"{primary.label} (× best; geometric mean)", f"Run time (× {ref}; geometric mean)",
              "Final empty clusters (mean count)", "Resolution rounds (mean count)", "Pareto front",
              f"Lowest {primary.label.split(' relative')[0]} on (runs)"]
    t = Table("What each method costs and achieves",
              "One row per method (no ranking; rows in run-time order). Ratios: geometric mean over runs (data set "
              "× seed) of the value over the best method's on the same run (quality) or the reference's (time); "
              "counts: mean over runs. Below each value: its 95% interval from a paired bootstrap over runs "
              f"({agg.N_RESAMPLES} resamples, percentile; counts never below 0). Pareto front: no other method is "
              "both faster and closer to the best. Last column: runs where the method has the lowest value "
              "(ties count for every tied method). Lower is better in every numeric column but the last.",
              header)
    counts = v.best_counts.get(v.primary_metric, {})
    for r in v.pareto:
        m = r["method"]
        wins, ran = counts.get(m, (0, 0))
        t.rows.append([_method(m, styles), _agg_cell(r["primary"], "×"), _agg_cell(r["time"], "×"),
                       _agg_cell(r["empties"]), _agg_cell(agg.find(v.aggregates, m, "rounds_total")),
                       Cell("on the front" if r["on_front"] else "dominated", bold=r["on_front"]),
                       Cell(f"{wins} of {ran}", num=True)])
    return t


def medians_table(v: Verdicts, styles: dict[str, Any]) -> Table:
    """The ratios' medians beside their geometric means, for readers who distrust either."""
    metrics = [m for m in ("inertia_ratio", "rel_error_ratio", "time_ratio")
               if any(a.metric == m for a in v.aggregates)]
    t = Table("Ratios: median beside geometric mean",
              "Median over runs of each ratio, with its 95% paired bootstrap interval; compare with the geometric "
              "means above. A large gap means a few data sets dominate the mean.",
              ["Method"] + [f"{METRICS[m].label} (median)" for m in metrics])
    for m in v.data.methods:
        t.rows.append([_method(m, styles)] + [_agg_cell(agg.find(v.aggregates, m, x, "median"), "×") for x in metrics])
    return t


def per_dataset_tables(v: Verdicts, styles: dict[str, Any]) -> list[Table]:
    """One table per data set: methods as rows, metrics as columns, the winner of each metric in bold."""
    out = []
    metrics = [m for m in PER_DATASET_LABELS if any(r["metric"] == m for r in v.per_dataset)]
    for ds in v.data.datasets:
        here = {r["metric"]: r for r in v.per_dataset if r["dataset"] == ds}
        n_seeds = max((r["n_seeds"] for r in here.values()), default=0)
        t = Table(f"{ds} ({n_seeds} run{'s' if n_seeds != 1 else ''})", "",
                  ["Method"] + [PER_DATASET_LABELS[m] for m in metrics if m in here])
        for method in v.data.methods:
            row = [_method(method, styles)]
            for m in metrics:
                if m not in here:
                    continue
                r = here[m]
                if method not in r["values"]:
                    row.append(Cell("-", num=True))
                    continue
                value = r["values"][method] if r["relative"][method] is None else r["relative"][method]
                sub = f"{fmt(r['values'][method])} s" if m == "seconds_total" else ""
                row.append(Cell(fmt(value) + ("" if r["relative"][method] is None else "×"), sub=sub, num=True,
                                bold=method in r["winners"]))
            t.rows.append(row)
        out.append(t)
    return out


def metric_pivot_tables(v: Verdicts, styles: dict[str, Any]) -> list[Table]:
    """Per metric, one table with a row per data set and a column per method, the winner(s) in bold.

    The primary metric first, then run time, empty clusters (when any method left
    some) and rounds.
    """
    order = ["inertia_ratio" if v.primary_metric == "inertia_ratio" else "rel_error_ratio", "seconds_total",
             "n_empty_final", "rounds_total"]
    out = []
    for metric in order:
        records = [r for r in v.per_dataset if r["metric"] == metric]
        if not records or (metric == "n_empty_final" and not any(any(r["values"].values()) for r in records)):
            continue
        count = records[0]["relative"] and all(x is None for x in records[0]["relative"].values())
        t = Table(PER_DATASET_LABELS[metric] + " per data set",
                  ("Mean over the data set's seeds; " if count else
                   "Geometric mean over the data set's seeds of the value over the best method's (1 = best; the "
                   "run time over the fastest's, the fastest's seconds under the winner); ")
                  + "bold: the winner(s) on that data set. Lower is better.",
                  ["Data set"] + list(v.data.methods) + ["Winner"])
        t.swatches = [None] + [styles[m].color if m in styles else None for m in v.data.methods] + [None]
        for r in records:
            cells = [Cell(r["dataset"], title=f"{r['n_seeds']} run(s)")]
            for m in v.data.methods:
                if m not in r["values"]:
                    cells.append(Cell("-", num=True))
                    continue
                rel = r["relative"][m]
                cells.append(Cell(fmt(r["values"][m]) if rel is None else fmt(rel) + "×", num=True,
                                  bold=m in r["winners"]))
            sub = f"{fmt(min(r['values'].values()))} s" if metric == "seconds_total" else ""
            losers = [m for m in r["values"] if m not in r["winners"]]
            text = ("all tie" if not losers else r["winner"] if len(r["winners"]) <= len(losers)
                    else "all but " + ", ".join(losers))
            cells.append(Cell(text, sub=sub))
            t.rows.append(cells)
        out.append(t)
    return out


def win_tie_loss_table(v: Verdicts, styles: dict[str, Any]) -> Table | None:
    if not v.win_tie_loss:
        return None
    metrics = list(dict.fromkeys(r["metric"] for r in v.win_tie_loss))
    t = Table(f"Wins, ties and losses against the baseline {v.baseline}",
              "Per method and metric: runs (data set × seed) where the method is lower than the baseline / equal / "
              "higher. Empty clusters, rounds, inertia and relative error are deterministic and compared exactly; "
              f"run time: {v.time_tie_rule}.", ["Method"] + [METRICS[m].label for m in metrics])
    by = {(r["method"], r["metric"]): r for r in v.win_tie_loss}
    for method in dict.fromkeys(r["method"] for r in v.win_tie_loss):
        cells = [_method(method, styles)]
        for m in metrics:
            r = by.get((method, m))
            cells.append(Cell("-", num=True) if r is None else
                         Cell(f"{r['wins']} / {r['ties']} / {r['losses']}", sub=f"of {r['n']}", num=True))
        t.rows.append(cells)
    return t


def claims_tables(v: Verdicts) -> list[Table]:
    """The ledger, one table per (source, metric): a row per (setting, row, method) with the paper's number per
    task beside the measured value; the numbers without a match here in one line per (setting, method)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in v.paper_claims:
        groups.setdefault((r["source"], r["metric"]), []).append(r)
    out = []
    for (source, metric), claims in groups.items():
        lines: dict[tuple, list[dict]] = {}
        for r in claims:
            lines.setdefault((r["measured"] is None, r["setting"], r["method"], r["row"] if r["measured"] is not None
                              else ""), []).append(r)
        notes = sorted({r["note"] for r in claims if r["measured"] is not None})
        tasks = [r["task"] for r in claims if r["task"]]
        task_text = " / ".join(dict.fromkeys(tasks)) if tasks else "-"
        t = Table(f"{source}: {METRIC_LABELS.get(metric, metric)}",
                  f"Paper: the published number{'s (' + task_text + ')' if tasks else ''}, RoBERTa base fine-tuned "
                  "per GLUE task. Measured here: this store's value at the same preset, layer type and method "
                  "(bold), " + ("; ".join(notes) if notes else "none") + ". '-': no match in this store, with the "
                  "reason.", ["Setting", "Row", "Method", f"Paper ({task_text})", "Measured here", "Why not measured"])
        for (missing, setting, method, row), group in sorted(lines.items(), key=lambda kv: kv[0][:3]):
            paper = " / ".join(fmt(g["paper"]) for g in group[:7]) + (" …" if len(group) > 7 else "")
            if not missing:
                t.rows.append([Cell(setting), Cell(row), Cell(method), Cell(paper, num=True),
                               Cell(fmt(group[0]["measured"]), num=True, bold=True), Cell("")])
                continue
            rows_text = ", ".join(dict.fromkeys(g["row"] for g in group))
            reasons = {g["note"].replace(f"of layer type {g['row']} ", "of these layer types ") for g in group}
            t.rows.append([Cell(setting), Cell(rows_text), Cell(method), Cell(f"{len(group)} numbers", sub=paper),
                           Cell("-", num=True), Cell("; ".join(sorted(reasons)))])
        out.append(t)
    return out


def display(v: Verdicts, styles: dict[str, Any]) -> dict[str, Any]:
    """Everything the verdict, per-dataset and paper-claims sections show."""
    n_measured = sum(r["measured"] is not None for r in v.paper_claims)
    return {"headline": v.headline, "headline_parts": v.headline_parts, "notes": v.notes,
            "primary_metric": METRICS[v.primary_metric].label,
            "aggregates_table": aggregates_table(v, styles) if v.data.methods else None,
            "medians_table": medians_table(v, styles) if v.data.methods else None,
            "per_dataset_tables": per_dataset_tables(v, styles),
            "pivot_tables": metric_pivot_tables(v, styles),
            "win_tie_loss_table": win_tie_loss_table(v, styles),
            "claims_tables": claims_tables(v), "claims_measured": n_measured, "claims_total": len(v.paper_claims),
            "time_tie_rule": v.time_tie_rule}
