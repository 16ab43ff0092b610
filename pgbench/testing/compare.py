"""Validity tests and comparisons the checks share.

Each ``*_problem`` function returns ``None`` when all is well, else one line
saying what is wrong, which the check turns into its failure message.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..engine import _update
from .subject import Call

COUNT_FIELDS = ("n_found", "n_resolved", "n_left", "rounds")
FLAG_FIELDS = ("gave_up", "stop")
SCALARS = (bool, int, float, str, type(None))


def tensor_problem(t: Any, what: str) -> str | None:
    if not isinstance(t, torch.Tensor):
        return f"{what} is a {type(t).__name__}, not a torch.Tensor"
    return None


def nonfinite_problem(t: torch.Tensor, what: str) -> str | None:
    if t.is_floating_point():
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            return f"{what} has {bad} NaN or Inf values (of {t.numel()})"
    return None


def index_problem(t: Any, what: str, n: int, bound: int, bound_name: str) -> str | None:
    """``t`` must be an int64 tensor of shape (n,) with values in [0, bound)."""
    problem = tensor_problem(t, what)
    if problem:
        return problem
    if t.dtype != torch.int64:
        return f"{what} has dtype {t.dtype}, not torch.int64"
    if tuple(t.shape) != (n,):
        return f"{what} has shape {tuple(t.shape)}, not (n,) = ({n},)"
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= bound:
        return f"{what} run from {lo} to {hi}, outside [0, {bound_name}={bound})"
    return None


def info_problem(info: Any) -> str | None:
    """``info`` must be a dict of plain scalars (it ends up in logs and result rows)."""
    if not isinstance(info, dict):
        return f"info is a {type(info).__name__}, not a dict"
    for key, value in info.items():
        if not isinstance(key, str) or not isinstance(value, SCALARS):
            return (f"info[{key!r}] is a {type(value).__name__}: info holds plain numbers, strings "
                    "and booleans under string keys")
    return None


def outcome_field_problem(out: Any) -> str | None:
    """A ResolveOutcome's counts must be non-negative Python ints and its flags bools."""
    for name in COUNT_FIELDS:
        value = getattr(out, name)
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name}={value!r} is a {type(value).__name__}, not an int"
        if value < 0:
            return f"{name}={value} is negative"
    for name in FLAG_FIELDS:
        if not isinstance(getattr(out, name), bool):
            return f"{name}={getattr(out, name)!r} is not a bool"
    return None


def representatives_problem(X: torch.Tensor, reps: torch.Tensor, members: torch.Tensor) -> str | None:
    """Each consolidated point must lie in the bounding box of its members (any mean or medoid does)."""
    m, d = reps.shape
    index = members[:, None].expand(-1, d)
    lo = torch.full((m, d), math.inf, dtype=X.dtype, device=X.device).scatter_reduce(0, index, X, "amin")
    hi = torch.full((m, d), -math.inf, dtype=X.dtype, device=X.device).scatter_reduce(0, index, X, "amax")
    tol = 1e-5 * float(X.abs().max()) + 1e-30
    outside = ((reps < lo - tol) | (reps > hi + tol)).any(1)
    if bool(outside.any()):
        return f"{int(outside.sum())} consolidated points lie outside the bounding box of their members"
    return None


def _same(a: Any, b: Any, rtol: float, atol: float) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        a, b = a.detach().cpu(), b.detach().cpu()
        if a.is_floating_point():
            return bool(torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))
        return bool(torch.equal(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rtol, abs_tol=atol) or a == b
    return type(a) is type(b) and a == b


def differences(a: dict[str, Any], b: dict[str, Any], rtol: float = 0.0, atol: float = 0.0) -> list[str]:
    """Keys whose values differ (exactly by default; floats within ``rtol``/``atol`` otherwise)."""
    return [key for key in sorted(set(a) | set(b))
            if key not in a or key not in b or not _same(a[key], b[key], rtol, atol)]


def rows_match(A: torch.Tensor, B: torch.Tensor, atol: float) -> bool:
    """Whether the rows of ``A`` (k, d) and ``B`` (k, d) pair up one to one within ``atol``."""
    if A.shape != B.shape:
        return False
    dist = torch.cdist(A.double().cpu(), B.double().cpu())                  # (k, k)
    free = torch.ones(B.shape[0], dtype=torch.bool)
    for i in range(A.shape[0]):
        near = torch.nonzero(free & (dist[i] <= atol)).flatten()
        if near.numel() == 0:
            return False
        free[near[0]] = False
    return True


def inertia(X: torch.Tensor, w: torch.Tensor, C: torch.Tensor) -> float:
    """sum_i w_i min_j |x_i - c_j|^2 in float64."""
    d2 = torch.cdist(X.double().cpu(), C.double().cpu()).pow(2)             # (n, k)
    return float((d2.min(1).values * w.double().cpu()).sum())


def _distortion(X: torch.Tensor, w: torch.Tensor, reps: torch.Tensor, members: torch.Tensor) -> float:
    """sum_i w_i |x_i - reps[members_i]|^2: what consolidating moved, in float64."""
    return float((((X.double() - reps.double()[members]) ** 2).sum(1) * w.double()).sum())


def _close(a: float, b: float, rtol: float) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-300)


def same_result(stage: str, a: Call, b: Call, rtol: float) -> str | None:
    """Whether call ``a`` (weighted data) and ``b`` (its duplicated twin) agree.

    init: the centroids, up to order, else the inertia on the data.  resolve: the
    centroids after the engine's step (the update follows a ``before_update``
    resolver), up to order, else the inertia.  consolidate: the (point, weight)
    pairs, up to order, else the same count and distortion.
    """
    atol = 1e-5 * float(a.data.X.abs().max())
    if stage == "consolidate":
        pa = torch.cat([a.outcome.X, a.outcome.weights[:, None]], 1)
        pb = torch.cat([b.outcome.X, b.outcome.weights[:, None]], 1)
        if rows_match(pa, pb, atol):
            return None
        da = _distortion(a.data.X, a.data.weights, a.outcome.X, a.outcome.members)
        db = _distortion(b.data.X, b.data.weights, b.outcome.X, b.outcome.members)
        if pa.shape == pb.shape and _close(da, db, rtol):
            return None
        return (f"consolidated points differ: {pa.shape[0]} weighted vs {pb.shape[0]} duplicated, "
                f"distortion {da:.6g} vs {db:.6g}")
    if stage == "resolve":
        for call in (a, b):
            if call.timing == "before_update" and not call.outcome.stop:
                _update(call.state)
        Ca, Cb = a.state.centroids, b.state.centroids
    else:
        Ca, Cb = a.outcome.centroids, b.outcome.centroids
    if rows_match(Ca, Cb, atol):
        return None
    ia, ib = inertia(a.data.X, a.data.weights, Ca), inertia(b.data.X, b.data.weights, Cb)
    if _close(ia, ib, rtol):
        return None
    return f"centroids differ and inertia {ia:.6g} (weighted) vs {ib:.6g} (duplicated)"
