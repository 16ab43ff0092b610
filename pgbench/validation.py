"""Input checks done once, at the public boundary, before any work.

Every failure is a ``ValueError`` with one sentence naming the problem; the engine
and the heuristics behind it assume inputs that passed these checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def as_points(X: Any, name: str = "X", dtype: torch.dtype = torch.float32,
              device: torch.device | None = None) -> torch.Tensor:
    """``X`` as a finite 2-D (n, d) tensor of ``dtype`` on ``device``."""
    if isinstance(X, torch.Tensor):
        t = X.detach()
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{name} cannot be read as a numeric array ({exc}).") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}.")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise ValueError(f"{name} must be real, got a complex array.")
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_points, n_features), got shape {tuple(t.shape)}.")
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"{name} must have at least one point and one feature, got shape {tuple(t.shape)}.")
    t = t.to(dtype=dtype, device=device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf values.")
    return t.contiguous()


def as_weights(w: Any, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Sample weights (n,): ones when None; finite, non-negative, not all zero."""
    if w is None:
        return torch.ones(n, dtype=dtype, device=device)
    t = w.detach() if isinstance(w, torch.Tensor) else torch.from_numpy(np.asarray(w, dtype=np.float64))
    t = t.to(dtype=dtype, device=device).reshape(-1) if t.ndim <= 1 else t
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},), got {tuple(t.shape)}.")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("sample_weight contains NaN or Inf values.")
    if bool((t < 0).any()):
        raise ValueError("sample_weight must be non-negative.")
    if float(t.sum()) <= 0:
        raise ValueError("sample_weight must not sum to zero.")
    return t.contiguous()


def check_k(k: Any, n: int) -> int:
    """``k`` as an int with 1 <= k <= n."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer, got {k!r}.")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    if k > n:
        raise ValueError(f"k={k} is larger than the number of points n={n}.")
    return k


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def as_device(device: Any) -> torch.device:
    """A torch device that exists here: 'cpu', 'cuda' or 'cuda:N'."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r} (use 'cpu' or 'cuda').") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r} (use 'cpu' or 'cuda').")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine.")
    return dev


def as_dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}.")


def as_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def error_text(exc: BaseException) -> str:
    """An exception's message on one line (whitespace collapsed), or its type name when it has none."""
    return " ".join(str(exc).split()) or type(exc).__name__
