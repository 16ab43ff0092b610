"""The report's tables, as plain functions of stored result rows.

Each function takes the case rows of :meth:`pgbench.store.Store.rows` (JSON
columns decoded or not) and returns plain data: lists of dicts or small
dataclasses, numbers unformatted.  Nothing here reads the store, draws or
formats; :mod:`pgbench.report.render` does that.  Failed cases (status
``error`` / ``timeout``) are counted but never averaged.

The views of the PG k-means paper regenerated here: average empty clusters per
layer type (Tables 1 and 5), share of layers left with empty clusters (Table 4),
rounds and time of empty-cluster resolution (section 5.4) and, from the
``downstream`` table, accuracy against compression ratio (Table 2).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Sequence

from .. import naming
from .stats import (FAILED, Interval, best_inertia, combination, decoded, has_metrics, mean, namer, pair_key,
                    ratio_to_best, same_name, seed_interval)

if TYPE_CHECKING:
    import numpy as np

Row = dict[str, Any]

DEFAULT_BASELINE = naming.method_name("fairseq", "fairseq")

#: stored layer type -> the paper's name, in the paper's row order
LAYER_TYPE_NAMES = {"embedding": "Embedding", "attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj",
                    "attn_out": "out_proj", "fc1": "FC1", "fc2": "FC2"}
UNTYPED = "untyped"


def find_method(rows: Sequence[Row], wanted: str | None) -> str | None:
    """The method name that ``wanted`` designates: a method name, a suite method label or a combination.

    Names are compared without spaces, so ``fairseq+fairseq`` finds ``fairseq + fairseq``.
    """
    if not wanted:
        return None
    name = namer(rows)
    for r in rows:
        if same_name(name(r), wanted):
            return name(r)
    for r in rows:
        if r.get("method") == wanted:
            return name(r)
    for r in rows:
        if same_name(combination(r), wanted):
            return name(r)
    return None


# --------------------------------------------------------------- paper views

def setting(row: Row) -> str:
    """What a paper table column group stands for: checkpoint file and PQ preset, else the source."""
    params = decoded(row.get("source_params")) or {}
    parts = []
    if isinstance(params, dict):
        if params.get("path"):
            parts.append(os.path.basename(str(params["path"]).rstrip("/\\")))
        if params.get("preset"):
            parts.append(str(params["preset"]))
    return " · ".join(parts) or str(row.get("source") or "?")


def _layer_rows(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if has_metrics(r) and (r.get("layer") or r.get("layer_type"))]


def _type_order(layer_type: str) -> tuple:
    names = list(LAYER_TYPE_NAMES)
    return (names.index(layer_type) if layer_type in names else len(names), layer_type)


def layer_type_table(rows: Sequence[Row]) -> list[Row]:
    """Average final empty clusters per layer type (the paper's Tables 1 and 5).

    One dict per (setting, layer type, method): ``mean_empty`` over the layers of
    that type and every seed, ``n`` such layer runs.  Layers with no type are
    ``untyped``.  Sorted by setting, then the paper's layer order, then method.
    """
    name = namer(rows)
    cells: dict[tuple, list[float]] = {}
    for r in _layer_rows(rows):
        if r.get("n_empty_final") is not None:
            key = (setting(r), r.get("layer_type") or UNTYPED, name(r))
            cells.setdefault(key, []).append(float(r["n_empty_final"]))
    return [{"setting": s, "layer_type": t, "layer_name": LAYER_TYPE_NAMES.get(t, t), "method": m,
             "mean_empty": mean(v), "n": len(v)}
            for (s, t, m), v in sorted(cells.items(), key=lambda kv: (kv[0][0], _type_order(kv[0][1]), kv[0][2]))]


def layer_share_table(rows: Sequence[Row]) -> list[Row]:
    """Percentage of layers left with empty clusters (the paper's Table 4).

    One dict per (setting, method): ``n_layers`` layer runs (every seed counts),
    ``n_with_empty`` of them with ``n_empty_final > 0``, ``share_pct``.
    """
    name = namer(rows)
    cells: dict[tuple, list[bool]] = {}
    for r in _layer_rows(rows):
        if r.get("n_empty_final") is not None:
            cells.setdefault((setting(r), name(r)), []).append(r["n_empty_final"] > 0)
    return [{"setting": s, "method": m, "n_layers": len(v), "n_with_empty": sum(v),
             "share_pct": 100.0 * sum(v) / len(v)} for (s, m), v in sorted(cells.items())]


def _ratio(num: float, den: float) -> float | None:
    if den == 0:
        return None if num == 0 else float("inf")
    return num / den


def _boot_mean(values: list[float | None], rng: np.random.Generator) -> Interval:
    """Mean of non-negative values with a 95% bootstrap interval over them (never below 0)."""
    from .aggregates import aggregate, resample_indices   # aggregates imports evidence, which imports this module

    vals = [v for v in values if v is not None]
    draws = resample_indices(len(vals), rng) if len(vals) > 1 else None
    a = aggregate([float(v) for v in vals], "mean", draws, lower_bound=0.0)
    return Interval(a.value, a.low, a.high, a.n_blocks)


def resolution_table(rows: Sequence[Row], baseline: str | None = DEFAULT_BASELINE,
                     rng: np.random.Generator | None = None) -> list[Row]:
    """Rounds and time of empty-cluster resolution per method (the paper's section 5.4).

    Per method: ``n`` measured cases, ``n_resolving`` of them that met an empty
    cluster after some assignment step; ``rounds`` and ``seconds_resolve``, means
    over the runs with 95% bootstrap intervals over the runs (``rng`` draws them;
    never below 0); ``rounds_per_iter``, the mean rounds of the
    iterations that met empty clusters; ``resolve_share``, resolution time over
    total time; and, on the cases paired with the baseline, ``fewer_rounds`` =
    baseline rounds / method rounds and ``speedup`` = baseline resolution time /
    method resolution time (ratios of sums; None when both are 0, inf when only
    the method's is 0).
    """
    if rng is None:
        import numpy as np    # only here: the CLI imports this module for its defaults

        rng = np.random.default_rng(0)
    name = namer(rows)
    base = find_method(rows, baseline)
    base_rows = {pair_key(r): r for r in rows if base and name(r) == base and has_metrics(r)}
    groups: dict[str, list[Row]] = {}
    for r in rows:
        if has_metrics(r):
            groups.setdefault(name(r), []).append(r)
    out = []
    for method, ok in sorted(groups.items()):
        active_rounds: list[float] = []
        n_resolving = 0
        for r in ok:
            assigned = decoded(r.get("n_empty_assigned_per_iter")) or []
            rounds = decoded(r.get("rounds_per_iter")) or []
            hits = [float(rd) for a, rd in zip(assigned, rounds) if a and a > 0]
            n_resolving += bool(hits)
            active_rounds.extend(hits)
        total = sum(float(r.get("seconds_total") or 0) for r in ok)
        entry = {"method": method, "n": len(ok), "n_resolving": n_resolving,
                 "rounds": _boot_mean([r.get("rounds_total") for r in ok], rng),
                 "seconds_resolve": _boot_mean([r.get("seconds_resolve") for r in ok], rng),
                 "rounds_per_iter": mean(active_rounds),
                 "resolve_share": _ratio(sum(float(r.get("seconds_resolve") or 0) for r in ok), total),
                 "n_pairs": 0, "fewer_rounds": None, "speedup": None}
        paired = [(r, base_rows[pair_key(r)]) for r in ok if pair_key(r) in base_rows]
        if base is not None and method != base and paired:
            entry["n_pairs"] = len(paired)
            entry["fewer_rounds"] = _ratio(sum(float(b.get("rounds_total") or 0) for _, b in paired),
                                           sum(float(r.get("rounds_total") or 0) for r, _ in paired))
            entry["speedup"] = _ratio(sum(float(b.get("seconds_resolve") or 0) for _, b in paired),
                                      sum(float(r.get("seconds_resolve") or 0) for r, _ in paired))
        out.append(entry)
    return out


# ---------------------------------------------------------- per-iteration data

def curve_table(rows: Sequence[Row], traces: dict[str, list[Row]] | None = None) -> list[Row]:
    """Per method and iteration, means over the cases that reached that iteration.

    ``n_empty_assigned`` (after the assignment step), ``n_empty_resolved`` (after
    the resolver) and ``inertia_rel`` (inertia at the assignment step over the
    best final inertia of any method on the same data; None without traces).
    Empty-cluster counts come from the trace when there is one, else from the
    ``*_per_iter`` columns.
    """
    name = namer(rows)
    traces = traces or {}
    best = best_inertia(rows)
    acc: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        if not has_metrics(r):
            continue
        trace = traces.get(r["case_id"])
        if trace:
            points = [(t["iteration"], t.get("n_empty_assigned"), t.get("n_empty_resolved"), t.get("inertia"))
                      for t in trace]
        else:
            assigned = decoded(r.get("n_empty_assigned_per_iter")) or []
            resolved = decoded(r.get("n_empty_per_iter")) or []
            points = [(i, a, s, None) for i, (a, s) in enumerate(zip(assigned, resolved))]
        b = best.get(pair_key(r))
        for it, assigned_i, resolved_i, inertia in points:
            cell = acc.setdefault((name(r), it), {"a": [], "s": [], "i": []})
            if assigned_i is not None:
                cell["a"].append(float(assigned_i))
            if resolved_i is not None:
                cell["s"].append(float(resolved_i))
            if inertia is not None and b is not None:
                cell["i"].append(ratio_to_best(float(inertia), b))
    return [{"method": m, "iteration": it, "n_cases": len(c["a"]), "n_empty_assigned": mean(c["a"]),
             "n_empty_resolved": mean(c["s"]), "inertia_rel": mean(c["i"])}
            for (m, it), c in sorted(acc.items())]


# ----------------------------------------------------- sizes, centroid index

def size_table(rows: Sequence[Row]) -> list[Row]:
    """Cluster sizes per method: means over measured cases.

    ``min_rel`` / ``max_rel``: smallest / largest cluster over the mean cluster
    size n/k; ``size_cv``: coefficient of variation of the sizes; ``share_empty``:
    fraction of cases whose smallest cluster is empty.
    """
    name = namer(rows)
    groups: dict[str, list[Row]] = {}
    for r in rows:
        if has_metrics(r) and r.get("size_min") is not None and r.get("n") and r.get("k"):
            groups.setdefault(name(r), []).append(r)
    out = []
    for method, ok in sorted(groups.items()):
        avg = [r["n"] / r["k"] for r in ok]
        out.append({"method": method, "n": len(ok),
                    "min_rel": mean([r["size_min"] / a for r, a in zip(ok, avg)]),
                    "max_rel": mean([r["size_max"] / a for r, a in zip(ok, avg) if r.get("size_max") is not None]),
                    "size_cv": mean([float(r["size_cv"]) for r in ok if r.get("size_cv") is not None]),
                    "share_empty": sum(r["size_min"] == 0 for r in ok) / len(ok)})
    return out


def centroid_index_table(rows: Sequence[Row]) -> list[Row]:
    """Centroid index on ground-truth sets: per (data set, method), mean CI over seeds and how many runs hit 0."""
    name = namer(rows)
    cells: dict[tuple, list[int]] = {}
    for r in rows:
        if has_metrics(r) and r.get("centroid_index") is not None:
            cells.setdefault((str(r.get("dataset")), name(r)), []).append(int(r["centroid_index"]))
    return [{"dataset": d, "method": m, "n": len(v), "mean_ci": mean(v), "n_zero": sum(x == 0 for x in v)}
            for (d, m), v in sorted(cells.items())]


# ------------------------------------------------------------ downstream (GLUE)

def downstream_score(row: Row) -> tuple[float | None, str]:
    """(value, metric name) of a downstream row: the task's main metric, else ``accuracy``.

    The GLUE stage stores the main metric's value in ``metric`` and its name in
    ``metric_name``; a row whose ``metric`` is a name (not a number) gives ``accuracy``.
    """
    value = row.get("metric")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), str(row.get("metric_name") or "metric")
    acc = row.get("accuracy")
    return (None if acc is None else float(acc)), str(value or "accuracy")


def downstream_table(drows: Sequence[Row]) -> list[Row]:
    """Downstream score against compression ratio (the paper's Table 2), from the ``downstream`` table.

    One dict per (method, compression ratio, task) over the rows that did not
    fail: ``score`` (:func:`downstream_score`) mean with 95% interval across
    seeds, ``metric`` its name, ``size_mb`` mean, ``best`` True for the highest
    mean score at that compression ratio and task.  Rows with no heuristics are
    the ``original`` (unquantized) model.
    """
    name = namer(drows)
    cells: dict[tuple, list[tuple[Row, float, str]]] = {}
    for r in drows:
        value, metric = downstream_score(r)
        if value is not None and r.get("status") not in FAILED:
            ratio = None if r.get("compression_ratio") is None else float(r["compression_ratio"])
            cells.setdefault((name(r), ratio, str(r.get("task"))), []).append((r, value, metric))
    out = []
    for (method, ratio, task), group in cells.items():
        sizes = [float(r["size_mb"]) for r, _, _ in group if r.get("size_mb") is not None]
        out.append({"method": method, "compression_ratio": ratio, "task": task, "size_mb": mean(sizes),
                    "metric": ", ".join(sorted({m for _, _, m in group})), "best": False,
                    "score": seed_interval((r.get("seed"), v) for r, v, _ in group)})
    top: dict[tuple, float] = {}
    for e in out:
        top[(e["compression_ratio"], e["task"])] = max(top.get((e["compression_ratio"], e["task"]), -math.inf),
                                                       e["score"].mean)
    for e in out:
        e["best"] = e["score"].mean == top[(e["compression_ratio"], e["task"])]
    out.sort(key=lambda e: (e["method"] != "original", e["method"], e["compression_ratio"] or 0.0, e["task"]))
    return out


def downstream_failed(drows: Sequence[Row]) -> list[Row]:
    """The downstream rows that failed, with their error text."""
    return [{"method": str(r.get("method") or combination(r)), "task": r.get("task"), "preset": r.get("preset"),
             "seed": r.get("seed"), "status": r.get("status"), "error": r.get("error") or ""}
            for r in drows if r.get("status") in FAILED]
