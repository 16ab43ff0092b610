"""The small data sets the battery runs every heuristic on, and resolver states with empty clusters.

Every set is built from its own seeded generator (never a global one), is tiny
(at most 25 points; 60 for the duplicated twin of ``weighted``) so a whole
battery runs in seconds, and most are degenerate on purpose: the cases where a
heuristic divides by zero, loops forever or reports counts it did not do.

========================  ===========================================================
name                      what it tests
========================  ===========================================================
``blobs``                 the ordinary case: 24 points in 3 tight blobs, k = 4
``weighted``              ``blobs`` with integer weights 1..4
``identical``             10 copies of one point, k = 3 (every distance is 0)
``few_distinct``          3 distinct points 4 times each, k = 5 (fewer distinct points than k)
``k_equals_n``            6 distinct points, k = 6
``one_point``             n = k = 1
``far_outlier``           ``blobs`` plus one point at 1e6
``huge``                  ``blobs`` scaled to norms near 1e18: the largest float32 data the
                          engine admits, with a margin of 4 (4 R^2 n = float32 max / 4)
``tiny``                  ``blobs`` scaled to norms near 2e-19: the smallest it admits
                          (R^2 = 4 x the smallest normal float32); squared distances
                          between points are subnormal or round to 0
========================  ===========================================================

The float32 extremes are the engine's own bounds (:func:`pgbench.validation.check_scale`):
data beyond them (1e19, 1e-30) is refused before any heuristic runs, so a heuristic
may assume it never sees it, and the battery does not feed it any.

A resolver is never called on bare data: :func:`resolver_state` builds a real
:class:`~pgbench.state.KMeansState` whose centroids repeat (fairseq's init does
the same), so the higher copies start empty, and brings it to one of the two
hook points of the engine (``before_update``: right after the assignment;
``after_update``: after the centroid update too, empty clusters keeping their
stale centroid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import backends, synthetic
from ..engine import _update
from ..registry import RESOLVE_TIMINGS
from ..state import KMeansState

F32 = torch.finfo(torch.float32)

__all__ = ["DataCase", "CASES", "case", "duplicated", "start_centroids", "resolver_state", "RESOLVE_TIMINGS"]


@dataclass(frozen=True)
class DataCase:
    """One named data set: points ``X`` (n, d) float32, ``weights`` (n,) and the number of clusters ``k``."""

    name: str
    X: torch.Tensor
    weights: torch.Tensor
    k: int

    def to(self, device: str) -> "DataCase":
        """A copy on ``device`` (always a copy: a heuristic that edits its input must not edit CASES)."""
        return DataCase(self.name, self.X.to(device, copy=True), self.weights.to(device, copy=True), self.k)


def _blobs() -> torch.Tensor:
    """24 points, d = 3, in 3 blobs of 8 (spread 10, std 0.3): shape (24, 3)."""
    return synthetic.gaussian_mixture(24, 3, 3, spread=10.0, std=0.3, seed=14)


def _ones(X: torch.Tensor) -> torch.Tensor:
    return torch.ones(X.shape[0], dtype=X.dtype)


def _to_norm(X: torch.Tensor, r: float) -> torch.Tensor:
    """``X`` (n, d) scaled (in float64) so that its largest point norm is ``r``."""
    X64 = X.double()
    return X64 * (r / float(torch.linalg.vector_norm(X64, dim=1).max()))


def _build() -> dict[str, DataCase]:
    g = torch.Generator().manual_seed(1414)
    blobs = _blobs()
    weights = (torch.arange(blobs.shape[0]) % 4 + 1).float()                 # 1, 2, 3, 4, 1, ...
    distinct3 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    six = torch.rand(6, 2, generator=g) * 4
    outlier = torch.cat([blobs, torch.full((1, 3), 1e6)])
    sets = [
        ("blobs", blobs, _ones(blobs), 4),
        ("weighted", blobs, weights, 4),
        ("identical", torch.tensor([[0.5, -1.25]]).repeat(10, 1), torch.ones(10), 3),
        ("few_distinct", distinct3.repeat(4, 1), torch.ones(12), 5),
        ("k_equals_n", six, torch.ones(6), 6),
        ("one_point", torch.tensor([[3.0, -1.0, 2.0]]), torch.ones(1), 1),
        ("far_outlier", outlier, _ones(outlier), 4),
        ("huge", _to_norm(blobs, math.sqrt(F32.max / (4 * blobs.shape[0])) / 2), _ones(blobs), 4),
        ("tiny", _to_norm(blobs, 2 * math.sqrt(F32.tiny)), _ones(blobs), 4),
    ]
    return {name: DataCase(name, X.float().contiguous(), w.float(), k) for name, X, w, k in sets}


#: every data set, by name (built once at import: a few hundred floats)
CASES: dict[str, DataCase] = _build()


def case(name: str) -> DataCase:
    return CASES[name]


def duplicated(data: DataCase) -> DataCase:
    """``data`` with every point repeated (weight) times, in place, and unit weights.

    The weights must be integers; the copies of a point are adjacent, so a
    heuristic that breaks ties by point order sees the same order.
    """
    reps = data.weights.round().long()
    X = data.X.repeat_interleave(reps.to(data.X.device), dim=0)
    return DataCase(data.name + "_duplicated", X, torch.ones(X.shape[0], dtype=data.X.dtype,
                                                             device=data.X.device), data.k)


def start_centroids(data: DataCase) -> torch.Tensor:
    """k centroids (k, d) on points of ``data`` where the second half repeats the first.

    With h = ceil(k / 2) distinct picks (spread over the data), centroid j copies
    centroid j mod h, so clusters h..k-1 tie with a lower index and start empty.
    """
    n, k = data.X.shape[0], data.k
    h = max(1, (k + 1) // 2)
    picks = torch.linspace(0, n - 1, h).round().long()                       # (h,)
    return data.X[picks.to(data.X.device)[torch.arange(k, device=data.X.device) % h]].clone()


def resolver_state(data: DataCase, timing: str, centroids: torch.Tensor | None = None) -> KMeansState:
    """A fresh state on ``data`` at the engine's ``timing`` hook point, with empty clusters.

    ``centroids`` (k, d) replaces the repeated start centroids (the weights check
    gives a weighted set and its duplicated twin the same start).  Uses the torch
    assignment (exact, ties to the lower index) on the data's device.
    """
    if timing not in RESOLVE_TIMINGS:
        raise ValueError(f"unknown resolve timing '{timing}' (known: {', '.join(RESOLVE_TIMINGS)}).")
    start = start_centroids(data) if centroids is None else centroids.clone()
    state = KMeansState(data.X, data.weights, start, backends.make_assign("torch", data.X))
    state.reassign()
    if timing == "after_update":
        _update(state)
    return state
