"""fairseq iPQ empty-cluster resolution, step for step (``pq/em.py::EM.resolve_empty_clusters``).

Per round: pick a uniformly random empty cluster k (fairseq: ``random.choice``), the
currently most populated cluster m as donor (``Counter.most_common(1)``: ties go to
the label that appears first in the assignment), draw e = eps * N(0, I_d), set
C[k] = C[m] + e and C[m] = C[m] - e, and redo the FULL assignment.  One empty
cluster is handled per round; new empties created by a split are found again
because the empty set is recomputed from scratch.

``max_tentatives`` is counted exactly like fairseq: the check ``t == max_tentatives``
runs after each round's re-assignment and before ``t += 1``, so rounds
1..max_tentatives may succeed and round max_tentatives + 1 always fails, even if it
removed the last empty cluster.  On failure fairseq raises
EmptyClusterResolveError and ``PQ.encode`` stops iterating with the M-step of that
iteration skipped; here the outcome says ``stop`` and ``gave_up`` and the engine
records status ``stopped``.  Defaults are those of fairseq's training path
(``quantize_model_``): eps=1e-6, max_tentatives=100.

Randomness: fairseq uses three unseeded global generators; here every draw comes
from the run's generator (one ``randint`` for the empty cluster, then one
``randn(d)`` for e, per round).  Donor size is the weight mass (the point count
when unweighted, which is fairseq's case).
"""

import torch

from pgbench.params import Int, Real
from pgbench.registry import register
from pgbench.state import ResolveOutcome


def _largest_cluster(state) -> int:
    """argmax of cluster size; on ties, the label whose first point comes first."""
    sizes = state.sizes
    top = torch.nonzero(sizes == sizes.max()).flatten()
    if top.numel() == 1:
        return int(top[0])
    first_seen = torch.full((state.k,), state.n, dtype=torch.int64, device=state.labels.device)
    positions = torch.arange(state.n, device=state.labels.device)
    first_seen.scatter_reduce_(0, state.labels, positions, reduce="amin")
    return int(top[first_seen[top].argmin()])


@register("resolve", "fairseq", params=[
    Real("eps", 1e-6, low=0, help="scale of the N(0, I) split noise, in the units of X"),
    Int("max_tentatives", 100, low=0, help="rounds allowed per iteration (round max_tentatives + 1 fails)"),
], summary="split the largest cluster by +-eps*N(0,I), one empty per full re-assignment (fairseq iPQ)")
def resolve_fairseq(state, rng, *, eps, max_tentatives):
    empty = found = state.empty_ids()
    n_found = int(found.numel())
    t = 0
    rounds = 0
    d = state.centroids.shape[1]
    while empty.numel() > 0:
        target = int(empty[int(torch.randint(0, empty.numel(), (1,), generator=rng))])
        donor = _largest_cluster(state)
        e = eps * torch.randn(d, generator=rng, dtype=torch.float64)
        e = e.to(state.centroids.device, state.centroids.dtype)
        state.centroids[target] = state.centroids[donor] + e
        state.centroids[donor] = state.centroids[donor] - e
        state.reassign()
        rounds += 1
        empty = state.empty_ids()
        if t == max_tentatives:
            n_left = int(empty.numel())         # may include clusters a split emptied
            n_resolved = int((state.counts[found] > 0).sum())
            return ResolveOutcome(n_found, n_resolved, n_left, rounds, gave_up=True, stop=True,
                                  info={"max_tentatives": max_tentatives})
        t += 1
    return ResolveOutcome(n_found, n_found, 0, rounds)
