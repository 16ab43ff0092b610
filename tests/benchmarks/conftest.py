"""Fixtures of the pytest-benchmark suite (cases live in ``_bench_cases.py``)."""

from __future__ import annotations

import pytest
from _bench_cases import small_set


@pytest.fixture
def data():
    """``data(name) -> (X, k)`` for a name of ``SMALL_SETS`` (cached for the session)."""
    return small_set


@pytest.fixture
def record(benchmark):
    """``record(result, X, **more)``: put the run's quality numbers into ``benchmark.extra_info``.

    Works after ``benchmark.pedantic`` returned (pytest-benchmark keeps a reference
    to the dict), and is harmless under ``--benchmark-disable`` (no JSON is written).
    """

    def _record(result, X, **more):
        benchmark.extra_info.update(
            n_empty_final=result.n_empty_final, rounds=result.rounds_total, inertia=result.inertia,
            status=result.status, n=int(X.shape[0]), d=int(X.shape[1]), k=result.k,
            device=result.device, backend=result.backend, init=result.init, resolve=result.resolve,
            consolidate=result.consolidate, n_iter=result.n_iter, **more)

    return _record
