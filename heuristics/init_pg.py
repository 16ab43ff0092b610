"""Partitioning-Guided Pre-assignment (PG k-means paper, section 4.1, Algorithm 1).

Recursively bisects all points with spheres centred on each node's farthest
point, targeting node masses that are multiples of the average cluster mass
S = (total weight) / k, until there are k leaves; each leaf's weighted mean is an
initial centroid.  The tree is cut on weight masses with a leaf budget per node
(:func:`~pgbench.heuristics._partitioning.partition_into`), so it always ends
with exactly k disjoint, non-empty leaves that together hold every point: no
point and no mass is ever left without a centroid, weighted or not.  A point of
integer weight w is treated exactly as w copies of it (copies are never
separated), which the ``weights_as_duplicates`` check tests.

What it guarantees, and what it does not.  The paper says the pre-assignment
"guarantees zero empty clusters for the initial state".  What holds is weaker:

* every initial centroid is the mean of a non-empty group of points, and the k
  groups partition the data (``info``: ``mass_uncovered`` 0, ``n_points_uncovered`` 0);
* the k centroids are distinct whenever the data has at least k distinct points
  and no node had to be cut between copies (``n_unfilled`` counts centroids that
  repeat an earlier one: k - distinct rows);
* the first assignment can still leave clusters empty: a point goes to its
  nearest centroid, which need not be its own leaf's mean, and a small leaf
  lying in the shadow of its neighbours loses all its points.  On the
  heavy-tailed layer sub-vectors of :func:`pgbench.synthetic.layer_subvectors`
  this is rare at d = 4 and grows with the dimension and with fewer points per
  cluster (tests/test_pg.py pins the counts at d = 4, 8 and 16; measured at
  k = 3072 with 12 points per cluster in d = 16: about 20 empty clusters).

``info``: ``n_leaves`` (always k), ``n_unfilled``, ``n_tie_splits`` (nodes cut
between equally distant points because they had fewer distinct distances than
leaves to give), ``mass_uncovered`` and ``n_points_uncovered`` (recounted from
the leaves, both 0 by construction).
"""

import torch

from pgbench.heuristics._partitioning import partition_into
from pgbench.registry import register
from pgbench.state import InitOutcome, weighted_mean


@register("init", "pg", summary="partitioning-guided pre-assignment (PG k-means Algorithm 1)")
def init_pg(X, weights, k, rng):
    n = X.shape[0]
    leaves, tie_splits = partition_into(X, weights, torch.arange(n, device=X.device), k)
    covered = torch.zeros(n, dtype=torch.bool, device=X.device)
    for leaf in leaves:
        covered[leaf] = True
    centroids = torch.stack([weighted_mean(X, weights, leaf) for leaf in leaves])   # (k, d)
    distinct = int(torch.unique(centroids, dim=0).shape[0])
    return InitOutcome(centroids, {
        "n_leaves": len(leaves), "n_unfilled": k - distinct, "n_tie_splits": tie_splits,
        "mass_uncovered": float(weights[~covered].double().sum()), "n_points_uncovered": int((~covered).sum())})
