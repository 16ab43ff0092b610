"""The instrumented outcome of one k-means run."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

import torch


class Status(enum.StrEnum):
    """Every status a run or a stored case can have: the one declaration (the runner, the store and the
    report derive theirs from it; members compare equal to their plain strings).

    Each member is ``NAME = "value", measured``; ``measured`` is False for a status whose row holds no
    result to measure (the report counts those as failed).  Adding a status is one line here.
    """

    def __new__(cls, value: str, measured: bool) -> "Status":
        member = str.__new__(cls, value)
        member._value_ = value
        member.measured = measured
        return member

    OK = "ok", True                    # every cluster non-empty at the end
    UNRESOLVED = "unresolved", True    # empty clusters remain, or the resolver gave up in the last iteration
    STOPPED = "stopped", True          # the resolver stopped the iterations (fairseq's EmptyClusterResolveError)
    DIVERGED = "diverged", True        # centroids or distances overflowed the dtype; last finite state kept
    ERROR = "error", False             # the case raised, or its worker died (runner)
    TIMEOUT = "timeout", False         # the case outlived its timeout (runner)


@dataclass
class IterationStats:
    """One Lloyd iteration, as measured by the engine.

    n_empty_assigned : empty clusters right after the assignment step
    n_empty_resolved : empty clusters after the resolver (its own bookkeeping for
        resolvers that do not re-assign: sklearn, faiss)
    n_resolved : clusters the resolver fixed; rounds : its resolution rounds
    gave_up : the resolver hit its bound; seconds_* : wall time per phase
    inertia : sum of weighted squared distances at the assignment step
    resolve_distance_evals : distance evaluations the resolver performed beyond
        the iteration's assignment step (measured by the engine from
        ``KMeansState.n_distance_evals``: n * k per full re-assignment, plus what
        the resolver counted itself; 0 for a resolver that reuses the
        assignment's distances)
    resolve_assign_passes : full assignment passes the resolver ran
        (``state.reassign()`` calls)
    """

    iteration: int
    n_empty_assigned: int
    n_empty_resolved: int
    n_resolved: int
    rounds: int
    gave_up: bool
    seconds_assign: float
    seconds_resolve: float
    seconds_update: float
    inertia: float
    resolve_distance_evals: int = 0
    resolve_assign_passes: int = 0


@dataclass
class KMeansResult:
    """Centroids, assignments and a per-iteration trace of one k-means run.

    centroids : Tensor (k, d); labels : Tensor (n,) int64, the final assignment of
    the original points; trace : list of IterationStats; n_empty_final : empty
    clusters after a last assignment step with the final centroids (for fairseq's
    stop this is the assignment fairseq returns); inertia : final sum of weighted
    squared distances; status : a :class:`Status`: ``ok``, ``unresolved`` (empty clusters remain at
    the end, or the resolver gave up in the last iteration) or ``stopped`` (the
    resolver stopped the iterations, as fairseq does on EmptyClusterResolveError)
    or ``diverged`` (centroids or distances overflowed the dtype, see
    :mod:`pgbench.engine`; the run ended with the last centroids an assignment
    succeeded with, so centroids, labels and inertia are still finite).
    n_empty_last_assignment : empty clusters after the last assignment made
        inside the loop (the iteration's own, or the resolver's last
        re-assignment): the assignment fairseq's ``PQ.encode`` returns, where
        ``n_empty_final`` counts one more assignment after the last update;
        None when no iteration ran.
    n_train : points k-means iterated on (after consolidation and the
        ``max_points_per_centroid`` subsample); labels and inertia always cover
        every original point.
    n_consolidated_points, n_groups : original points a consolidation merged
        into groups of two or more, and the number of such groups (recounted by
        the engine from the consolidation's ``members``; 0 without one).
    """

    centroids: torch.Tensor
    labels: torch.Tensor
    trace: list[IterationStats]
    n_empty_final: int
    inertia: float
    status: str
    message: str
    n_iter: int
    k: int
    init: str
    resolve: str
    consolidate: str | None
    params: dict[str, dict[str, Any]]
    seed: int
    device: str
    backend: str
    seconds_consolidate: float = 0.0
    seconds_init: float = 0.0
    seconds_total: float = 0.0
    init_info: dict[str, Any] = field(default_factory=dict)
    consolidate_info: dict[str, Any] = field(default_factory=dict)
    n_empty_last_assignment: int | None = None
    n_train: int | None = None
    n_consolidated_points: int = 0
    n_groups: int = 0

    @property
    def resolve_distance_evals(self) -> int:
        """Distance evaluations of the resolver, summed over the iterations run."""
        return sum(s.resolve_distance_evals for s in self.trace)

    @property
    def resolve_assign_passes(self) -> int:
        """Full assignment passes of the resolver, summed over the iterations run."""
        return sum(s.resolve_assign_passes for s in self.trace)

    @property
    def n_empty_initial(self) -> int:
        """Empty clusters at the first assignment (what the init left)."""
        return self.trace[0].n_empty_assigned if self.trace else self.n_empty_final

    @property
    def rounds_total(self) -> int:
        return sum(s.rounds for s in self.trace)

    @property
    def cluster_sizes(self) -> torch.Tensor:
        """Points per cluster in the final assignment, shape (k,)."""
        return torch.bincount(self.labels, minlength=self.k)

    def summary(self) -> dict[str, Any]:
        """A flat, JSON-able dict of the scalar outcomes (no tensors)."""
        return {
            "init": self.init, "resolve": self.resolve, "consolidate": self.consolidate,
            "status": self.status, "n_iter": self.n_iter, "k": self.k,
            "n_empty_initial": self.n_empty_initial, "n_empty_final": self.n_empty_final,
            "rounds_total": self.rounds_total, "resolve_distance_evals": self.resolve_distance_evals,
            "resolve_assign_passes": self.resolve_assign_passes, "inertia": self.inertia,
            "seconds_total": self.seconds_total, "device": self.device, "backend": self.backend,
        }

    def trace_dicts(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.trace]
