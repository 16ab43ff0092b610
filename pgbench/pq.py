"""Product-quantization (PQ) plumbing for transformer weights, matching fairseq iPQ.

What this module does
---------------------
* Splits a layer weight into the sub-vectors k-means clusters
  (:func:`weight_to_subvectors`), and puts them back (:func:`subvectors_to_weight`,
  :func:`reconstruct_weight`), with exactly the ordering of fairseq's
  ``PQ._reshape`` / ``PQ.decode`` so that assignments and centroids are
  interchangeable with fairseq's.
* Counts compressed model size the way fairseq's ``SizeTracker`` and the PG k-means
  paper do (:class:`LayerSize`, :func:`compression_ratio`, :func:`size_mb`).
* Measures reconstruction quality (:func:`relative_error`).

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
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["weight_to_subvectors", "subvectors_to_weight", "reconstruct_weight", "LayerSize",
           "compression_ratio", "size_mb", "relative_error", "BYTES_PER_MB"]

#: fairseq's SizeTracker divides byte counts by 1024 * 1024, so "MB" here is MiB.
BYTES_PER_MB = 1024 * 1024

_FP32_BYTES = 4  # unquantized parameters
_FP16_BYTES = 2  # centroids


# --------------------------------------------------------------------------- checks

def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _positive_int(value: Any, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_shape(shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple of 2 or 4 positive ints (Linear/Embedding or Conv2d)."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence of ints, got {shape!r}.") from None
    if len(dims) not in (2, 4):
        raise ValueError(
            f"weight must be 2-D (out, in) or 4-D (C_out, C_in, kh, kw), got shape {dims}."
        )
    if not all(_is_int(d) and d >= 1 for d in dims):
        raise ValueError(f"shape must contain positive integers only, got {dims}.")
    return tuple(int(d) for d in dims)


def _row_length(shape: tuple[int, ...], block_size: int) -> int:
    """Length of one output row / flattened filter; checks that ``block_size`` divides it."""
    row = math.prod(shape[1:])
    if row % block_size != 0:
        what = "in" if len(shape) == 2 else "C_in*kh*kw"
        raise ValueError(
            f"block_size={block_size} does not divide the row length {what}={row} "
            f"of a weight of shape {shape}."
        )
    return row


def _check_tensor(x: Any, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    return x


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


# --------------------------------------------------------------------- size model

@dataclass(frozen=True)
class LayerSize:
    """Storage cost of one PQ-quantized layer, counted as fairseq's ``SizeTracker``.

    Accounting (same as fairseq and the PG k-means paper):

    * original: every weight in fp32, ``4 * n_params`` bytes;
    * indices: ``log2(k)`` bits per sub-vector, i.e. ``log2(k) / b`` bits per weight.
      fairseq uses ``np.log2(n_centroids)`` **without rounding up**, so for a k that
      is not a power of two this is the information-theoretic count, not what a
      bit-packed file would need (``ceil(log2 k)``); matched here on purpose so
      ratios compare with published numbers. Byte counts may thus be fractional;
    * centroids: fp16, ``k * b * 2`` bytes.

    Biases and other unquantized parameters are not part of a ``LayerSize``; pass
    their count as ``other_params`` to :func:`compression_ratio` / :func:`size_mb`.

    Parameters
    ----------
    n_params : int
        Number of weights in the layer (``weight.numel()``).
    block_size : int
        Sub-vector length ``b``; must divide ``n_params``.
    k : int
        Number of centroids.

    Raises
    ------
    ValueError
        If any field is not a positive integer or ``block_size`` does not divide
        ``n_params``.
    """

    n_params: int
    block_size: int
    k: int

    def __post_init__(self) -> None:
        n = _positive_int(self.n_params, "n_params")
        b = _positive_int(self.block_size, "block_size")
        k = _positive_int(self.k, "k")
        if n % b != 0:
            raise ValueError(f"block_size={b} does not divide n_params={n}.")
        # normalise numpy integers to plain ints (frozen dataclass)
        object.__setattr__(self, "n_params", n)
        object.__setattr__(self, "block_size", b)
        object.__setattr__(self, "k", k)

    @classmethod
    def from_weight(cls, weight: torch.Tensor, block_size: int, k: int) -> "LayerSize":
        """The size record of ``weight`` (2-D or 4-D), with the same checks as
        :func:`weight_to_subvectors` (``block_size`` must divide the row length)."""
        weight = _check_tensor(weight, "weight")
        shape = _check_shape(weight.shape)
        _row_length(shape, _positive_int(block_size, "block_size"))
        return cls(weight.numel(), int(block_size), k)

    @property
    def n_subvectors(self) -> int:
        """Number of sub-vectors ``N = n_params / b``."""
        return self.n_params // self.block_size

    @property
    def bits_per_weight(self) -> float:
        """Index bits per weight, ``log2(k) / b`` (centroids excluded)."""
        return math.log2(self.k) / self.block_size

    @property
    def index_bytes(self) -> float:
        """Bytes for the codes: ``N * log2(k) / 8``."""
        return self.n_subvectors * math.log2(self.k) / 8

    @property
    def centroid_bytes(self) -> int:
        """Bytes for the fp16 codebook: ``k * b * 2``."""
        return self.k * self.block_size * _FP16_BYTES

    @property
    def original_bytes(self) -> int:
        """Bytes of the uncompressed fp32 weight: ``4 * n_params``."""
        return self.n_params * _FP32_BYTES

    @property
    def compressed_bytes(self) -> float:
        """``index_bytes + centroid_bytes``."""
        return self.index_bytes + self.centroid_bytes


def _totals(layers: Sequence[LayerSize], other_params: int) -> tuple[float, float]:
    """(original bytes, compressed bytes) of ``layers`` plus fp32 ``other_params``."""
    try:
        layers = list(layers)
    except TypeError:
        raise ValueError(f"layers must be a sequence of LayerSize, got {type(layers).__name__}.") from None
    bad = [type(x).__name__ for x in layers if not isinstance(x, LayerSize)]
    if bad:
        raise ValueError(f"layers must contain LayerSize objects only, got {bad[0]}.")
    if not _is_int(other_params) or other_params < 0:
        raise ValueError(f"other_params must be a non-negative integer, got {other_params!r}.")
    other = int(other_params) * _FP32_BYTES
    original = sum(x.original_bytes for x in layers) + other
    compressed = sum(x.compressed_bytes for x in layers) + other
    if original == 0:
        raise ValueError("nothing to measure: no layers and other_params=0.")
    return float(original), float(compressed)


def compression_ratio(layers: Sequence[LayerSize], other_params: int = 0) -> float:
    """Whole-model compression ratio, as fairseq's ``SizeTracker`` reports it.

    Parameters
    ----------
    layers : sequence of LayerSize
        The quantized layers.
    other_params : int, default 0
        Parameters left unquantized (biases, LayerNorms, unselected layers), counted
        at 4 bytes each in both numerator and denominator.

    Returns
    -------
    float
        ``(sum original_bytes + 4*other_params) / (sum compressed_bytes + 4*other_params)``.

    Raises
    ------
    ValueError
        If ``layers`` holds anything but :class:`LayerSize`, ``other_params`` is
        negative or not an int, or there is nothing to measure.
    """
    original, compressed = _totals(layers, other_params)
    return original / compressed


def size_mb(layers: Sequence[LayerSize], other_params: int = 0, *,
            compressed: bool = True) -> float:
    """Model size in fairseq's "MB" (bytes / 1024**2, i.e. MiB).

    Same arguments and errors as :func:`compression_ratio`; ``compressed=True``
    gives the size after PQ (indices + fp16 centroids + fp32 others), ``False`` the
    original all-fp32 size.
    """
    original, packed = _totals(layers, other_params)
    return (packed if compressed else original) / BYTES_PER_MB


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
