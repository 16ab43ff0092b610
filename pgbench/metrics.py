"""Clustering quality measures that compare a result with ground truth.

What: the centroid index CI (Fränti, Rezaei, Zhao, "Centroid index: cluster level
similarity measure", Pattern Recognition 47(9), 2014), the usual measure on the
Fränti and Birch benchmark sets that :mod:`pgbench.sources.clustering` reads.

Why: the sum of squared errors says how good a codebook is, not whether k-means
found the clusters.  CI counts the true clusters that were missed (and the found
ones that are superfluous), so CI = 0 means every true cluster has a centroid of
its own; an empty-cluster heuristic that leaves dead centroids or piles two
centroids into one cluster shows up as CI > 0 even when the SSE looks fine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["centroid_index", "orphan_count"]


def _as_centroids(x: Any, name: str) -> torch.Tensor:
    """``x`` as a finite, non-empty (k, d) float64 CPU tensor, else ValueError."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}.")
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D (k, d) array, got shape {tuple(x.shape)}.")
    if x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}.")
    x = x.detach().to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must contain only finite values.")
    return x


def orphan_count(source: Any, target: Any) -> int:
    """Directed centroid index CI(source -> target): the number of orphans.

    Every centroid of ``source`` is mapped to its nearest centroid of ``target``
    (Euclidean; ties go to the lower index); a target centroid that no source
    centroid maps to is an orphan.

    Parameters
    ----------
    source : torch.Tensor or numpy.ndarray, shape (k1, d)
    target : torch.Tensor or numpy.ndarray, shape (k2, d)

    Returns
    -------
    int
        Number of orphans, in ``[max(0, k2 - k1), k2 - 1]``.

    Raises
    ------
    ValueError
        If either input is not a non-empty finite 2-D array, or the dimensions differ.
    """
    src = _as_centroids(source, "source")
    tgt = _as_centroids(target, "target")
    if src.shape[1] != tgt.shape[1]:
        raise ValueError(f"source has dimension {src.shape[1]} but target has dimension {tgt.shape[1]}.")
    # exact pairwise distances (no matmul shortcut) so near-ties are decided correctly
    dist = torch.cdist(src, tgt, compute_mode="donot_use_mm_for_euclid_dist")  # (k1, k2)
    nearest = dist.argmin(dim=1)                                                  # (k1,)
    hit = torch.zeros(tgt.shape[0], dtype=torch.bool)
    hit[nearest] = True
    return int((~hit).sum())


def centroid_index(found: Any, true: Any) -> int:
    """Centroid index CI between found and ground-truth centroids.

    ``CI = max(CI(found -> true), CI(true -> found))`` where the directed count
    (:func:`orphan_count`) maps each centroid of the first set to its nearest one in
    the second and counts the centroids of the second set that nothing maps to.
    ``found -> true`` counts true clusters that got no centroid (missed clusters);
    ``true -> found`` counts found centroids that own no true cluster (superfluous
    ones, e.g. two centroids in one cluster or a dead centroid far from the data).

    Parameters
    ----------
    found : torch.Tensor or numpy.ndarray, shape (k1, d)
        Centroids produced by k-means.
    true : torch.Tensor or numpy.ndarray, shape (k2, d)
        Ground-truth centroids (``Dataset.true_centroids``); ``k1`` may differ from ``k2``.

    Returns
    -------
    int
        0 when every true cluster has exactly one found centroid; at least
        ``|k1 - k2|`` otherwise.

    Raises
    ------
    ValueError
        If either input is not a non-empty finite 2-D array, or the dimensions differ.

    Examples
    --------
    >>> import torch
    >>> true = torch.tensor([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    >>> centroid_index(true.flip(0), true)
    0
    >>> centroid_index(torch.tensor([[0.0, 0.0], [1.0, 0.0], [20.0, 0.0]]), true)
    1
    """
    f = _as_centroids(found, "found")
    t = _as_centroids(true, "true")
    if f.shape[1] != t.shape[1]:
        raise ValueError(f"found centroids have dimension {f.shape[1]} but true ones have {t.shape[1]}.")
    return max(orphan_count(f, t), orphan_count(t, f))
