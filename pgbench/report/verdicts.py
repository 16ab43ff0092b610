"""The report's findings, computed once: headline, per-data-set evidence, aggregates, Pareto front, paper ledger.

:func:`compute` turns the case rows (and the downstream rows) into one
:class:`Verdicts`; the HTML page (:mod:`pgbench.report.render`) and the JSON
file (:func:`as_json`, ``pgbench report --json``) are both drawn from it, so
they cannot disagree.

The headline names, from the data: the method with the lowest primary metric
(inertia relative to the best, by default) on the most blocks (data set x
seed) with its geometric mean and 95% bootstrap interval; the methods that
leave empty clusters, where and how many; and the methods on the
quality-vs-cost Pareto front.  Nothing is ranked by a chain of metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from . import aggregates as agg
from . import ledger as ledger_mod
from .evidence import DEFAULT_PRIMARY, METRICS, PRIMARY_CHOICES, Blocks, best_counts, block_values, has_spread, \
    per_dataset, win_tie_loss
from .tables import DEFAULT_BASELINE, find_method

Row = dict[str, Any]

#: the bootstrap's fixed seed: the same store gives the same intervals
BOOTSTRAP_SEED = 20260101


@dataclass
class Verdicts:
    headline: str                                          # the sentences of headline_parts, joined
    primary_metric: str
    baseline: str | None
    data: Blocks
    per_dataset: list[Row]
    win_tie_loss: list[Row]
    best_counts: dict[str, dict[str, tuple[int, int]]]     # metric -> method -> (best on, blocks)
    aggregates: list[agg.Aggregate]
    pareto: list[Row]
    paper_claims: list[Row]
    time_tie_rule: str
    notes: list[str] = field(default_factory=list)
    headline_parts: list[str] = field(default_factory=list)


def primary_metric_of(rows: Sequence[Row], asked: str | None) -> str:
    """The primary metric: ``asked`` (``--primary-metric``) when given, else the suite's (the rows'
    ``primary_metric`` column, when they agree on one), else the default.

    Raises ValueError for a name outside :data:`~pgbench.report.evidence.PRIMARY_CHOICES`.
    """
    stored = {str(r["primary_metric"]) for r in rows if r.get("primary_metric")}
    name = asked or (sorted(stored)[0] if len(stored) == 1 else DEFAULT_PRIMARY)
    if name in ("inertia", "inertia_rel"):
        name = "inertia_ratio"
    if name in ("rel_error",):
        name = "rel_error_ratio"
    if name not in PRIMARY_CHOICES:
        raise ValueError(f"primary metric '{name}' is not one of {', '.join(PRIMARY_CHOICES)}")
    return name


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return "∞"
    return f"{x:.3g}"


def _ci(a: agg.Aggregate | None) -> str:
    if a is None or a.low is None:
        return " (no interval: it needs more than one data set x seed block)"
    return f" [95% bootstrap interval {_fmt(a.low)}, {_fmt(a.high)}]"


def headline(v: Verdicts) -> list[str]:
    """One to three sentences from the data (see the module docstring)."""
    d = v.data
    if not d.methods:
        return ["No measured case: nothing to compare."]
    n_blocks, n_sets = len(d.blocks), len(d.datasets)
    metric = METRICS[v.primary_metric]
    counts = v.best_counts.get(v.primary_metric, {})
    parts = []
    if counts:
        top = max(counts, key=lambda m: (counts[m][0], -(agg.find(v.aggregates, m, v.primary_metric).value or 0)))
        wins, ran = counts[top]
        a = agg.find(v.aggregates, top, v.primary_metric)
        others = [m for m in d.methods if m != top and agg.find(v.aggregates, m, v.primary_metric)
                  and agg.find(v.aggregates, m, v.primary_metric).value is not None]
        worst = max(others, key=lambda m: agg.find(v.aggregates, m, v.primary_metric).value, default=None)
        text = (f"{top} has the lowest {metric.label} on {wins} of {ran} runs (data set × seed; {n_sets} data "
                f"set{'s' if n_sets != 1 else ''}), "
                f"at {_fmt(a.value if a else None)}× the best per run (geometric mean){_ci(a)}")
        if worst is not None:
            w = agg.find(v.aggregates, worst, v.primary_metric)
            text += f"; the farthest from the best is {worst} at {_fmt(w.value)}×{_ci(w)}"
        parts.append(text + ".")
    leaving = []
    for m in d.methods:
        empt = d.raw["n_empty_final"].get(m, {})
        hit = [b for b, x in empt.items() if x > 0]
        if hit:
            per_set: dict[str, list[float]] = {}
            for b, x in empt.items():
                per_set.setdefault(d.dataset_of[b], []).append(x)
            where = sorted((ds for ds, xs in per_set.items() if any(xs)),
                           key=lambda ds: (-sum(per_set[ds]) / len(per_set[ds]), ds))
            most = [f"{ds}: {_fmt(sum(per_set[ds]) / len(per_set[ds]))}" for ds in where[:3]]
            a = agg.find(v.aggregates, m, "n_empty_final")
            leaving.append(f"{m} on {len(hit)} of {len(empt)} runs (mean per run, most first: {', '.join(most)}"
                           f"{f', and {len(where) - 3} more data set(s)' if len(where) > 3 else ''}); over all runs "
                           f"{_fmt(a.value)} per run{_ci(a)}")
    if leaving:
        parts.append("Empty clusters remain with " + "; ".join(leaving) + (
            "; every other method leaves none." if len(leaving) < len(d.methods) else "."))
    else:
        parts.append(f"No method leaves an empty cluster on any of the {n_blocks} runs.")
    front = [r for r in v.pareto if r["on_front"]]
    if front:
        ref = f"the baseline {v.baseline}" if d.time_reference == "baseline" else "the fastest method per run"
        points = [f"{r['method']} (time {_fmt(r['time'].value)}×, {_fmt(r['primary'].value)}× the best)"
                  for r in front]
        parts.append(f"Pareto front of {metric.label} against run time (time relative to {ref}; geometric "
                     f"means): {', '.join(points)}.")
    return parts


def compute(rows: Sequence[Row], downstream: Sequence[Row] | None = None, baseline: str | None = DEFAULT_BASELINE,
            primary_metric: str | None = None, rng: np.random.Generator | None = None,
            n_resamples: int = agg.N_RESAMPLES) -> Verdicts:
    """Every finding of the report from the case rows (and downstream rows), once.

    ``rng`` draws the bootstrap's resamples (default: a Generator seeded with
    :data:`BOOTSTRAP_SEED`, so a report is reproducible).
    """
    rng = rng if rng is not None else np.random.default_rng(BOOTSTRAP_SEED)
    primary = primary_metric_of(rows, primary_metric)
    base = find_method(rows, baseline)
    data = block_values(rows, base)
    aggs = agg.aggregates(data, rng, n_resamples)
    if has_spread(data):
        tie_rule = "two run times tie when they differ by no more than the larger of their measured spreads " \
                   "(seconds_spread, from repeated timings)"
    else:
        tie_rule = (f"no timing spread is stored (single timings), so two run times within "
                    f"{100 * 0.05:g}% of the larger one count as a tie")
    v = Verdicts("", primary, base, data, per_dataset(data), win_tie_loss(data, base),
                 {m: best_counts(data, m) for m in METRICS}, aggs,
                 agg.pareto_table(aggs, data.methods, primary), ledger_mod.ledger(rows, downstream),
                 tie_rule)
    if len(data.blocks) < 2:
        v.notes.append(f"Only {len(data.blocks)} data set x seed block: the bootstrap intervals need more than "
                       "one block, so none are given.")
    if baseline and base is None:
        v.notes.append(f"The baseline '{baseline}' is not in the results: run times are relative to the fastest "
                       "method on each run, and there are no win / tie / loss counts.")
    v.headline_parts = headline(v)
    v.headline = " ".join(v.headline_parts)
    return v


def _clean(x: Any) -> Any:
    """JSON-safe: inf and NaN become None (strict JSON has neither)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def as_json(v: Verdicts) -> dict[str, Any]:
    """The findings as plain data: ``headline``, ``per_dataset``, ``win_tie_loss``, ``aggregates``, ``paper_claims``."""
    return _clean({
        "headline": v.headline,
        "headline_parts": v.headline_parts,
        "primary_metric": v.primary_metric,
        "baseline": v.baseline,
        "time_reference": v.data.time_reference,
        "time_tie_rule": v.time_tie_rule,
        "n_blocks": len(v.data.blocks),
        "datasets": v.data.datasets,
        "notes": v.notes,
        "per_dataset": [{k: r[k] for k in ("dataset", "metric", "winner", "winners", "n_seeds", "values",
                                              "relative")} for r in v.per_dataset],
        "win_tie_loss": v.win_tie_loss,
        "best_counts": [{"metric": metric, "method": m, "best": w, "n": n}
                        for metric, per in v.best_counts.items() for m, (w, n) in per.items()],
        "aggregates": [a.as_dict() for a in v.aggregates],
        "pareto": [{"method": r["method"], "on_front": r["on_front"], "primary_metric": v.primary_metric,
                    "primary": r["primary"].value if r["primary"] else None,
                    "time_ratio": r["time"].value if r["time"] else None,
                    "n_empty_final": r["empties"].value if r["empties"] else None} for r in v.pareto],
        "paper_claims": [{k: r[k] for k in ("source", "row", "setting", "task", "method", "metric", "paper",
                                            "measured", "note")} for r in v.paper_claims],
    })
