"""Small seeded synthetic data sets used by the built-in demo, tests and benchmarks.

Every generator takes a ``seed`` and returns a float32 tensor (n, d);
:mod:`pgbench.sources.synthetic` wraps them as registered, validated data sources.
"""

from __future__ import annotations

import torch


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def layer_weights(out_features: int, in_features: int, std: float = 0.04, seed: int = 0,
                  df: float = 3.0) -> torch.Tensor:
    """A heavy-tailed (Student-t with ``df`` degrees of freedom) weight matrix (out, in) with std ``std``."""
    g = _gen(seed)
    normal = torch.randn(out_features, in_features, generator=g, dtype=torch.float64)
    chi2 = 2.0 * torch._standard_gamma(torch.full((out_features, in_features), df / 2.0,
                                                  dtype=torch.float64), generator=g)
    t = normal / torch.sqrt(chi2 / df)
    t = t * (std / t.std())
    return t.float()


def layer_subvectors(n: int = 589_824, block_size: int = 4, std: float = 0.04, seed: int = 0) -> torch.Tensor:
    """``n`` heavy-tailed sub-vectors of dimension ``block_size``: a layer cut for PQ, shape (n, b).

    The default 589,824 x 4 is a 768 x 3072 FFN weight with block size 4.
    """
    return layer_weights(n, block_size, std=std, seed=seed)


def gaussian_mixture(n: int, d: int, n_centers: int, spread: float = 1.0, std: float = 0.05,
                     seed: int = 0) -> torch.Tensor:
    """``n`` points around ``n_centers`` uniform centres in [0, spread]^d, shape (n, d)."""
    g = _gen(seed)
    centers = torch.rand(n_centers, d, generator=g) * spread
    owner = torch.randint(0, n_centers, (n,), generator=g)
    return (centers[owner] + std * torch.randn(n, d, generator=g)).float()


def with_duplicates(n: int, d: int, duplicate_fraction: float = 0.5, n_groups: int = 20,
                    seed: int = 0) -> torch.Tensor:
    """Gaussian points where ``duplicate_fraction`` of them are exact copies of ``n_groups`` points."""
    g = _gen(seed)
    X = torch.randn(n, d, generator=g) * 0.04
    n_dup = int(n * duplicate_fraction)
    sources = torch.randint(0, n_groups, (n_dup,), generator=g)
    X[n - n_dup:] = X[sources]
    return X.float()
