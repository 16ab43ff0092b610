"""Compare two result stores metric by metric, and say whether B regressed against A.

Cases are matched by ``case_id``; the cases left over on both sides are matched
by (method label, data set, seed) when that key is unique in each store (for
stores whose ids differ, e.g. after a change to the case definition).  For each
method and metric, the means over the matched, measured pairs are compared:
``change = (mean_B - mean_A) / |mean_A|`` (inf when A is 0 and B is not).  All
metrics compared here are lower-is-better, so a change above ``threshold`` is a
regression, and so is a case measured in A that failed in B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from .stats import FAILED, has_metrics

#: metrics compare knows, all lower-is-better
LOWER_IS_BETTER = ("n_empty_final", "rounds_total", "seconds_total", "inertia", "rel_error", "centroid_index")
DEFAULT_METRICS = LOWER_IS_BETTER[:5]
ALL = "(all)"

Row = dict[str, Any]


@dataclass(frozen=True)
class Change:
    method: str                 # a method label, or "(all)"
    metric: str
    n: int                      # pairs with the metric on both sides
    mean_a: float | None
    mean_b: float | None
    change: float | None        # relative change of the mean, B against A
    regression: bool


@dataclass
class Comparison:
    threshold: float
    metrics: tuple[str, ...]
    changes: list[Change] = field(default_factory=list)
    by_id: int = 0              # pairs matched by case_id
    by_key: int = 0             # pairs matched by (method, dataset, seed)
    only_a: int = 0
    only_b: int = 0
    newly_failed: list[Row] = field(default_factory=list)   # measured in A, failed in B
    newly_measured: int = 0                                  # failed in A, measured in B

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions or self.newly_failed)


def _key(r: Row) -> tuple:
    return r.get("method"), r.get("dataset"), r.get("seed")


def match(rows_a: Sequence[Row], rows_b: Sequence[Row]) -> tuple[list[tuple[Row, Row]], int, int, int]:
    """(pairs, matched by id, only in A, only in B): by case_id first, then by unique (method, dataset, seed)."""
    b_by_id = {r["case_id"]: r for r in rows_b}
    pairs = [(a, b_by_id[a["case_id"]]) for a in rows_a if a["case_id"] in b_by_id]
    n_id = len(pairs)
    taken = {a["case_id"] for a, _ in pairs}
    rest_a = [a for a in rows_a if a["case_id"] not in taken]
    rest_b = [b for b in rows_b if b["case_id"] not in taken]

    def unique(rows: Sequence[Row]) -> dict[tuple, Row]:
        seen: dict[tuple, list[Row]] = {}
        for r in rows:
            seen.setdefault(_key(r), []).append(r)
        return {k: v[0] for k, v in seen.items() if len(v) == 1}

    ua, ub = unique(rest_a), unique(rest_b)
    pairs += [(ua[k], ub[k]) for k in ua if k in ub]
    n_matched = len(pairs)
    return pairs, n_id, len(rows_a) - n_matched, len(rows_b) - n_matched


def relative_change(mean_a: float, mean_b: float) -> float:
    if mean_a == 0:
        return 0.0 if mean_b == 0 else math.copysign(math.inf, mean_b)
    return (mean_b - mean_a) / abs(mean_a)


def _change(method: str, metric: str, pairs: Sequence[tuple[Row, Row]], threshold: float) -> Change:
    vals = [(float(a[metric]), float(b[metric])) for a, b in pairs
            if a.get(metric) is not None and b.get(metric) is not None]
    if not vals:
        return Change(method, metric, 0, None, None, None, False)
    ma = sum(v for v, _ in vals) / len(vals)
    mb = sum(v for _, v in vals) / len(vals)
    rel = relative_change(ma, mb)
    return Change(method, metric, len(vals), ma, mb, rel, rel > threshold)


def compare(rows_a: Sequence[Row], rows_b: Sequence[Row], metrics: Sequence[str] = DEFAULT_METRICS,
            threshold: float = 0.1) -> Comparison:
    """Per-method and overall changes of ``metrics`` from store A to store B.

    Raises
    ------
    ValueError
        An unknown metric, a negative threshold, or no case of A matching a case of B.
    """
    unknown = [m for m in metrics if m not in LOWER_IS_BETTER]
    if unknown:
        raise ValueError(f"unknown metric '{unknown[0]}' (known: {', '.join(LOWER_IS_BETTER)}).")
    if threshold < 0:
        raise ValueError(f"--threshold must be >= 0, got {threshold}.")
    pairs, n_id, only_a, only_b = match(rows_a, rows_b)
    if not pairs:
        raise ValueError("no case of the first store matches a case of the second "
                         "(by case_id or by method, data set and seed).")
    out = Comparison(threshold, tuple(metrics), by_id=n_id, by_key=len(pairs) - n_id, only_a=only_a, only_b=only_b)
    measured = [(a, b) for a, b in pairs if has_metrics(a) and has_metrics(b)]
    out.newly_failed = [b for a, b in pairs if has_metrics(a) and b.get("status") in FAILED]
    out.newly_measured = sum(a.get("status") in FAILED and has_metrics(b) for a, b in pairs)
    methods = sorted({str(a.get("method")) for a, _ in measured})
    for metric in metrics:
        for method in methods:
            change = _change(method, metric, [(a, b) for a, b in measured if str(a.get("method")) == method],
                             threshold)
            if change.n:
                out.changes.append(change)
        overall = _change(ALL, metric, measured, threshold)
        if overall.n:
            out.changes.append(overall)
    return out
