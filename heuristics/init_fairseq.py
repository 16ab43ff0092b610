"""fairseq iPQ initialisation (``pq/em.py::EM.initialize_centroids``).

k point indices drawn uniformly WITH replacement and copied as centroids.  A
repeated draw gives identical centroids; argmin picks the lower index, so the
higher duplicate starts empty (about k^2 / 2n duplicates expected).

Weights: fairseq has none.  With unit weights the draw is fairseq's
(``torch.randint``).  With other weights each draw picks a point with
probability proportional to its weight, which is fairseq's uniform draw over the
points a weighted point stands for (its copies, or a consolidated group's
members): the same law, though not the same draws for one seed.
"""

import torch

from pgbench.registry import register
from pgbench.state import InitOutcome
from pgbench.testing import expected_failures


@expected_failures(weights_as_duplicates=(
    "random by design: with weights each of the k draws (with replacement) picks a point with probability "
    "proportional to its weight, the law of fairseq's uniform draw over the copies, but not the same draws "
    "for one seed; tests/test_weights_property.py tests the law"))
@register("init", "fairseq", summary="k points uniformly with replacement (fairseq iPQ)")
def init_fairseq(X, weights, k, rng):
    n = X.shape[0]
    w = weights.detach().cpu().double()
    if bool((w == w[0]).all()) and float(w[0]) > 0:
        idx = torch.randint(0, n, (k,), generator=rng)       # (k,), fairseq's draw
    else:
        idx = torch.multinomial(w, k, replacement=True, generator=rng)
    n_duplicates = k - int(torch.unique(idx).numel())
    return InitOutcome(X[idx.to(X.device)].clone(), {"n_duplicate_draws": n_duplicates})
