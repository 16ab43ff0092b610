"""The small benchmark subset CI gates on (marker ``ci_bench``).

Short but not tiny (0.02 to 0.5 s per call, 7 to 15 rounds).  CI runs it twice,
saving a baseline and then comparing against it through ``time_gate.py``, which
re-runs a benchmark over the time threshold up to twice before failing (exact
commands and the measured pass rate in docs/benchmarking.md, "CI gate"); the plain
pytest-benchmark form of the gate::

    OMP_NUM_THREADS=1 pytest tests/benchmarks -m ci_bench --benchmark-only --benchmark-timer=time.process_time --benchmark-storage=.benchmarks/ci --benchmark-save=baseline
    OMP_NUM_THREADS=1 pytest tests/benchmarks -m ci_bench --benchmark-only --benchmark-timer=time.process_time --benchmark-storage=.benchmarks/ci --benchmark-compare --benchmark-compare-fail=min:60%

The quality values each benchmark records in ``extra_info`` are compared with the
baseline's exactly (``quality_gate.py``), the fastest round's CPU time within 60 %.
"""

from __future__ import annotations

import functools

import pytest
import torch

import pgbench
from pgbench import backends, synthetic

pytestmark = pytest.mark.ci_bench


@functools.lru_cache(maxsize=1)
def ci_layer() -> tuple[torch.Tensor, int]:
    """16,384 x 4 layer-shaped sub-vectors, k = 256."""
    return synthetic.layer_subvectors(16_384, 4, std=0.04, seed=0), 256


@pytest.mark.parametrize("method", [("random", "none"), ("pg", "pg"), ("fairseq", "fairseq")],
                         ids=["plain", "pg", "fairseq"])
def test_ci_fit(benchmark, record, method):
    X, k = ci_layer()
    init, resolve = method
    result = benchmark.pedantic(pgbench.kmeans, args=(X, k),
                                kwargs=dict(init=init, resolve=resolve, n_iter=15, seed=0),
                                rounds=7, iterations=1, warmup_rounds=1)
    record(result, X, dataset="ci_layer")
    if method == ("pg", "pg"):
        assert result.n_empty_final == 0


# Only the CPU default backend: the chunked torch assignment is cache-bound, and its
# median moved by 25 % between identical runs when another job shared the machine.
@pytest.mark.parametrize("backend", ["faiss"])
def test_ci_assign(benchmark, backend):
    X, k = ci_layer()
    C = X[torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(0))[:k]].clone()
    assign = backends.make_assign(backend, X)
    labels, _ = benchmark.pedantic(assign, args=(X, C), rounds=15, iterations=3, warmup_rounds=2)
    benchmark.extra_info.update(n=int(X.shape[0]), d=int(X.shape[1]), k=k, device="cpu", backend=backend)
    assert int(labels.max()) < k
