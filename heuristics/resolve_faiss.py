"""faiss cluster splitting (``ClusteringHelpers.cpp::detail::split_clusters``).

Runs AFTER the centroid update and uses only cluster sizes (``hassign``) and
centroids, never the points.  For each empty cluster ci in ascending order, scan
donors cj = 0, 1, 2, ... (mod k) drawing r ~ U[0,1) at each visit, and accept cj
when r < (hassign[cj] - 1) / (n - k); after ``max_visits`` visits (faiss >= 1.14.2
uses 10 k; 0 means 10 k) take the largest cluster instead.  Then
centroid[ci] = centroid[cj], and per dimension j: even j -> ci *= (1 + eps),
cj *= (1 - eps); odd j -> ci *= (1 - eps), cj *= (1 + eps), with eps = 1/1024;
hassign[ci] = hassign[cj] / 2 and hassign[cj] -= hassign[ci].  Points are not
reassigned: the next assignment step decides who moves, so ``n_left`` counts the
empty clusters whose split left their centroid where it was (a donor coordinate
of 0 stays 0 under the factor 1 +- eps, so a donor at the origin yields a copy of
itself), 0 otherwise, and the engine's next ``n_empty_assigned`` is the real
measure.  As in faiss the generator is re-seeded with ``split_seed`` (1234) at
every call, so donor choice depends only on the sizes.  ``n`` is the number of
points and sizes are weight masses, as in faiss's weighted ``compute_centroids``.
"""

import numpy as np
import torch

from pgbench.params import Int, Real
from pgbench.registry import register
from pgbench.state import ResolveOutcome
from pgbench.testing import expected_failures

_BLOCK = 4096  # uniform draws per vectorised scan block (one draw per visit, in order)


@expected_failures(weights_as_duplicates=(
    "random donors, as faiss's weighted k-means (tests/test_differential.py runs it): the acceptance "
    "probability (size - 1) / (n - k) mixes weight mass with the point count n; "
    "tests/test_weights_property.py tests the property with a forced donor"))
@register("resolve", "faiss", params=[
    Real("eps", 1.0 / 1024, low=0, high=1, closed="left",
         help="relative split perturbation, coordinates scaled by 1 +- eps (below 1: signs kept)"),
    Int("split_seed", 1234, low=0, help="seed of the donor draws, reset at every call as in faiss"),
    Int("max_visits", 0, low=0, high=2**31 - 1, help="donor visits before taking the largest; 0: 10 k"),
], when="after_update",
   summary="split a donor chosen with probability (size-1)/(n-k), copy with 1+-1/1024 (faiss)")
def resolve_faiss(state, rng, *, eps, split_seed, max_visits):
    k, n = state.k, state.n
    hassign = state.sizes.detach().cpu().double().numpy().copy()          # (k,)
    empty = np.flatnonzero(hassign == 0)
    if empty.size == 0:
        return ResolveOutcome()
    limit = max_visits if max_visits > 0 else 10 * k
    gen = torch.Generator().manual_seed(split_seed)
    C = state.centroids.detach().cpu().double().numpy().copy()           # (k, d)
    d = C.shape[1]
    sign = np.where(np.arange(d) % 2 == 0, 1.0, -1.0)                    # +1 even, -1 odd
    denom = float(n - k) if n > k else 0.0
    fallbacks = 0
    for ci in empty:
        visits, cj, chosen = 0, 0, None
        while chosen is None and visits < limit:
            m = min(_BLOCK, limit - visits)
            draws = torch.rand(m, generator=gen, dtype=torch.float64).numpy()
            cand = (cj + np.arange(m)) % k
            p = (hassign[cand] - 1.0) / denom if denom > 0 else np.zeros(m)
            hit = np.flatnonzero(draws < p)
            if hit.size:
                chosen = int(cand[hit[0]])
            visits += m
            cj = (cj + m) % k
        if chosen is None:
            chosen = int(np.argmax(hassign))
            fallbacks += 1
        C[ci] = C[chosen] * (1.0 + sign * eps)
        C[chosen] = C[chosen] * (1.0 - sign * eps)
        hassign[ci] = hassign[chosen] / 2
        hassign[chosen] -= hassign[ci]
    targets = torch.from_numpy(empty).to(state.centroids.device)
    stale = state.centroids[targets].clone()                              # (n_empty, d)
    state.centroids.copy_(torch.from_numpy(C).to(state.centroids.device, state.centroids.dtype))
    n_left = int((state.centroids[targets] == stale).all(1).sum())
    return ResolveOutcome(int(empty.size), int(empty.size) - n_left, n_left, rounds=1,
                          gave_up=n_left > 0, info={"n_split": int(empty.size), "n_fallback_largest": fallbacks})
