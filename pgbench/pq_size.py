"""PQ size accounting: compressed model size, counted as fairseq's ``SizeTracker`` counts it.

What: the storage cost of one PQ-quantized layer (:class:`LayerSize`) and of a
whole model (:func:`compression_ratio`, :func:`size_mb`).  :mod:`pgbench.pq`
re-exports these names.

Why a module of its own: the size model is arithmetic on counts (parameters,
block size, centroids), a concept apart from cutting weights into sub-vectors;
its fairseq conventions (fp16 centroids, unrounded ``log2(k)`` index bits, MiB) are
documented on :class:`LayerSize`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .pq_checks import _check_shape, _check_tensor, _is_int, _positive_int, _row_length

__all__ = ["LayerSize", "compression_ratio", "size_mb", "BYTES_PER_MB"]

#: fairseq's SizeTracker divides byte counts by 1024 * 1024, so "MB" here is MiB.
BYTES_PER_MB = 1024 * 1024

_FP32_BYTES = 4  # unquantized parameters
_FP16_BYTES = 2  # centroids


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
