"""The two costly steps of a Lloyd iteration, timed alone: assignment and empty-cluster resolution."""

from __future__ import annotations

import torch

from pgbench import backends, registry
from pgbench.state import KMeansState

from . import common


def _centroids_with_empties(X: torch.Tensor, k: int, n_copies: int) -> torch.Tensor:
    """k distinct data points as centroids (k, d), the last ``n_copies`` copies of the first ones.

    Ties go to the lowest centroid index in every assignment backend, so the copies
    start empty: every resolver sees ``n_copies`` empty clusters (more on data with
    duplicate points).
    """
    g = torch.Generator().manual_seed(common.SEED)
    C = X[torch.randperm(X.shape[0], generator=g)[:k]].clone()    # (k, d)
    C[k - n_copies:] = C[:n_copies]
    return C


class Assign:
    """``time_assign``: one full nearest-centroid assignment (n points, k centroids)."""

    params = (list(common.DATASETS), list(backends.BACKENDS))
    param_names = ["dataset", "backend"]

    def setup(self, dataset, backend):
        X, k = common.dataset(dataset)
        if backend == "faiss" and backends.faiss_module() is None:
            raise NotImplementedError("faiss is not installed")
        self.X = X
        self.C = _centroids_with_empties(X, k, 0)
        self.assign = backends.make_assign(backend, X)

    def time_assign(self, dataset, backend):
        self.assign(self.X, self.C)


class Resolve:
    """``time_resolve``: one call of a resolver on a state with k/8 empty clusters.

    The state (default backend, one assignment done) is rebuilt in ``setup``
    before every timed call, because resolvers move centroids and relabel points.
    """

    params = (list(common.DATASETS), common.first_party("resolve"))
    param_names = ["dataset", "resolve"]
    number = 1
    warmup_time = 0.0

    def setup(self, dataset, resolve):
        if resolve not in registry.names("resolve"):
            raise NotImplementedError(f"resolve heuristic '{resolve}' is not registered in this version")
        X, k = common.dataset(dataset)
        self.heuristic = registry.get("resolve", resolve)
        self.bound = self.heuristic.bind({})
        C = _centroids_with_empties(X, k, k // 8)
        backend = backends.default_backend(X.device, X.dtype)
        weights = torch.ones(X.shape[0], dtype=X.dtype)
        self.state = KMeansState(X, weights, C, backends.make_assign(backend, X))
        self.state.reassign()
        self.rng = torch.Generator().manual_seed(common.SEED)

    def time_resolve(self, dataset, resolve):
        self.heuristic.func(self.state, self.rng, **self.bound)
