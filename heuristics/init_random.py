"""Random initialisation: k distinct points (scikit-learn ``init="random"``, faiss RANDOM).

Without replacement; with non-uniform sample weights the draw is proportional to
weight, as scikit-learn does.
"""

import torch

from pgbench.registry import register
from pgbench.state import InitOutcome
from pgbench.testing import expected_failures


@expected_failures(weights_as_duplicates=(
    "random by design: draws k distinct samples by weight (scikit-learn's random init), so several "
    "copies of one point can be drawn, a weighted point only once; only the first draw has the same "
    "law in both forms, which tests/test_weights_property.py tests"))
@register("init", "random", summary="k distinct points without replacement")
def init_random(X, weights, k, rng):
    n = X.shape[0]
    w = weights.detach().cpu().double()
    if bool((w == w[0]).all()):
        idx = torch.randperm(n, generator=rng)[:k]
    else:
        idx = torch.multinomial(w, k, replacement=False, generator=rng)
    return InitOutcome(X[idx.to(X.device)].clone(), {"n_sampled": k})
