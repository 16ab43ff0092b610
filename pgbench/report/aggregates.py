"""Aggregates across blocks with paired bootstrap intervals, and the quality-vs-cost Pareto front.

Ratios (inertia relative to the best, run time relative to the baseline) are
aggregated by their geometric mean (and median); counts (empty clusters,
rounds) by their mean.  The 95% intervals come from a paired bootstrap over
blocks (data set x seed, :mod:`pgbench.report.evidence`): each resample draws
blocks with replacement, the same draws for every method and metric, and the
interval is the 2.5 and 97.5 percentiles of the statistic over the resamples.
A count's resampled means are means of non-negative numbers, so its interval
never goes below 0; with a single block there is no interval.

Randomness only through the :class:`numpy.random.Generator` passed in.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .evidence import METRICS, Blocks

N_RESAMPLES = 2000
CONFIDENCE = 0.95
STATISTICS = {"count": ("mean",), "ratio": ("geometric_mean", "median"), "time": ("geometric_mean", "median")}


@dataclass(frozen=True)
class Aggregate:
    method: str
    metric: str
    statistic: str            # "mean", "geometric_mean" or "median"
    value: float | None
    low: float | None         # None: fewer than 2 blocks
    high: float | None
    n_blocks: int             # blocks with a finite value
    n_infinite: int = 0       # blocks left out because the ratio is infinite (the best was 0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _statistic(values: np.ndarray, statistic: str) -> np.ndarray:
    """The statistic along the last axis, NaN (a block the method did not run) ignored."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN resamples give NaN, dropped by the caller
        if statistic == "mean":
            return np.nanmean(values, axis=-1)
        if statistic == "median":
            return np.nanmedian(values, axis=-1)
        if statistic == "geometric_mean":
            return np.exp(np.nanmean(np.log(values), axis=-1))
    raise ValueError(f"unknown statistic {statistic!r}")


def resample_indices(n_blocks: int, rng: np.random.Generator, n_resamples: int = N_RESAMPLES) -> np.ndarray:
    """Block indices of each bootstrap resample, shape (n_resamples, n_blocks)."""
    return rng.integers(0, n_blocks, size=(n_resamples, n_blocks))


def aggregate(values: list[float | None], statistic: str, draws: np.ndarray | None,
              method: str = "", metric: str = "", lower_bound: float | None = None) -> Aggregate:
    """``statistic`` of one method's per-block ``values`` (None: block not run) with its bootstrap interval.

    ``draws`` are the resampled block indices (:func:`resample_indices`, shared by
    every method for a paired bootstrap), or None for no interval.  Infinite
    values are left out and counted; ``lower_bound`` clips the interval (0 for
    counts, which their means never cross anyway).
    """
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    infinite = int(np.isinf(arr).sum())
    arr[np.isinf(arr)] = np.nan
    finite = int(np.isfinite(arr).sum())
    if finite == 0:
        return Aggregate(method, metric, statistic, None, None, None, 0, infinite)
    value = float(_statistic(arr, statistic))
    low = high = None
    if draws is not None and finite > 1:
        boot = _statistic(arr[draws], statistic)
        boot = boot[np.isfinite(boot)]
        if boot.size:
            tail = 100 * (1 - CONFIDENCE) / 2
            low, high = (float(x) for x in np.percentile(boot, [tail, 100 - tail]))
            if lower_bound is not None:
                low, high = max(low, lower_bound), max(high, lower_bound)
    return Aggregate(method, metric, statistic, value, low, high, finite, infinite)


def aggregates(data: Blocks, rng: np.random.Generator, n_resamples: int = N_RESAMPLES) -> list[Aggregate]:
    """Every method's aggregate of every metric of :data:`~pgbench.report.evidence.METRICS`.

    One resampling of the blocks serves every method and metric (paired).
    """
    n = len(data.blocks)
    draws = resample_indices(n, rng, n_resamples) if n > 1 else None
    out = []
    for metric, md in METRICS.items():
        per_method = data.values.get(metric, {})
        for method in data.methods:
            if method not in per_method:
                continue
            vals = [per_method[method].get(b) for b in data.blocks]
            for statistic in STATISTICS[md.kind]:
                out.append(aggregate(vals, statistic, draws, method, metric,
                                     lower_bound=0.0 if md.kind == "count" else None))
    return out


def find(aggs: list[Aggregate], method: str, metric: str, statistic: str | None = None) -> Aggregate | None:
    """The aggregate of (method, metric) with ``statistic`` (default: the metric's first)."""
    statistic = statistic or STATISTICS[METRICS[metric].kind][0]
    return next((a for a in aggs if a.method == method and a.metric == metric and a.statistic == statistic), None)


# ----------------------------------------------------------------- Pareto front

def pareto_front(points: dict[str, tuple[float | None, float | None]]) -> set[str]:
    """The methods no other method dominates, both coordinates lower-is-better.

    ``points``: method -> (cost, quality).  A method is dominated when another is no
    worse on both and better on one; methods with a missing or NaN coordinate are
    not on the front.
    """
    ok = {m: p for m, p in points.items() if None not in p and not any(math.isnan(v) for v in p)}

    def dominated(m: str) -> bool:
        x, y = ok[m]
        return any(ox <= x and oy <= y and (ox < x or oy < y) for o, (ox, oy) in ok.items() if o != m)

    return {m for m in ok if not dominated(m)}


def pareto_table(aggs: list[Aggregate], methods: list[str], primary: str) -> list[dict[str, Any]]:
    """One dict per method: the primary metric and run time (geometric means), mean empties, ``on_front``.

    The front is taken over (time_ratio, primary); empty clusters are a column of
    their own, not folded into either coordinate.  Sorted by run time.
    """
    rows = []
    for m in methods:
        q, t, e = find(aggs, m, primary), find(aggs, m, "time_ratio"), find(aggs, m, "n_empty_final")
        rows.append({"method": m, "primary": q, "time": t, "empties": e})
    front = pareto_front({r["method"]: (r["time"].value if r["time"] else None,
                                        r["primary"].value if r["primary"] else None) for r in rows})
    for r in rows:
        r["on_front"] = r["method"] in front
    rows.sort(key=lambda r: (r["time"].value if r["time"] and r["time"].value is not None else math.inf, r["method"]))
    return rows
