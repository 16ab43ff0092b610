"""Seeded synthetic data sources, each built to provoke one empty-cluster situation.

What: six registered sources, each yielding one :class:`~pgbench.sources.Dataset`:

* ``gaussian_mixture``: well-separated Gaussian blobs with known centres;
* ``layer_weights``: a heavy-tailed (Student-t or Laplace) weight matrix cut into
  PQ sub-vectors, like one transformer layer (reconstruction error computable);
* ``duplicates``: a chosen fraction of exact and near duplicates (dense clusters),
  the case where fairseq's epsilon split fails and PG k-means consolidates;
* ``imbalanced``: a mixture whose cluster sizes span a chosen ratio;
* ``overestimated_k``: far more centroids asked for than there are clusters;
* ``high_dim``: a mixture in many dimensions (distance concentration).

Why: real layers mix all of these effects; isolating each one shows which
heuristic handles which.  All randomness comes from a ``torch.Generator`` seeded
with the ``seed`` passed in; points are shuffled so that no initialisation gets a
structured order for free.  Parameters are validated before anything is drawn.
The plain tensor generators used by the demo stay in :mod:`pgbench.synthetic`.
"""

from __future__ import annotations

from typing import Iterator

import torch

from .. import synthetic
from ..checkpoints import LAYER_TYPES
from ..pq import weight_to_subvectors
from . import Dataset, register_source


def _require(ok: bool, source: str, problem: str) -> None:
    if not ok:
        raise ValueError(f"data source '{source}': {problem}.")


def _check_common(source: str, n: int, d: int, n_centers: int, std: float, spread: float = 1.0) -> None:
    _require(n >= 1, source, f"n must be >= 1, got {n}")
    _require(d >= 1, source, f"d must be >= 1, got {d}")
    _require(1 <= n_centers <= n, source, f"n_centers must be in [1, n={n}], got {n_centers}")
    _require(std >= 0.0, source, f"std must be >= 0, got {std}")
    _require(spread > 0.0, source, f"spread must be > 0, got {spread}")


def _check_k(source: str, k: int | None) -> None:
    _require(k is None or (isinstance(k, int) and k >= 1), source, f"k must be a positive integer or None, got {k!r}")


