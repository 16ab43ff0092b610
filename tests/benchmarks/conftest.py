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


def pytest_sessionfinish(session, exitstatus):
    """With ``--benchmark-compare``: fail when a quality value in ``extra_info`` differs from the baseline's.

    Runs after pytest-benchmark loaded the baseline (its ``pytest_sessionfinish`` is a
    wrapper around this one); the rule is in ``quality_gate.py``.
    """
    bench = getattr(session.config, "_benchmarksession", None)
    if bench is None or not getattr(bench, "compared_mapping", None):
        return
    from quality_gate import mismatches

    now = {b.fullname: dict(b.extra_info) for b in bench.benchmarks if b}
    found = []
    for path, baseline in bench.compared_mapping.items():
        found += mismatches({name: dict(b.get("extra_info") or {}) for name, b in baseline.items()}, now)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        for line in found:
            reporter.write_line(f"quality gate: {line}", red=True)
    if found and session.exitstatus == 0:
        session.exitstatus = 1
    elif reporter is not None and not found:
        reporter.write_line(f"quality gate: extra_info identical to the baseline in {len(now)} benchmark(s)")
