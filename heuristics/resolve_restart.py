"""Dead-code restart, as vector-quantization codebooks are trained (VQ-VAE, SoundStream, EnCodec).

Source: lucidrains' vector-quantize-pytorch, ``EuclideanCodebook.expire_codes_``
and ``replace`` (``threshold_ema_dead_code``): after the codebook update, every
code whose (EMA) cluster size is below the threshold is "expired" and replaced
by a vector sampled from the current batch with ``sample_vectors``, i.e.
uniformly, without replacement (``torch.randperm(num_samples)[:num]``) when the
batch has enough vectors, with replacement (``torch.randint``) otherwise.

Here, once per Lloyd iteration **after the centroid update** (the library's
order; before the update, the mean of a light cluster's members would overwrite
its new centroid), every cluster whose weight mass is below ``min_size`` is
dead, and so is every cluster of mass 0 (default ``min_size = 0``: the empty
clusters only, and clusters holding only zero-weight points).  The m dead
clusters, in ascending index, get the positions of m points drawn by
``_sampling.draws_in_units``: proportional to weight, without replacement in units
of weight.  With unit weights that is the library's law (m distinct points,
uniform; more dead clusters than points cannot happen since k <= n); an integer
weight w counts as w copies of the point, as the library would see them, and
draws the same points as the copies would for the same seed.  There is no EMA:
the mass is that of the current assignment (the library's ``decay`` -> 0), and
there is no ``reset_cluster_size`` bookkeeping since the next assignment
recomputes every size.

Points are not reassigned (the library leaves that to the next batch): the next
assignment step decides who moves.  So ``n_resolved`` counts the empty clusters
whose centroid moved, and ``n_left`` those whose centroid did not (the point
drawn sits where the stale centroid was, as on data whose points are all equal);
``gave_up`` is ``n_left > 0``.  ``info`` has ``n_restarted`` (all dead clusters,
empty or not) and ``n_light`` (of those, clusters that held points: mass below
``min_size``, or only zero-weight points).  ``rounds`` is 1 when anything was
restarted.  Cost: one cumulative sum over the n weights per dead cluster.
"""

import torch

from pgbench.heuristics._sampling import draws_in_units
from pgbench.params import Real
from pgbench.registry import register
from pgbench.state import ResolveOutcome


@register("resolve", "restart", params=[
    Real("min_size", 0.0, low=0,
         help="restart every cluster whose weight mass is below this; 0: empty clusters only"),
], when="after_update",
   summary="dead-code restart: every empty (or lighter than min_size) cluster re-seeded on a random "
           "point (VQ codebooks)")
def resolve_restart(state, rng, *, min_size):
    empty = state.counts == 0                                               # (k,)
    dead = torch.nonzero((state.sizes <= 0) | (state.sizes < min_size)).flatten()
    n_found = int(empty.sum())
    if dead.numel() == 0:
        return ResolveOutcome()
    points = draws_in_units(state.weights, int(dead.numel()), rng)          # (m,)
    stale = state.centroids[dead].clone()                                   # (m, d)
    state.centroids[dead] = state.X[points]
    moved = (state.centroids[dead] != stale).any(1)                         # (m,)
    n_resolved = int((moved & empty[dead]).sum())
    n_left = n_found - n_resolved
    return ResolveOutcome(n_found, n_resolved, n_left, rounds=1, gave_up=n_left > 0,
                          info={"n_restarted": int(dead.numel()), "n_light": int(dead.numel()) - n_found})
