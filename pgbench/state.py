"""What heuristics see and return: the mutable k-means state and the outcome records.

Everything here is public API for heuristic authors (``from pgbench import
KMeansState, InitOutcome, ResolveOutcome, Consolidation``); a plugin never needs
a private module.  The engine owns one :class:`KMeansState` per run and hands it
to the ``resolve`` hook.  A resolver may move centroids (write rows of
``state.centroids`` in place), re-run the assignment (``state.reassign()``) or
relabel points (``state.relabel()``); the engine then performs the centroid
update from ``state.labels``.  Clusters with no points keep their current
centroid through the update, so a resolver that places a centroid on an empty
cluster is never overwritten by a NaN mean.  ``python -m pgbench check`` tests a
resolver against this contract (docs/heuristics.md).

Backstop against overflow: every assignment checks that its labels are real
clusters and its squared distances finite, and raises :class:`NonFiniteError`
otherwise (the engine ends the run with status ``diverged``).  The engine's
boundary check keeps data that could overflow out, so only heuristic parameters
(a huge split noise, say) or a misbehaving plugin can get here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .backends import segment_sums
from .validation import dtype_name

Assign = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


#: below this many points, a float32 sum of ones is exact (2**24), so unit-weight sizes are the counts
_EXACT_COUNT = 2**24


class NonFiniteError(ArithmeticError):
    """Centroids or distances of a run left the finite range of its dtype (the message says which)."""


@dataclass
class KMeansState:
    """The data, current centroids and current assignment of one k-means run.

    A resolver gets it at one of two points of a Lloyd iteration (its registered
    ``when``): ``before_update``, right after the assignment (``labels`` and
    ``sq_dists`` belong to ``centroids``), or ``after_update``, after the centroid
    update too (``centroids`` are the new means, empty clusters keep their old
    centroid; ``labels`` and ``sq_dists`` are still from the assignment).

    Attributes
    ----------
    X : Tensor of shape (n, d), the points (read only: never modify in place)
    weights : Tensor of shape (n,), non-negative point weights (ones when
        unweighted; read only)
    centroids : Tensor of shape (k, d), the current centroids; a resolver moves
        a centroid by writing its row in place (``state.centroids[j] = ...``)
    labels : Tensor of shape (n,), int64 cluster index of every point, in
        [0, k); change it only through :meth:`relabel` or :meth:`reassign`
        (they keep ``counts`` and ``sizes`` in step), or call :meth:`recount`
    sq_dists : Tensor of shape (n,), squared distance of every point to its centroid
        *at assignment time* (a relabel does not change it)
    counts : Tensor of shape (k,), int64 number of points per cluster; a cluster
        is empty when its count is 0
    sizes : Tensor of shape (k,), float weight mass per cluster (equal to counts
        when unweighted); donors are chosen by size
    n_assignments : int, full assignment passes done so far in this run (each
        :meth:`reassign` adds one; report them as ``ResolveOutcome.rounds``)
    n_distance_evals : int, point-to-centroid (or point-to-point) distance
        evaluations so far: each :meth:`reassign` adds n * k; a resolver that
        computes distances of its own adds them with :meth:`count_distances`
        (the engine records a resolver's share as ``resolve_distance_evals``)
    n_empty_at_assignment : int, empty clusters right after the latest
        :meth:`reassign` (a later :meth:`relabel` does not change it)
    unit_weights : bool, every weight is 1 (the update then skips the multiply)
    assign : the backend's ``assign(X, C) -> (labels, sq_dists)``; use
        :meth:`reassign` rather than calling it

    ``k`` and ``n`` are properties; :meth:`empty_ids`, :attr:`n_empty` and
    :meth:`cluster_mean` are the usual questions.  Every tensor is on the run's
    device; draw randomness only from the ``rng`` the resolver is given.
    """

    X: torch.Tensor
    weights: torch.Tensor
    centroids: torch.Tensor
    assign: Assign
    labels: torch.Tensor = field(default=None)  # type: ignore[assignment]
    sq_dists: torch.Tensor = field(default=None)  # type: ignore[assignment]
    counts: torch.Tensor = field(default=None)  # type: ignore[assignment]
    sizes: torch.Tensor = field(default=None)  # type: ignore[assignment]
    n_assignments: int = 0
    n_distance_evals: int = 0
    n_empty_at_assignment: int = 0
    unit_weights: bool = False

    def __post_init__(self) -> None:
        self.unit_weights = bool((self.weights == 1).all())

    @property
    def k(self) -> int:
        return self.centroids.shape[0]

    @property
    def n(self) -> int:
        return self.X.shape[0]

    def reassign(self) -> None:
        """Full assignment step: every point to its nearest centroid (first on ties).

        Updates ``labels``, ``sq_dists``, ``counts``, ``sizes`` and
        ``n_empty_at_assignment``; costs one pass over the data and counts in
        ``n_assignments`` (and n * k in ``n_distance_evals``).  Raises
        :class:`NonFiniteError` when a point gets no finite squared distance (see
        the module docstring).
        """
        labels, sq_dists = self.assign(self.X, self.centroids)
        # one pass each when all is well: a sum of non-negative numbers is finite iff every term is
        # (or it overflowed: then the exact check below decides)
        suspect = bool(labels.min() < 0) if labels.numel() else False
        suspect = suspect or not bool(torch.isfinite(sq_dists.sum()))
        lost = ((labels < 0) | ~torch.isfinite(sq_dists)) if suspect else None
        if lost is not None and bool(lost.any()):
            finite = self.centroids[torch.isfinite(self.centroids).all(1)]
            reach = f"{float(finite.abs().max()):.3g}" if finite.numel() else "none"
            raise NonFiniteError(
                f"the assignment overflowed {dtype_name(self.X.dtype)}: {int(lost.sum())} of "
                f"{self.n} points have no finite squared distance ({self.non_finite_centroids()} of {self.k} "
                f"centroids are non-finite; largest finite centroid coordinate {reach})")
        self.labels, self.sq_dists = labels, sq_dists
        self.n_assignments += 1
        self.n_distance_evals += self.n * self.k
        self.recount()
        self.n_empty_at_assignment = self.n_empty

    def count_distances(self, n_evals: int) -> None:
        """Record ``n_evals`` distance evaluations a resolver computed itself (not by :meth:`reassign`)."""
        self.n_distance_evals += int(n_evals)

    def non_finite_centroids(self) -> int:
        """How many centroids have a NaN or infinite coordinate."""
        return int((~torch.isfinite(self.centroids)).any(1).sum())

    def relabel(self, points: torch.Tensor, clusters: torch.Tensor) -> None:
        """Move ``points`` (m,) to ``clusters`` (m,) without recomputing distances.

        ``points`` are int64 point indices, ``clusters`` int64 cluster indices in
        [0, k); ``counts`` and ``sizes`` are recounted, ``sq_dists`` is left as it was.
        """
        self.labels[points] = clusters
        self.recount()

    def recount(self) -> None:
        """Recompute ``counts`` and ``sizes`` from ``labels``."""
        self.counts = torch.bincount(self.labels, minlength=self.k)
        if self.unit_weights and self.n <= _EXACT_COUNT:     # sums of ones: the counts, exactly
            self.sizes = self.counts.to(self.weights.dtype)
        else:
            self.sizes = segment_sums(self.labels, self.weights[:, None], self.k)[:, 0]

    def empty_ids(self) -> torch.Tensor:
        """Indices (ascending) of the clusters with no point, shape (n_empty,)."""
        return torch.nonzero(self.counts == 0).flatten()

    @property
    def n_empty(self) -> int:
        """Number of clusters with no point."""
        return int((self.counts == 0).sum())

    def cluster_mean(self, members: torch.Tensor) -> torch.Tensor:
        """Weighted mean (d,) of the points ``members`` (m,); the plain mean if their weight is 0."""
        return weighted_mean(self.X, self.weights, members)


def weighted_mean(X: torch.Tensor, w: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Weighted mean (d,) of the points ``idx`` (m,) of ``X`` (n, d); the plain mean if their weight is 0."""
    wi = w[idx]
    total = wi.sum()
    if float(total) > 0:
        return (X[idx] * wi[:, None]).sum(0) / total
    return X[idx].mean(0)


@dataclass
class InitOutcome:
    """What an ``init`` heuristic returns: centroids (k, d) and counts of what it did.

    centroids : Tensor (k, d), same dtype and device as X
    info : plain numbers, strings and booleans under string keys (counts of what it did)
    """

    centroids: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResolveOutcome:
    """What a ``resolve`` heuristic did in one Lloyd iteration.

    n_found : empty clusters it was given
    n_resolved : of those, how many it gave a non-empty cluster (or, for resolvers
        that leave ``labels`` alone, a new centroid position).  A gross count: a
        split that empties another cluster does not lower it, so it is not
        n_found - n_left
    n_left : clusters empty in ``labels`` when it returned; a resolver that leaves
        ``labels`` alone may count instead the empty clusters whose centroid it did
        not move (faiss: the next assignment decides)
    rounds : resolution rounds (full re-assignments, or passes for one-shot resolvers)
    gave_up : it hit its attempt bound with empty clusters left
    stop : stop the Lloyd iterations now, skipping this iteration's update (fairseq)
    info : plain numbers, strings and booleans under string keys

    The counts are non-negative ints; the ``honest_counts`` check of
    ``pgbench.testing`` recounts them from the state.
    """

    n_found: int = 0
    n_resolved: int = 0
    n_left: int = 0
    rounds: int = 0
    gave_up: bool = False
    stop: bool = False
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Consolidation:
    """What a ``consolidate`` heuristic returns.

    X : Tensor (m, d), the consolidated points (one per dense group or independent
        point), k <= m <= n, each inside the bounding box of its members
    weights : Tensor (m,), their weights, as ``weighting`` says
    members : Tensor (n,), int64 index into the m consolidated points for every
        original point; every consolidated point has at least one member
    info : counts (groups found, points merged, epsilon used, ...); the keys
        n_points, n_consolidated, n_dense_groups, n_independent and
        n_points_merged, where given, are recounted from ``members`` by the checks
    weighting : ``"sum"`` (default): each weight is the summed weight of its
        members, so the total mass is kept; ``"single"``: each weight is the mean
        weight of its members, so a group counts as one point (the PG k-means
        paper's DWC).  The honest_counts check recounts the weights this way.
    """

    X: torch.Tensor
    weights: torch.Tensor
    members: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)
    weighting: str = "sum"
