"""Per-data-set evidence: blocks, values per method, winners, win / tie / loss against a baseline.

The unit of evidence is one *block*: a data set run with one seed (the
columns of :data:`~pgbench.report.stats.PAIR_FIELDS`), on which every method
ran the same data.  A *data set* is a block without its seeds.  Every number
the verdicts show starts as one value per (method, block), from
:func:`block_values`; the tables here and the aggregates of
:mod:`pgbench.report.aggregates` are functions of those values.

Deterministic metrics (empty clusters, rounds, inertia, relative error) are
compared exactly: equal values tie.  Times are noisy: two times tie when they
differ by no more than the larger of their measured spreads
(``seconds_spread``, from repeated timings) or, for rows without a spread,
by no more than :data:`TIME_TIE_FRACTION` of the larger time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from .. import schema
from .stats import PAIR_FIELDS, decoded, geometric_mean, has_metrics, namer, pair_key, ratio_to_best
from .tables import setting

Row = dict[str, Any]

#: two times without a measured spread tie when they differ by at most this share of the larger one
TIME_TIE_FRACTION = 0.05
SPREAD_COLUMN = "seconds_spread"


@dataclass(frozen=True)
class MetricDef:
    name: str
    label: str
    unit: str
    kind: str              # "count" (mean, never below 0), "ratio" (geometric mean) or "time" (noisy)
    column: str            # the stored column the value comes from


#: the metrics of the verdicts, declared once (name -> definition); lower is better for all
METRICS: dict[str, MetricDef] = {m.name: m for m in (
    MetricDef("n_empty_final", "final empty clusters", "count", "count", "n_empty_final"),
    MetricDef("rounds_total", "resolution rounds", "count", "count", "rounds_total"),
    MetricDef("inertia_ratio", "inertia relative to the best", "× best on the same data", "ratio", "inertia"),
    MetricDef("rel_error_ratio", "relative weight error relative to the best", "× best on the same data", "ratio",
              "rel_error"),
    MetricDef("time_ratio", "run time relative to the baseline", "× baseline on the same data", "time",
              "seconds_total"),
)}
#: the metrics a suite may name as its primary (quality) metric (declared with the row schema)
PRIMARY_CHOICES = schema.PRIMARY_METRICS
DEFAULT_PRIMARY = schema.DEFAULT_PRIMARY_METRIC


def _key_text(row: Row, fields: Sequence[str]) -> str:
    return json.dumps([decoded(row.get(f)) for f in fields], sort_keys=True, default=str)


DATASET_FIELDS = tuple(f for f in PAIR_FIELDS if f not in ("seed", "data_seed"))


@dataclass
class Blocks:
    """Every measured value, one per (metric, method, block), and the names of blocks and data sets."""

    methods: list[str]                                    # sorted
    blocks: list[tuple]                                   # pair keys, sorted
    dataset_of: dict[tuple, str]                          # block -> data set display name
    datasets: list[str]                                   # sorted display names
    values: dict[str, dict[str, dict[tuple, float]]]      # metric -> method -> block -> value
    raw: dict[str, dict[str, dict[tuple, float]]]         # column -> method -> block -> stored value
    spread: dict[str, dict[tuple, float]]                 # method -> block -> seconds_spread (when stored)
    baseline: str | None
    time_reference: str                                   # "baseline" or "fastest"


def _dataset_names(rows: Sequence[Row]) -> dict[str, str]:
    """data-set key -> display name: the ``dataset`` column, with the setting when that name is shared."""
    keys: dict[str, set[str]] = {}
    for r in rows:
        keys.setdefault(str(r.get("dataset")), set()).add(_key_text(r, DATASET_FIELDS))
    names = {}
    for r in rows:
        key, base = _key_text(r, DATASET_FIELDS), str(r.get("dataset"))
        names[key] = base if len(keys[base]) == 1 else f"{base} ({setting(r)}, k={r.get('k')})"
    return names


def block_values(rows: Sequence[Row], baseline: str | None) -> Blocks:
    """Every metric of :data:`METRICS` per (method, block) for the measured rows.

    ``inertia_ratio`` / ``rel_error_ratio``: the value over the lowest of any method
    on the same block; ``time_ratio``: run time over ``baseline``'s on the same
    block, or over the fastest method's when ``baseline`` (a display name) is None
    or did not run that block.  A method with several rows on one block (it
    should not happen) keeps the last.
    """
    name = namer(rows)
    measured = [r for r in rows if has_metrics(r)]
    names = _dataset_names(measured)
    raw: dict[str, dict[str, dict[tuple, float]]] = {m.column: {} for m in METRICS.values()}
    spread: dict[str, dict[tuple, float]] = {}
    dataset_of: dict[tuple, str] = {}
    for r in measured:
        block = pair_key(r)
        dataset_of[block] = names[_key_text(r, DATASET_FIELDS)]
        for column in raw:
            if r.get(column) is not None:
                raw[column].setdefault(name(r), {})[block] = float(r[column])
        if r.get(SPREAD_COLUMN) is not None:
            spread.setdefault(name(r), {})[block] = float(r[SPREAD_COLUMN])
    methods = sorted({name(r) for r in measured})
    blocks = sorted(dataset_of)
    values: dict[str, dict[str, dict[tuple, float]]] = {}
    for metric in ("n_empty_final", "rounds_total"):
        values[metric] = {m: dict(v) for m, v in raw[metric].items()}
    for metric, column in (("inertia_ratio", "inertia"), ("rel_error_ratio", "rel_error")):
        best = {b: min(v[b] for v in raw[column].values() if b in v) for b in blocks
                if any(b in v for v in raw[column].values())}
        values[metric] = {m: {b: ratio_to_best(x, best[b]) for b, x in v.items()} for m, v in raw[column].items()}
    times = raw["seconds_total"]
    base_times = times.get(baseline, {}) if baseline else {}
    values["time_ratio"] = {}
    for m, v in times.items():
        for b, x in v.items():
            ref = base_times.get(b)
            if ref is None:
                ref = min(t[b] for t in times.values() if b in t)
            values["time_ratio"].setdefault(m, {})[b] = ratio_to_best(x, ref)
    return Blocks(methods, blocks, dataset_of, sorted(set(dataset_of.values())), values, raw, spread,
                  baseline if base_times else None, "baseline" if base_times else "fastest")


# --------------------------------------------------------------------- ties

def times_tie(a: float, b: float, spread_a: float | None = None, spread_b: float | None = None) -> bool:
    """Whether two run times are equal within their noise (see the module docstring)."""
    if spread_a is not None or spread_b is not None:
        return abs(a - b) <= max(spread_a or 0.0, spread_b or 0.0)
    return abs(a - b) <= TIME_TIE_FRACTION * max(abs(a), abs(b))


def compare(data: Blocks, metric: str, a: str, b: str, block: tuple) -> int | None:
    """-1 when ``a`` beats ``b`` on ``block`` (lower), 0 on a tie, 1 when it loses; None if one is missing."""
    md = METRICS[metric]
    if md.kind == "time":
        ta, tb = data.raw["seconds_total"].get(a, {}).get(block), data.raw["seconds_total"].get(b, {}).get(block)
        if ta is None or tb is None:
            return None
        if times_tie(ta, tb, data.spread.get(a, {}).get(block), data.spread.get(b, {}).get(block)):
            return 0
        return -1 if ta < tb else 1
    # deterministic: exact, on the stored column (a ratio to the same best orders the same way)
    va, vb = data.raw[md.column].get(a, {}).get(block), data.raw[md.column].get(b, {}).get(block)
    if va is None or vb is None:
        return None
    return 0 if va == vb else (-1 if va < vb else 1)


def has_spread(data: Blocks) -> bool:
    return any(data.spread.values())


def win_tie_loss(data: Blocks, baseline: str | None) -> list[Row]:
    """Per (method, metric): blocks where the method beats, ties or loses to ``baseline``.

    One dict per method other than the baseline and metric with at least one
    paired block: ``method``, ``baseline``, ``metric``, ``wins``, ``ties``,
    ``losses`` and ``n`` (paired blocks).
    """
    if baseline is None or baseline not in data.methods:
        return []
    out = []
    for method in data.methods:
        if method == baseline:
            continue
        for metric in METRICS:
            results = [compare(data, metric, method, baseline, b) for b in data.blocks]
            results = [x for x in results if x is not None]
            if results:
                out.append({"method": method, "baseline": baseline, "metric": metric,
                            "wins": results.count(-1), "ties": results.count(0), "losses": results.count(1),
                            "n": len(results)})
    return out


def best_counts(data: Blocks, metric: str) -> dict[str, tuple[int, int]]:
    """method -> (blocks where it is best or tied best on ``metric``, blocks where it ran)."""
    counts = {m: [0, 0] for m in data.methods}
    for b in data.blocks:
        here = [m for m in data.methods if compare(data, metric, m, m, b) is not None]
        for m in here:
            counts[m][1] += 1
            if all(compare(data, metric, m, other, b) != 1 for other in here):
                counts[m][0] += 1
    return {m: (w, n) for m, (w, n) in counts.items() if n}


# --------------------------------------------------------------- per data set

def per_dataset(data: Blocks) -> list[Row]:
    """One dict per (data set, metric): each method's value, its value relative to the best, the winner(s).

    ``values``: method -> over the data set's seeds, the mean for counts, the
    geometric mean of the ratio for ``inertia_ratio`` / ``rel_error_ratio``, the
    geometric mean of the run time (s) for ``time_ratio`` (shown as
    ``seconds_total``).  ``relative``: value / the lowest value (None for counts:
    their best is often 0, so the table shows the counts).  ``winners``: the
    methods that tie for the lowest value (counts and ratios: exactly equal; times:
    within the noise of :func:`times_tie`), ``winner`` the same joined by ", ".
    """
    out = []
    for ds in data.datasets:
        blocks = [b for b in data.blocks if data.dataset_of[b] == ds]
        for metric, md in METRICS.items():
            source = data.raw["seconds_total"] if md.kind == "time" else data.values[metric]
            vals: dict[str, float] = {}
            for m in data.methods:
                here = [source[m][b] for b in blocks if b in source.get(m, {})]
                if here:
                    vals[m] = sum(here) / len(here) if md.kind == "count" else geometric_mean(here)
            if not vals:
                continue
            low = min(vals.values())
            if md.kind == "time":
                spreads = {m: max([data.spread.get(m, {}).get(b, 0.0) for b in blocks] or [0.0]) for m in vals}
                fastest = min(vals, key=vals.get)
                winners = [m for m in vals if m == fastest or times_tie(
                    vals[m], low, spreads[m] if has_spread(data) else None,
                    spreads[fastest] if has_spread(data) else None)]
            else:
                winners = [m for m in vals if vals[m] == low]
            relative = {m: (None if md.kind == "count" else ratio_to_best(v, low)) for m, v in vals.items()}
            out.append({"dataset": ds, "metric": "seconds_total" if md.kind == "time" else metric,
                        "n_seeds": len(blocks), "values": vals, "relative": relative, "winners": sorted(winners),
                        "winner": ", ".join(sorted(winners))})
    return out
