"""Product-quantization (PQ) plumbing for transformer weights, matching fairseq iPQ.

What this module does
---------------------
* Splits a layer weight into the sub-vectors k-means clusters
  (:func:`weight_to_subvectors`), and puts them back (:func:`subvectors_to_weight`,
  :func:`reconstruct_weight`), with exactly the ordering of fairseq's
  ``PQ._reshape`` / ``PQ.decode`` so that assignments and centroids are
  interchangeable with fairseq's.
* Measures reconstruction quality (:func:`relative_error`).

The size accounting (:class:`LayerSize`, :func:`compression_ratio`, :func:`size_mb`)
lives in :mod:`pgbench.pq_size` and is re-exported here.

Why the exact ordering matters
------------------------------
Which weights share a sub-vector decides what k-means sees, hence the empty-cluster
behaviour this harness benchmarks. fairseq cuts each output row (Linear/Embedding)
or each flattened filter (Conv2d) into contiguous chunks of ``block_size`` along the
input dimension, and orders the chunks block-index major, output-row minor.

Layout convention
-----------------
fairseq's EM works on a ``(b, N)`` matrix whose *columns* are the sub-vectors. This
module uses its transpose, ``(N, b)``, one sub-vector per *row*, which is the
``(n_points, n_features)`` layout the rest of pgbench expects. Row ``r`` here is
column ``r`` there, so assignments (N,) and centroids (k, b) carry over unchanged.

See ``/work/shared/notes/baselines.md`` section 1.2 for the source-grounded spec.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .pq_checks import _check_shape, _check_tensor, _positive_int, _row_length
from .pq_size import BYTES_PER_MB, LayerSize, compression_ratio, size_mb

__all__ = ["weight_to_subvectors", "subvectors_to_weight", "reconstruct_weight", "LayerSize",
           "compression_ratio", "size_mb", "relative_error", "BYTES_PER_MB"]


# ----------------------------------------------------------------------- reshaping

def weight_to_subvectors(weight: torch.Tensor, block_size: int) -> torch.Tensor:
    """Cut a layer weight into the PQ sub-vectors that k-means clusters.

    Exactly fairseq's ``PQ._reshape``, transposed: fairseq builds a ``(b, N)`` matrix
    whose columns are sub-vectors; this returns the ``(N, b)`` matrix whose rows are
    the same sub-vectors in the same order.

    Parameters
    ----------
    weight : torch.Tensor
        Either 2-D ``(out, in)`` (``nn.Linear``; ``nn.Embedding``'s
        ``(num_embeddings, embedding_dim)`` is treated the same way) or 4-D
        ``(C_out, C_in, kh, kw)`` (``nn.Conv2d``; for grouped convolutions ``C_in`` is
        already ``in_channels // groups`` in the weight's shape).
    block_size : int
        Sub-vector length ``b``. Must divide the row length: ``in`` for 2-D,
        ``C_in*kh*kw`` for 4-D.

    Returns
    -------
    torch.Tensor
        ``(N, b)`` with ``N = weight.numel() // b``, same dtype/device, a fresh
        contiguous copy. With ``R`` the row length (``in`` or ``C_in*kh*kw``) and
        ``out`` the first dimension, row ``j*out + o`` is
        ``weight[o].flatten()[j*b:(j+1)*b]``: contiguous chunks along the input
        dimension, block index ``j`` major, output row ``o`` minor. For 2-D that is
        ``weight[o, j*b:(j+1)*b]``; for 4-D each filter is flattened in C order
        ``(C_in, kh, kw)``, so a block may straddle kernel rows or channels.

    Raises
    ------
    ValueError
        If ``weight`` is not a 2-D/4-D tensor with non-empty dimensions, or
        ``block_size`` is not a positive integer dividing the row length.
    """
    weight = _check_tensor(weight, "weight")
    shape = _check_shape(weight.shape)
    b = _positive_int(block_size, "block_size")
    _row_length(shape, b)
    out = shape[0]
    # (out, R) -> (out, R/b, b) -> (R/b, out, b) -> (N, b); fairseq's permute(2, 1, 0)
    # gives (b, R/b, out), i.e. the transpose of the same ordering.
    return weight.reshape(out, -1, b).permute(1, 0, 2).reshape(-1, b)


def subvectors_to_weight(subvectors: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Exact inverse of :func:`weight_to_subvectors`.

    Parameters
    ----------
    subvectors : torch.Tensor
        ``(N, b)`` sub-vectors in :func:`weight_to_subvectors` order.
    shape : sequence of int
        Target weight shape, ``(out, in)`` or ``(C_out, C_in, kh, kw)``; ``b`` must
        divide its row length and ``N * b`` must equal its number of elements.

    Returns
    -------
    torch.Tensor
        Weight of shape ``shape``, same dtype/device as ``subvectors`` (a fresh copy).

    Raises
    ------
    ValueError
        If ``subvectors`` is not 2-D, ``shape`` is not a valid 2-D/4-D shape, or the
        two are inconsistent.
    """
    subvectors = _check_tensor(subvectors, "subvectors")
    dims = _check_shape(shape)
    if subvectors.ndim != 2 or subvectors.shape[1] < 1:
        raise ValueError(
            f"subvectors must be 2-D (N, block_size), got shape {tuple(subvectors.shape)}."
        )
    n, b = subvectors.shape
    _row_length(dims, b)
    if n * b != math.prod(dims):
        raise ValueError(
            f"subvectors of shape {(n, b)} hold {n * b} values but shape {dims} "
            f"needs {math.prod(dims)}."
        )
    out = dims[0]
    # Same recipe as fairseq's decode: (N, b) -> (R/b, out, b) -> (out, R/b, b) -> shape.
    return subvectors.reshape(-1, out, b).permute(1, 0, 2).reshape(dims)


def reconstruct_weight(centroids: torch.Tensor, assignments: torch.Tensor,
                       shape: Sequence[int]) -> torch.Tensor:
    """Decode a PQ-quantized layer: fairseq's ``PQ.decode``.

    Parameters
    ----------
    centroids : torch.Tensor
        ``(k, b)`` codebook.
    assignments : torch.Tensor
        ``(N,)`` integer codes in ``[0, k)``, one per sub-vector, in
        :func:`weight_to_subvectors` order.
    shape : sequence of int
        Shape of the original weight (2-D or 4-D); ``N * b`` must equal its size.

    Returns
    -------
    torch.Tensor
        ``subvectors_to_weight(centroids[assignments], shape)``, dtype/device of
        ``centroids``.

    Raises
    ------
    ValueError
        If ``centroids`` is not 2-D, ``assignments`` is not a 1-D integer tensor with
        values in ``[0, k)``, or the sizes do not match ``shape``.
    """
    centroids = _check_tensor(centroids, "centroids")
    assignments = _check_tensor(assignments, "assignments")
    if centroids.ndim != 2 or centroids.shape[0] < 1 or centroids.shape[1] < 1:
        raise ValueError(f"centroids must be 2-D (k, block_size), got shape {tuple(centroids.shape)}.")
    if assignments.ndim != 1:
        raise ValueError(f"assignments must be 1-D (N,), got shape {tuple(assignments.shape)}.")
    if assignments.dtype == torch.bool or assignments.is_floating_point() or assignments.is_complex():
        raise ValueError(f"assignments must have an integer dtype, got {assignments.dtype}.")
    k = centroids.shape[0]
    if assignments.numel() and (int(assignments.min()) < 0 or int(assignments.max()) >= k):
        raise ValueError(
            f"assignments must lie in [0, {k}) for k={k} centroids, got values in "
            f"[{int(assignments.min())}, {int(assignments.max())}]."
        )
    decoded = centroids[assignments.to(device=centroids.device, dtype=torch.long)]
    return subvectors_to_weight(decoded, shape)


# ------------------------------------------------------------------------- quality

def relative_error(weight: torch.Tensor, weight_hat: torch.Tensor) -> float:
    """Relative reconstruction error ``||W - W_hat||_F / ||W||_F``.

    Parameters
    ----------
    weight, weight_hat : torch.Tensor
        Same shape (any number of dimensions); the norm is over all entries.
        Computed in float64 on ``weight``'s device.

    Returns
    -------
    float
        The ratio; 0 for a perfect reconstruction.

    Raises
    ------
    ValueError
        If the shapes differ, the values are not finite, or ``||W||_F`` is zero.
    """
    weight = _check_tensor(weight, "weight")
    weight_hat = _check_tensor(weight_hat, "weight_hat")
    if weight.shape != weight_hat.shape:
        raise ValueError(
            f"weight and weight_hat must have the same shape, got {tuple(weight.shape)} "
            f"and {tuple(weight_hat.shape)}."
        )
    w = weight.detach().to(torch.float64)
    w_hat = weight_hat.detach().to(device=w.device, dtype=torch.float64)
    for name, t in (("weight", w), ("weight_hat", w_hat)):
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"{name} must contain only finite values, got {float(t[where])} at index {where}.")
    denom = float(torch.linalg.vector_norm(w))
    if denom == 0.0:
        raise ValueError("relative error is undefined for an all-zero weight.")
    return float(torch.linalg.vector_norm(w - w_hat)) / denom
