"""Partitioning-Guided Cluster Fine-tuning (PG k-means paper, section 4.2, Algorithm 2).

One pass, repeated while empty clusters remain (at most ``max_passes``, 15 as in
the paper, with the early stop of line 4):

1. E = empty clusters; L = "large" clusters, size > S_c, in decreasing size.
   S_c = ``large_factor`` * (total mass / k), the layer-wide average cluster size.
2. The slots to fill are E plus L (each large cluster keeps its own index for its
   first sub-cluster); n_w = mass of L; S_avg = max(n_w / (|E| + |L|), 1).
3. Each large cluster, largest first, is split with CENTROIDPARTITIONING
   (Algorithm 1) using the scaling target of Eq. 1,
   S_scl = max(sqrt(n_lc) * sqrt(S_avg), S_avg); its first leaf keeps its index,
   further leaves take empty indices in ascending order.  The last empty index is
   reserved (B_rl = True): when the free indices run out, the points not yet given
   a leaf ("rest") get one centroid c_last = their mean in that reserved slot; if
   there is no rest, the reserved slot is left for the next pass.
4. A full re-assignment recomputes E.

Early stop (line 4, "stops decreasing in a limited number"): the passes end when
the empty count has not reached a new minimum for ``patience`` passes.  Each pass
costs one full assignment, counted as one resolution round.  ``gave_up`` is set
when empty clusters remain at the end.

Work (what the engine records as ``resolve_distance_evals`` and
``resolve_assign_passes``): the partition trees compute two distances per point
of every node they split (to the node's centroid and to its farthest point),
reported through ``state.count_distances``; line 4's re-assignment is a full
assignment of all n points against all k centroids (n * k evaluations, one
assignment pass), which ``state.reassign`` counts itself.  The paper does not
say whether that re-assignment is full or limited to the split clusters' points;
a full one is what the pseudocode's "updating the assignment" reads as, and it is
what finds clusters that a split emptied elsewhere.

Weights: sizes are weight masses and the trees never separate copies of a point,
so a point of integer weight w is handled exactly as w copies of it.
"""

import math

import torch

from pgbench.heuristics._partitioning import centroid_partitioning
from pgbench.params import Int, Real
from pgbench.registry import register
from pgbench.state import ResolveOutcome, weighted_mean


def _one_pass(state, large_factor: float) -> dict:
    """Split the large clusters into the empty slots; returns counts of what it did."""
    X, w, k = state.X, state.weights, state.k
    free = state.empty_ids().tolist()
    sizes = state.sizes
    s_c = large_factor * float(sizes.sum()) / k
    order = torch.argsort(sizes, descending=True, stable=True)
    large = [int(c) for c in order if float(sizes[c]) > s_c]
    if not large or not free:
        return {"n_large": len(large), "n_new_leaves": 0, "rest": 0}
    n_w = float(sizes[large].sum())
    s_avg = max(n_w / (len(free) + len(large)), 1.0)
    reserved = free.pop()              # B_rl: the last slot is kept for c_last
    rest = []
    new_leaves = 0
    for c in large:
        members = torch.nonzero(state.labels == c).flatten()
        n_lc = float(w[members].sum())
        s_scl = max(math.sqrt(n_lc) * math.sqrt(s_avg), s_avg)
        leaves, left, evals = centroid_partitioning(X, w, members, s_scl, 1 + len(free), reserve_last=False)
        state.count_distances(evals)
        state.centroids[c] = weighted_mean(X, w, leaves[0])
        for leaf in leaves[1:]:
            state.centroids[free.pop(0)] = weighted_mean(X, w, leaf)
            new_leaves += 1
        if left.numel():
            rest.append(left)
        if not free:
            break
    if rest:
        pooled = torch.cat(rest)
        state.centroids[reserved] = weighted_mean(X, w, pooled)
        new_leaves += 1
    return {"n_large": len(large), "n_new_leaves": new_leaves, "rest": int(sum(r.numel() for r in rest))}


@register("resolve", "pg", params=[
    Int("max_passes", 15, low=0, help="passes of Algorithm 2 per iteration (15 in the paper)"),
    Int("patience", 3, low=1, help="passes without a new minimum of empty clusters before stopping"),
    Real("large_factor", 1.0, low=0, closed="neither", help="S_c as a multiple of the average cluster size"),
], summary="partitioning-guided cluster fine-tuning (PG k-means Algorithm 2, Eq. 1)")
def resolve_pg(state, rng, *, max_passes, patience, large_factor):
    found = state.empty_ids()
    n_found = int(found.numel())
    best, since_best, passes = n_found, 0, 0
    n_new = 0
    while state.n_empty > 0 and passes < max_passes and since_best < patience:
        did = _one_pass(state, large_factor)
        n_new += did["n_new_leaves"]
        if did["n_new_leaves"] == 0:
            break
        state.reassign()
        passes += 1
        if state.n_empty < best:
            best, since_best = state.n_empty, 0
        else:
            since_best += 1
    n_left = state.n_empty
    n_resolved = int((state.counts[found] > 0).sum())     # a split can empty another cluster
    return ResolveOutcome(n_found, n_resolved, n_left, rounds=passes, gave_up=n_left > 0,
                          info={"n_new_leaves": n_new, "early_stop": since_best >= patience})
