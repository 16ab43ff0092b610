"""Argument checks shared by :mod:`pgbench.pq` and :mod:`pgbench.pq_size`.

What: positive-int, shape, row-length and tensor checks, each raising ValueError
with one line that names the offending argument.

Why a module of its own: the reshaping in :mod:`pgbench.pq` and the size
accounting in :mod:`pgbench.pq_size` validate the same arguments the same way;
here both import one copy, and neither imports the other.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

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
