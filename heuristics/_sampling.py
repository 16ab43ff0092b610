"""Weighted draws by inverse CDF, shared by the seeding and restart heuristics.

Every draw maps one uniform u in [0, 1) from the run's generator to the index i
with cum[i-1] <= u * total < cum[i], cum being the cumulative sum of the weights
(float64).  Two properties follow, and the heuristics that use these helpers rely
on them:

* a zero-weight entry is never drawn (its interval is empty);
* a point of integer weight w and w adjacent copies of it of weight 1 cover the
  same interval, so the same uniforms draw the same location: integer sample
  weights equal duplicated points draw for draw, not just in distribution.
"""

from __future__ import annotations

import torch


def inverse_cdf(cum: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Indices (m,) int64 of ``values`` (m,) in [0, cum[-1]) under the cumulative weights ``cum`` (n,).

    A value that rounding puts at or past the total goes to the last entry of
    positive weight, never to a trailing zero-weight one.
    """
    idx = torch.searchsorted(cum, values, right=True)
    last = torch.searchsorted(cum, cum[-1:], right=False)         # (1,) last entry of positive weight
    return torch.minimum(idx, last)


def uniforms(m: int, rng: torch.Generator, device: torch.device) -> torch.Tensor:
    """``m`` float64 uniforms in [0, 1) from the CPU generator ``rng``, moved to ``device``."""
    return torch.rand(m, generator=rng, dtype=torch.float64).to(device)


def weighted_draws(weights: torch.Tensor, m: int, rng: torch.Generator) -> torch.Tensor:
    """``m`` indices (m,) drawn with replacement with probability proportional to ``weights`` (n,).

    ``weights`` must have a positive sum.  One uniform per draw, on ``weights``' device.
    """
    cum = torch.cumsum(weights.double(), 0)                     # (n,)
    return inverse_cdf(cum, uniforms(m, rng, weights.device) * cum[-1])


def draws_in_units(weights: torch.Tensor, m: int, rng: torch.Generator) -> torch.Tensor:
    """``m`` indices (m,) drawn without replacement in units of weight.

    Each draw is proportional to the weight left, and takes one unit from the
    point drawn (all of it when less than one unit is left).  Unit weights give m
    distinct points, uniformly (as ``torch.randperm(n)[:m]`` does in law); an
    integer weight w is exactly w copies of the point drawn without replacement.
    When every unit has been taken the weights are restored (more draws than
    units: the excess is drawn with replacement).  ``m`` uniforms, one
    cumulative sum per draw: O(m n).
    """
    full = weights.double()
    left = full.clone()
    u = uniforms(m, rng, weights.device)
    out = torch.empty(m, dtype=torch.int64, device=weights.device)
    for j in range(m):
        cum = torch.cumsum(left, 0)
        if float(cum[-1]) <= 0:
            left = full.clone()
            cum = torch.cumsum(left, 0)
        i = inverse_cdf(cum, u[j:j + 1] * cum[-1])
        out[j] = i[0]
        left[i] = (left[i] - 1).clamp_(min=0)
    return out
