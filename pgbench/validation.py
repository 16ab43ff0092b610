"""Input checks done once, at the public boundary, before any work.

Every failure is a ``ValueError`` with one sentence naming the problem; the engine
and the heuristics behind it assume inputs that passed these checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _check_finite(t: torch.Tensor, name: str) -> None:
    """Raise naming the first NaN or infinity of ``t`` (in its own dtype, before any cast)."""
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            at = tuple(int(i) for i in bad.nonzero()[0])
            where = f"row {at[0]}, column {at[1]}" if len(at) == 2 else f"index {at[0]}"
            raise ValueError(f"{name} contains NaN or Inf values ({float(t[at])} at {where}); "
                             "only finite values can be clustered.")


def _remedy(dtype: torch.dtype, what: str = "it") -> str:
    return f"rescale {what}" + (" or use dtype='float64'" if dtype != torch.float64 else "")


def _cast(t: torch.Tensor, name: str, dtype: torch.dtype, device: torch.device | None) -> torch.Tensor:
    """``t`` in ``dtype`` on ``device``; finite values that overflow ``dtype`` are refused."""
    out = t.to(dtype=dtype, device=device)
    if not bool(torch.isfinite(out).all()):
        big = float(t.detach().abs().max())
        raise ValueError(f"{name} holds {big:.4g}, beyond the {dtype_name(dtype)} range "
                         f"(max {torch.finfo(dtype).max:.4g}); {_remedy(dtype)}.")
    return out


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def as_points(X: Any, name: str = "X", dtype: torch.dtype = torch.float32,
              device: torch.device | None = None) -> torch.Tensor:
    """``X`` as a finite 2-D (n, d) tensor of ``dtype`` on ``device``."""
    if isinstance(X, torch.Tensor):
        t = X.detach()
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{name} cannot be read as a numeric array ({error_text(exc)}).") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}.")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise ValueError(f"{name} must be real, got a complex array.")
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_points, n_features), got shape {tuple(t.shape)}.")
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"{name} must have at least one point and one feature, got shape {tuple(t.shape)}.")
    _check_finite(t, name)
    return _cast(t, name, dtype, device).contiguous()


def as_weights(w: Any, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Sample weights (n,): ones when None; finite, non-negative, not all zero, sum within ``dtype``."""
    if w is None:
        return torch.ones(n, dtype=dtype, device=device)
    if isinstance(w, torch.Tensor):
        t = w.detach()
    else:
        try:
            t = torch.from_numpy(np.asarray(w, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sample_weight cannot be read as numbers ({error_text(exc)}).") from None
    if t.is_complex() or not (t.is_floating_point() or t.dtype in _INTEGER_DTYPES):
        raise ValueError(f"sample_weight must be real numbers, got dtype {t.dtype}.")
    t = t.reshape(-1) if t.ndim <= 1 else t
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},), got {tuple(t.shape)}.")
    _check_finite(t, "sample_weight")
    if bool((t < 0).any()):
        i = int((t < 0).nonzero()[0, 0])
        raise ValueError(f"sample_weight must be non-negative, got {float(t[i])} at index {i}.")
    total = float(t.double().sum())
    if total <= 0:
        raise ValueError("sample_weight must not sum to zero (every weight is 0).")
    if total > torch.finfo(dtype).max:
        raise ValueError(f"sample_weight sums to {total:.4g} (largest weight {float(t.max()):.4g}), beyond the "
                         f"{dtype_name(dtype)} range; {_remedy(dtype, 'the weights')}.")
    return _cast(t, "sample_weight", dtype, device).contiguous()


_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)


def check_scale(points: list[torch.Tensor], weights: torch.Tensor, name: str = "X") -> None:
    """Refuse data whose squared distances would overflow (or underflow) the compute dtype.

    With R^2 the largest squared norm of any point or initial centroid and W the
    total weight, every squared distance is at most 4 R^2 and every weighted sum of
    them (inertia, k-means++ potentials) at most 4 R^2 W; the torch and faiss
    assignments form ``||x||^2 - 2 x.c + ||c||^2``, which stays under 4 R^2 too.
    So 4 R^2 max(W, 1) must fit in the dtype: then nothing the engine computes from
    the data overflows (the loop still checks, as a backstop, for values that
    heuristic parameters push out of range).  A largest squared norm below the
    dtype's smallest normal number would make every distance round to zero.
    Computed in float64 from the already cast points.
    """
    dtype = points[0].dtype
    info = torch.finfo(dtype)
    r2 = max(float(torch.linalg.vector_norm(p, dim=1, dtype=torch.float64).max()) ** 2 for p in points)
    mass = max(float(weights.double().sum()), 1.0)
    if 4.0 * r2 * mass > info.max:
        raise ValueError(f"{name} is too large for {dtype_name(dtype)}: its largest squared norm {r2:.4g} "
                         f"(x 4 x total weight {mass:.4g}) exceeds {info.max:.4g}, so squared distances "
                         f"would overflow; {_remedy(dtype)}.")
    if 0.0 < r2 < info.tiny:
        raise ValueError(f"{name} is too small for {dtype_name(dtype)}: its largest squared norm {r2:.4g} is "
                         f"below {info.tiny:.4g}, so squared distances would round to zero; {_remedy(dtype)}.")


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
