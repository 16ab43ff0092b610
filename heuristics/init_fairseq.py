"""fairseq iPQ initialisation (``pq/em.py::EM.initialize_centroids``).

k point indices drawn uniformly WITH replacement and copied as centroids.  A
repeated draw gives identical centroids; argmin picks the lower index, so the
higher duplicate starts empty (about k^2 / 2n duplicates expected).  Sample
weights are ignored, as fairseq has none.
"""

import torch

from pgbench.registry import register
from pgbench.state import InitOutcome
from pgbench.testing import expected_failures


@expected_failures(weights_as_duplicates=(
    "draws k indices uniformly with replacement and ignores sample weights, as fairseq "
    "(which has none) does"))
@register("init", "fairseq", summary="k points uniformly with replacement (fairseq iPQ)")
def init_fairseq(X, weights, k, rng):
    n = X.shape[0]
    idx = torch.randint(0, n, (k,), generator=rng)          # (k,), CPU draw
    n_duplicates = k - int(torch.unique(idx).numel())
    return InitOutcome(X[idx.to(X.device)].clone(), {"n_duplicate_draws": n_duplicates})