def _mixture(g: torch.Generator, counts: torch.Tensor, d: int, spread: float,
             std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Points around uniform centres in [0, spread]^d, ``counts[c]`` around centre c, shuffled.

    Returns (X (n, d) float32, centres (c, d) float32).
    """
    centres = torch.rand(len(counts), d, generator=g, dtype=torch.float64) * spread  # (c, d)
    owner = torch.repeat_interleave(torch.arange(len(counts)), counts)                 # (n,)
    owner = owner[torch.randperm(len(owner), generator=g)]
    X = centres[owner] + std * torch.randn(len(owner), d, generator=g, dtype=torch.float64)
    return X.float(), centres.float()


def _uniform_counts(g: torch.Generator, n: int, n_centers: int) -> torch.Tensor:
    """Cluster sizes of ``n`` points each drawn uniformly among ``n_centers`` clusters."""
    owner = torch.randint(0, n_centers, (n,), generator=g)
    return torch.bincount(owner, minlength=n_centers)


@register_source("gaussian_mixture",
                 params={"n": 10_000, "d": 2, "n_centers": 16, "spread": 1.0, "std": 0.02, "k": None})
def gaussian_mixture(seed: int, n: int, d: int, n_centers: int, spread: float, std: float,
                     k: int | None) -> Iterator[Dataset]:
    """Gaussian blobs around uniform centres in [0, spread]^d; true_centroids are the centres.

    Each point picks its centre uniformly; ``k`` defaults to ``n_centers``.
    Yields one Dataset with X (n, d) and true_centroids (n_centers, d).
    """
    _check_common("gaussian_mixture", n, d, n_centers, std, spread)
    _check_k("gaussian_mixture", k)
    g = torch.Generator().manual_seed(seed)
    X, centres = _mixture(g, _uniform_counts(g, n, n_centers), d, spread, std)
    return iter([Dataset(f"gaussian_mixture-n{n}-d{d}-c{n_centers}", X, k or n_centers,
                         true_centroids=centres, meta={"std": std, "spread": spread})])


@register_source("layer_weights",
                 params={"out_features": 3072, "in_features": 768, "block_size": 8, "distribution": "student_t",
                         "df": 3.0, "std": 0.04, "k": 256, "layer_type": ""})
def layer_weights(seed: int, out_features: int, in_features: int, block_size: int, distribution: str,
                  df: float, std: float, k: int, layer_type: str) -> Iterator[Dataset]:
    """A heavy-tailed weight matrix (out, in) with std ``std``, cut into PQ sub-vectors of ``block_size``.

    ``distribution`` is ``student_t`` (``df`` degrees of freedom) or ``laplace``;
    the defaults mimic RoBERTa-base fc1 (3072 x 768, b = 8, fairseq's 256 centroids).
    Yields one Dataset with X (out*in/b, b) in fairseq order, weight_shape (out, in)
    and block_size, so ``pgbench.pq.reconstruct_weight`` rebuilds W_hat; the
    weight itself is ``pgbench.pq.subvectors_to_weight(X, weight_shape)``.
    ``layer_type`` ("" = none) labels it like a checkpoint layer.
    """
    name = "layer_weights"
    _require(out_features >= 1 and in_features >= 1, name,
             f"out_features and in_features must be >= 1, got {out_features}, {in_features}")
    _require(block_size >= 1 and in_features % block_size == 0, name,
             f"block_size {block_size} does not divide in_features {in_features}")
    _require(distribution in ("student_t", "laplace"), name,
             f"distribution must be 'student_t' or 'laplace', got {distribution!r}")
    _require(df > 2.0, name, f"df must be > 2 (finite variance), got {df}")
    _require(std > 0.0, name, f"std must be > 0, got {std}")
    _require(k >= 1, name, f"k must be >= 1, got {k}")
    _require(layer_type == "" or layer_type in LAYER_TYPES, name,
             f"layer_type must be '' or one of {', '.join(LAYER_TYPES)}, got {layer_type!r}")
    if distribution == "student_t":
        W = synthetic.layer_weights(out_features, in_features, std=std, seed=seed, df=df)
    else:
        g = torch.Generator().manual_seed(seed)
        shape = (out_features, in_features)
        # Laplace = difference of two unit exponentials, rescaled to the requested std
        W = (torch.empty(shape, dtype=torch.float64).exponential_(generator=g)
             - torch.empty(shape, dtype=torch.float64).exponential_(generator=g))
        W = (W * (std / W.std())).float()
    X = weight_to_subvectors(W, block_size).contiguous()  # (out*in/b, b)
    return iter([Dataset(f"layer_weights-{distribution}-{out_features}x{in_features}-b{block_size}", X, k,
                         layer_type=layer_type or None, weight_shape=(out_features, in_features),
                         block_size=block_size, meta={"distribution": distribution, "std": std, "df": df})])


@register_source("duplicates",
                 params={"n": 10_000, "d": 4, "exact_fraction": 0.3, "near_fraction": 0.2, "n_groups": 20,
                         "std": 0.04, "near_std": 1e-6, "k": 256})
def duplicates(seed: int, n: int, d: int, exact_fraction: float, near_fraction: float, n_groups: int,
               std: float, near_std: float, k: int) -> Iterator[Dataset]:
    """Gaussian points with ``exact_fraction`` exact and ``near_fraction`` near copies of ``n_groups`` points.

    The background is N(0, std^2 I); a near copy adds N(0, near_std^2 I) to its
    group point.  Dense clusters like these are where an epsilon split leaves empty
    clusters.  Yields one Dataset with X (n, d); no true_centroids; meta has the
    number of exact and near duplicates.
    """
    name = "duplicates"
    _check_common(name, n, d, 1, std)
    _require(0.0 <= exact_fraction and 0.0 <= near_fraction and exact_fraction + near_fraction <= 1.0, name,
             f"exact_fraction and near_fraction must be >= 0 with a sum <= 1, got {exact_fraction}, {near_fraction}")
    n_exact, n_near = int(n * exact_fraction), int(n * near_fraction)
    n_plain = n - n_exact - n_near
    _require(1 <= n_groups <= n_plain, name,
             f"n_groups must be in [1, {n_plain}] (the non-duplicate points), got {n_groups}")
    _require(near_std >= 0.0, name, f"near_std must be >= 0, got {near_std}")
    _require(k >= 1, name, f"k must be >= 1, got {k}")
    g = torch.Generator().manual_seed(seed)
    plain = std * torch.randn(n_plain, d, generator=g, dtype=torch.float64)     # (n_plain, d)
    groups = plain[:n_groups]                                                   # copied points
    exact = groups[torch.randint(0, n_groups, (n_exact,), generator=g)]         # (n_exact, d)
    near = groups[torch.randint(0, n_groups, (n_near,), generator=g)]
    near = near + near_std * torch.randn(n_near, d, generator=g, dtype=torch.float64)
    X = torch.cat([plain, exact, near])[torch.randperm(n, generator=g)].float()
    return iter([Dataset(f"duplicates-n{n}-d{d}-e{exact_fraction}-n{near_fraction}", X, k,
                         meta={"n_exact": n_exact, "n_near": n_near, "n_groups": n_groups})])


@register_source("imbalanced",
                 params={"n": 10_000, "d": 2, "n_centers": 8, "imbalance": 50.0, "spread": 1.0, "std": 0.02,
                         "k": None})
def imbalanced(seed: int, n: int, d: int, n_centers: int, imbalance: float, spread: float, std: float,
               k: int | None) -> Iterator[Dataset]:
    """A mixture whose cluster sizes fall geometrically from the largest to ``largest / imbalance``.

    Sizes are deterministic (each cluster has at least one point); ``k`` defaults to
    ``n_centers``.  Yields one Dataset with X (n, d), true_centroids (n_centers, d)
    and the sizes in meta.
    """
    name = "imbalanced"
    _check_common(name, n, d, n_centers, std, spread)
    _check_k(name, k)
    _require(imbalance >= 1.0, name, f"imbalance must be >= 1, got {imbalance}")
    ratio = torch.tensor(float(imbalance), dtype=torch.float64)
    steps = torch.arange(n_centers, dtype=torch.float64) / max(n_centers - 1, 1)
    share = ratio ** -steps                                                       # 1 ... 1/imbalance
    counts = 1 + torch.floor((n - n_centers) * share / share.sum()).long()
    counts[0] += n - int(counts.sum())                                            # remainder to the largest
    g = torch.Generator().manual_seed(seed)
    X, centres = _mixture(g, counts, d, spread, std)
    return iter([Dataset(f"imbalanced-n{n}-d{d}-c{n_centers}-r{imbalance:g}", X, k or n_centers,
                         true_centroids=centres, meta={"sizes": counts.tolist()})])


@register_source("overestimated_k",
                 params={"n": 5_000, "d": 2, "n_centers": 5, "k": 100, "spread": 1.0, "std": 0.02})
def overestimated_k(seed: int, n: int, d: int, n_centers: int, k: int, spread: float,
                    std: float) -> Iterator[Dataset]:
    """A Gaussian mixture of ``n_centers`` blobs clustered with ``k`` >> ``n_centers`` centroids.

    Yields one Dataset with X (n, d), k, and true_centroids (n_centers, d).
    """
    name = "overestimated_k"
    _check_common(name, n, d, n_centers, std, spread)
    _require(n_centers < k <= n, name, f"k must be in (n_centers={n_centers}, n={n}], got {k}")
    g = torch.Generator().manual_seed(seed)
    X, centres = _mixture(g, _uniform_counts(g, n, n_centers), d, spread, std)
    return iter([Dataset(f"overestimated_k-n{n}-c{n_centers}-k{k}", X, k, true_centroids=centres)])


@register_source("high_dim",
                 params={"n": 5_000, "d": 128, "n_centers": 16, "spread": 1.0, "std": 0.05, "k": None})
def high_dim(seed: int, n: int, d: int, n_centers: int, spread: float, std: float,
             k: int | None) -> Iterator[Dataset]:
    """A Gaussian mixture in ``d`` (default 128) dimensions; true_centroids are the centres.

    Yields one Dataset with X (n, d) and true_centroids (n_centers, d); ``k``
    defaults to ``n_centers``.
    """
    _check_common("high_dim", n, d, n_centers, std, spread)
    _check_k("high_dim", k)
    g = torch.Generator().manual_seed(seed)
    X, centres = _mixture(g, _uniform_counts(g, n, n_centers), d, spread, std)
    return iter([Dataset(f"high_dim-n{n}-d{d}-c{n_centers}", X, k or n_centers, true_centroids=centres,
                         meta={"std": std, "spread": spread})])
