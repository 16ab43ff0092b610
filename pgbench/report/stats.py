"""Statistics the report tables share: method names, case pairing, intervals across seeds.

What: the name of a case's heuristic combination (``init+resolve[+consolidate]``),
the key that pairs cases run on the same data with different methods, the 95%
t-interval, per-seed means, and the inertia of a case relative to the best method
on the same data.

Why here: every table of :mod:`pgbench.report.tables` and the verdicts of
:mod:`pgbench.report.verdicts` must agree on what "a method", "the same data" and "an
interval" mean; one module decides it once.

Rows are the dicts of :meth:`pgbench.store.Store.rows`, with the JSON columns
either decoded or still JSON text (both are accepted).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from .. import naming, schema
from ..result import Status

__all__ = [
    "FAILED", "PAIR_FIELDS", "Interval", "best_inertia", "combination", "decoded", "geometric_mean", "has_metrics",
    "mean", "method_names", "namer", "pair_key", "ratio_to_best", "relative_inertia", "same_name", "seed_interval",
    "t_interval",
]

#: statuses of cases that produced no measurements (derived from the one declaration, pgbench.result.Status)
FAILED = tuple(s for s in Status if not s.measured)

#: the columns that say "the same data and settings": everything but the method.  Not the backend: a
#: method may choose its own (the paper suite runs fairseq with backend "direct"), and it only decides
#: how distances are computed, so runs that differ in it still ran the same data
PAIR_FIELDS = schema.PAIR_FIELDS

CONFIDENCE = 0.95


def decoded(value: Any) -> Any:
    """A JSON column's value as a Python object (JSON text is parsed, None stays None)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def combination(row: dict[str, Any]) -> str:
    """``init + resolve`` or ``init + resolve + consolidate`` of a case (or a downstream row).

    Spaces around the ``+`` keep ``kmeans++ + sklearn`` readable; names given by
    users are matched without spaces (:func:`same_name`).  A row with no
    heuristic at all (an uncompressed model in the downstream table) is ``original``;
    a downstream row quantized in iPQ stages (fine-tuning between layer groups) is
    its own method, ``... (iPQ stages)``, since it measures the staging as well.
    """
    name = naming.method_name(row.get("init"), row.get("resolve"), row.get("consolidate"))
    return f"{name} (iPQ stages)" if row.get("ipq_stages") else name


def same_name(a: str, b: str) -> bool:
    """Whether two method names agree once spaces are removed (``fairseq+fairseq`` = ``fairseq + fairseq``)."""
    return naming.same_name(a, b)          # also the older spellings fairseq/fairseq, fairseq:fairseq


def _method_key(row: dict[str, Any]) -> tuple[str, str]:
    return combination(row), str(row.get("method") or "")


def method_names(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(combination, method label) -> display name.

    The name is the combination; when one combination appears under several
    method labels (different parameters), the label is added: ``pg + pg [pg-30]``.
    """
    labels: dict[str, set[str]] = {}
    for r in rows:
        combo, label = _method_key(r)
        labels.setdefault(combo, set()).add(label)
    return {(combo, label): (combo if len(found) == 1 else f"{combo} [{label}]")
            for combo, found in labels.items() for label in found}


def namer(rows: Sequence[dict[str, Any]]) -> Callable[[dict[str, Any]], str]:
    """A function row -> method display name, for these rows."""
    names = method_names(rows)
    return lambda r: names[_method_key(r)]


def has_metrics(row: dict[str, Any]) -> bool:
    """Whether a case produced measurements (status not error/timeout)."""
    return row.get("status") not in FAILED


def pair_key(row: dict[str, Any]) -> tuple:
    """Cases with equal keys ran the same data and settings with different methods."""
    return tuple(json.dumps(decoded(row.get(f)), sort_keys=True) for f in PAIR_FIELDS)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% t-interval; ``low``/``high`` are None when n < 2."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        return None if self.low is None or self.high is None else (self.high - self.low) / 2


def _t_quantile(df: int) -> float:
    from scipy import stats   # scipy comes with scikit-learn, a pgbench dependency

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))


def t_interval(values: Sequence[float]) -> Interval:
    """Mean and two-sided 95% Student-t interval of ``values`` (sample sd, n - 1 dof)."""
    vals = [float(v) for v in values if v is not None]
    n = len(vals)
    if n == 0:
        return Interval(None, None, None, 0)
    m = sum(vals) / n
    if n < 2 or any(math.isinf(v) for v in vals):
        return Interval(m, None, None, n)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (n - 1))
    half = _t_quantile(n - 1) * sd / math.sqrt(n)
    return Interval(m, m - half, m + half, n)


def seed_interval(pairs: Iterable[tuple[Any, float]]) -> Interval:
    """Interval across seeds: average the values of each seed, then t-interval of those means.

    ``pairs`` are (seed, value); ``n`` of the result is the number of seeds.
    """
    by_seed: dict[Any, list[float]] = {}
    for seed, value in pairs:
        if value is not None:
            by_seed.setdefault(seed, []).append(float(value))
    return t_interval([sum(v) / len(v) for _, v in sorted(by_seed.items(), key=lambda kv: str(kv[0]))])


def best_inertia(rows: Sequence[dict[str, Any]]) -> dict[tuple, float]:
    """pair key -> the lowest final inertia of any method on that data."""
    best: dict[tuple, float] = {}
    for r in rows:
        if has_metrics(r) and r.get("inertia") is not None:
            key = pair_key(r)
            best[key] = min(best.get(key, math.inf), float(r["inertia"]))
    return best


def geometric_mean(values: Sequence[float]) -> float | None:
    """Geometric mean of non-negative values: 0 if one is 0, inf if one is inf, None for none."""
    if not values:
        return None
    if any(v == 0 for v in values):
        return 0.0
    if any(math.isinf(v) for v in values):
        return math.inf
    return math.exp(sum(math.log(v) for v in values) / len(values))


def ratio_to_best(value: float, best: float) -> float:
    """``value / best``; a best of 0 gives 1.0 to a value of 0 and inf to any other."""
    return value / best if best > 0 else (1.0 if value == 0 else math.inf)


def relative_inertia(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """case_id -> final inertia / the lowest final inertia among the methods on the same data.

    1.0 is the best method on that data; scale-free, so it can be averaged across
    data sets.
    """
    best = best_inertia(rows)
    return {r["case_id"]: ratio_to_best(float(r["inertia"]), best[pair_key(r)])
            for r in rows if has_metrics(r) and r.get("inertia") is not None}
