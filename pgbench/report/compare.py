"""Compare two result stores metric by metric, and say whether B regressed against A.

Cases are matched by ``case_id``; the cases left over on both sides are matched
by :data:`pgbench.schema.MATCH_FIELDS` (method label, data set, seed) when that key
is unique in each store (for stores whose ids differ, e.g. after a change to the
case definition).  Every metric compared here is lower-is-better.  For each method
(and ``(all)``) and metric, over the matched pairs measured on both sides:

* **Exact metrics** (:data:`EXACT`: empty clusters, rounds, inertia, relative
  error, centroid index) are deterministic: the same code, data and seed give the
  same values, bit for bit, whatever the load.  They are compared exactly:
  ``n_changed`` counts the pairs whose values differ at all (reported, even below
  the threshold), and ``change = (mean_B - mean_A) / |mean_A|`` (inf when A is 0
  and B is not) above ``threshold`` is a regression.
* **Timings** (:data:`TIMES`: ``seconds_total``) are noisy, so they are judged
  against the spread the runs measured.  A case run with ``[suite] repeats = R``
  stores its fastest time ``min`` and ``seconds_spread = max - min`` over the R
  repeats.  Summed over a method's matched pairs, B regressed when

      sum(min_B) > sum(min_A + spread_A) * (1 + threshold)

  i.e. B's fastest runs are slower than A's slowest by more than the threshold:
  a slowdown that no repeat of A reached.  That is judged only when every pair was
  timed at least twice on both sides (``repeats >= 2``); otherwise the change of
  the mean fastest time is shown as not judged (a single timing has no spread: the
  same code timed once moved by +26..+40 % under load on a shared machine).

A case measured in A that failed in B (``error`` / ``timeout``) is a regression too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..schema import MATCH_FIELDS
from .stats import FAILED, has_metrics

#: deterministic metrics, compared exactly (all lower-is-better)
EXACT = ("n_empty_final", "rounds_total", "inertia", "rel_error", "centroid_index")
#: timings, judged against their measured spread: metric -> its spread column
TIMES = {"seconds_total": "seconds_spread"}
#: metrics compare knows, all lower-is-better
LOWER_IS_BETTER = ("n_empty_final", "rounds_total", "seconds_total", "inertia", "rel_error", "centroid_index")
DEFAULT_METRICS = LOWER_IS_BETTER[:5]
ALL = "(all)"
#: repeats a case needs on both sides for its time to be judged
MIN_REPEATS = 2

Row = dict[str, Any]


@dataclass(frozen=True)
class Change:
    method: str                 # a method label, or "(all)"
    metric: str
    n: int                      # pairs with the metric on both sides
    mean_a: float | None        # timings: the mean fastest time
    mean_b: float | None
    change: float | None        # relative change of the mean, B against A
    regression: bool
    n_changed: int = 0          # exact metrics: pairs whose values differ at all
    judged: bool = True         # timings: every pair timed >= MIN_REPEATS times on both sides
    slowest_a: float | None = None   # timings: mean of A's slowest repeat (min + spread), when judged

    @property
    def exact(self) -> bool:
        return self.metric not in TIMES


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
    return tuple(r.get(f) for f in MATCH_FIELDS)


def match(rows_a: Sequence[Row], rows_b: Sequence[Row]) -> tuple[list[tuple[Row, Row]], int, int, int]:
    """(pairs, matched by id, only in A, only in B): by case_id first, then by unique MATCH_FIELDS."""
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


def _timed(row: Row, spread: str) -> bool:
    return (row.get("repeats") or 1) >= MIN_REPEATS and row.get(spread) is not None


def _change(method: str, metric: str, pairs: Sequence[tuple[Row, Row]], threshold: float) -> Change:
    both = [(a, b) for a, b in pairs if a.get(metric) is not None and b.get(metric) is not None]
    if not both:
        return Change(method, metric, 0, None, None, None, False)
    vals = [(float(a[metric]), float(b[metric])) for a, b in both]
    ma = sum(v for v, _ in vals) / len(vals)
    mb = sum(v for _, v in vals) / len(vals)
    rel = relative_change(ma, mb)
    if metric not in TIMES:
        n_changed = sum(va != vb and not (math.isnan(va) and math.isnan(vb)) for va, vb in vals)
        return Change(method, metric, len(vals), ma, mb, rel, rel > threshold, n_changed=n_changed)
    spread = TIMES[metric]
    if not all(_timed(a, spread) and _timed(b, spread) for a, b in both):
        return Change(method, metric, len(vals), ma, mb, rel, False, judged=False)
    slowest_a = sum(float(a[metric]) + float(a[spread]) for a, _ in both) / len(both)
    return Change(method, metric, len(vals), ma, mb, rel, mb > slowest_a * (1 + threshold), slowest_a=slowest_a)


def compare(rows_a: Sequence[Row], rows_b: Sequence[Row], metrics: Sequence[str] = DEFAULT_METRICS,
            threshold: float = 0.1) -> Comparison:
    """Per-method and overall changes of ``metrics`` from store A to store B (rules: module docstring).

    Raises
    ------
    ValueError
        An unknown metric, a negative threshold, or no case of A matching a case of B.
    """
    unknown = [m for m in metrics if m not in LOWER_IS_BETTER]
    if unknown:
        raise ValueError(f"unknown metric '{unknown[0]}' (known: {', '.join(LOWER_IS_BETTER)}).")
    if not threshold >= 0:
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


# ------------------------------------------------------------------------- text

def percent(x: float | None) -> str:
    """A relative change as ``+12.3%`` (``-`` for none, ``+inf`` / ``-inf`` from a zero reference)."""
    if x is None:
        return "-"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return f"{100 * x:+.1f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def _note(c: Change) -> str:
    if c.regression:
        return "REGRESSION"
    if c.exact:
        return f"{c.n_changed} changed" if c.n_changed else "identical"
    if not c.judged:
        return f"not judged (timed once; [suite] repeats >= {MIN_REPEATS} to judge)"
    return f"within spread (A's slowest {_num(c.slowest_a)})"


def report_lines(result: Comparison) -> list[str]:
    """The comparison as the ``compare`` command prints it: one line per method and metric."""
    lines = [f"matched {result.by_id + result.by_key} cases ({result.by_id} by case_id, {result.by_key} by "
             f"{'+'.join(MATCH_FIELDS)}); only in A: {result.only_a}, only in B: {result.only_b}",
             "exact metrics: any difference is counted, a mean change above the threshold is a regression; "
             "seconds_total (mean fastest repeat): a regression only when B's fastest exceeds A's slowest "
             "by the threshold",
             f"{'method':24s} {'metric':16s} {'n':>5s} {'mean A':>12s} {'mean B':>12s} {'change':>9s}  verdict"]
    for c in result.changes:
        lines.append(f"{c.method[:24]:24s} {c.metric:16s} {c.n:5d} {_num(c.mean_a):>12s} {_num(c.mean_b):>12s} "
                     f"{percent(c.change):>9s}  {_note(c)}")
    for b in result.newly_failed:
        lines.append(f"newly failed in B: {b.get('method')} {b.get('dataset')} seed={b.get('seed')}: "
                     f"{b.get('status')}: {b.get('error') or ''}")
    if result.newly_measured:
        lines.append(f"{result.newly_measured} case(s) failed in A and are measured in B")
    return lines
