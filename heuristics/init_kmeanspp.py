"""Greedy k-means++ (scikit-learn ``_kmeans_plusplus``), computed exactly but without the work that changes nothing.

The law is scikit-learn's.  First centre drawn proportional to sample weight.
Each next centre: draw ``n_local_trials`` candidates (default 2 + floor(ln k))
independently with probability proportional to w_i * D_i^2 (D = distance to the
nearest chosen centre), and keep the candidate that minimises the new potential
sum_i w_i * min(D_i^2, |x_i - c|^2).

How it is computed (``_greedy_kmeanspp`` has the details):

* Positions.  Points are taken in a fixed k-d order (a permutation of X that
  depends on X only; the original order when d > 4).  All draws are the inverse
  CDF of the cumulative sum of w * D^2 in that order, evaluated in two levels
  (blocks of about 256 points, then inside the block), so each step costs
  O(blocks + block size), not O(n), and the probabilities are exactly
  w_i D_i^2 / sum.  The order changes which point a given uniform maps to, not the
  law.  Uniforms: one float64 ``torch.rand`` stream from ``rng`` (1 + (k - 1) * L
  values, the same stream as drawing 1 then L per step), used as u' = 1 - u in
  (0, 1], target u' * total, first cumulative sum >= target: a point of zero
  mass (zero weight, or already a centre) is never drawn.
* Argmin.  sum_i w_i min(D_i^2, d_i^2) = potential - gain with
  gain = sum_i w_i max(D_i^2 - d_i^2, 0); the candidate of largest gain is kept,
  the first one on equal gains (scikit-learn's ``argmin`` takes the first of equal
  potentials).  Gains are accumulated in float64 from per-point terms in X's
  dtype (scikit-learn sums potentials in X's dtype).  Potentials equal in real
  arithmetic but summed in different orders can come out a rounding apart, so
  such a tie may go to either candidate (as in scikit-learn).  On CUDA the
  per-candidate sums are one-hot matrix products (deterministic, see
  ``pgbench.backends.segment_sums``).
* Pruning (d <= 4).  A candidate c can only lower D_x where |x - c| < D_x, hence
  where c lies in the cube [x - D_x, x + D_x].  Each leaf of about 16 points and
  each block of 16 leaves keeps the bounding box of its points' cubes (padded to
  cover rounding); each step tests the candidates against the block boxes, then
  the leaf boxes inside the blocks hit, and computes exact distances only for the
  points of the leaves hit.  Skipped points provably keep D^2, so the gains and
  the new D^2 are those of a full pass.  The boxes are recomputed every 4 steps
  for the leaves whose D^2 dropped: D^2 never grows, so an older box still holds
  the cubes (it only lets more through).  With unit weights w * D^2 is D^2 and
  the weight products are skipped.  Distances are sums of squared coordinate
  differences.  On heavy-tailed layer sub-vectors with k = 3072, 3.1 %, 2.0 % and
  1.3 % of the point-candidate distances of a full pass are computed at
  n = 36,864, 147,456 and 589,824.
* Dense (d > 4, where the boxes let too much through: at d = 8, 46 %): one
  (trials, n) block of ||x||^2 - 2 x.c + ||c||^2 per step, as scikit-learn, so
  rounding may split exact ties differently from the pruned mode.

Memory: O(n) plus at most about n * trials floats in the early steps; never n x k.
``info``: ``n_local_trials``, ``potential`` (final sum w D^2, float64),
``n_distance_evals`` (point-candidate distances computed) and ``pruned``.
"""

import math

import torch

from pgbench.params import Int
from pgbench.registry import register
from pgbench.state import InitOutcome
from pgbench.testing import expected_failures

from ._greedy_kmeanspp import greedy_kmeanspp


def default_trials(k: int) -> int:
    """scikit-learn's number of local trials, 2 + floor(ln k)."""
    return 2 + int(math.log(k))


@expected_failures(weights_as_duplicates=(
    "the k-d order of the points (d <= 4) depends on the points, so w copies of a point reorder "
    "them and the same uniforms land on other points; equal in distribution only (a KS test in "
    "tests/test_weights_property.py)"))
@register("init", "kmeans++", params=[
    Int("n_local_trials", None, low=1, none=True, help="candidates per centre; None: 2 + floor(ln k)"),
], summary="greedy k-means++, 2 + floor(ln k) weighted local trials (scikit-learn)")
def init_kmeanspp(X, weights, k, rng, *, n_local_trials):
    trials = n_local_trials if n_local_trials is not None else default_trials(k)
    u = 1.0 - torch.rand(1 + (k - 1) * trials, generator=rng, dtype=torch.float64)    # (0, 1]
    seeding = greedy_kmeanspp(X, weights, k, trials, u.to(X.device))
    centers = X.index_select(0, seeding.order[seeding.chosen])
    return InitOutcome(centers, {"n_local_trials": trials, "potential": seeding.potential,
                                 "n_distance_evals": seeding.n_distance_evals, "pruned": seeding.pruned})
