"""Partitioning-Guided Pre-assignment (PG k-means paper, section 4.1, Algorithm 1).

Recursively bisects all points with spheres centred on each node's farthest point,
targeting node sizes that are multiples of the average cluster size S = n / k
(weight mass / k with weights), until k leaves exist; each leaf's mean is an
initial centroid.  On distinct points every leaf is non-empty and the first
assignment leaves no empty cluster (up to boundary effects between leaves).

Choice where the pseudocode is silent: rounding can leave fewer than k leaves
(leaves may hold up to S + 1 points).  The remaining slots are filled by bisecting
the largest leaf in half with the same spherical split, repeatedly, so the init
always returns k centroids from k disjoint non-empty groups; ``info`` reports
how many such extra splits were needed (``n_extra_splits``).  If a leaf of one
point must be split (k > distinct groups), the slot duplicates a centroid and is
counted in ``n_unfilled``.
"""

import torch

from pgbench.heuristics._partitioning import _bisect, centroid_partitioning
from pgbench.registry import register
from pgbench.state import InitOutcome, weighted_mean
from pgbench.testing import expected_failures


@expected_failures(weights_as_duplicates=(
    "the partition cuts at mass quantiles: copies of one point can fall into two leaves, a "
    "weighted point cannot be split"))
@register("init", "pg", summary="partitioning-guided pre-assignment (PG k-means Algorithm 1)")
def init_pg(X, weights, k, rng):
    n = X.shape[0]
    target = float(weights.sum()) / k
    everything = torch.arange(n, device=X.device)
    leaves, _ = centroid_partitioning(X, weights, everything, target, k, reserve_last=False)
    n_tree_leaves = len(leaves)
    extra = unfilled = 0
    while len(leaves) < k:
        sizes = torch.tensor([float(weights[leaf].sum()) if leaf.numel() > 1 else -1.0 for leaf in leaves])
        big = int(sizes.argmax())
        if sizes[big] < 0:          # only single points left: cannot create more groups
            leaves.append(leaves[0])
            unfilled += 1
            continue
        inner, outer = _bisect(X, weights, leaves[big], float(weights[leaves[big]].sum()) / 2)
        leaves[big] = inner
        leaves.append(outer)
        extra += 1
    centroids = torch.stack([weighted_mean(X, weights, leaf) for leaf in leaves])   # (k, d)
    return InitOutcome(centroids, {"n_tree_leaves": n_tree_leaves, "n_extra_splits": extra,
                                   "n_unfilled": unfilled})
