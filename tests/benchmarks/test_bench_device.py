"""One Lloyd iteration against the device's GEMM floor, on CPU and (when present) CUDA; faiss-gpu beside it.

Issue 12, part 4: the GPU path, measured.  On a device, one Lloyd iteration of
the engine (an assignment by the torch backend's ``||x||^2 - 2 x.c + ||c||^2``
plus the update) cannot be faster than the GEMM inside its assignment, ``2 n k d``
flops.  The floor is ``2 n k d / rate``, where ``rate`` is the device's GEMM rate
measured here on a square float32 matmul (what the device can do when the GEMM is
compute-bound; at d = 4 the assignment's GEMM is memory-bound, which is the
point of stating the ratio).  ``extra_info`` gets ``gemm_tflops``,
``floor_seconds`` and ``ratio_vs_floor`` (median iteration / floor).

The CPU variant is the CUDA variant's twin: the same code on the CPU, on a
smaller set unless ``PGBENCH_BIG=1`` (then the full 589,824 x 4, k = 3072 set the
issue names).  The CUDA variants skip without a GPU, and the faiss-gpu one also
without faiss-gpu.  Run on a GPU machine::

    PGBENCH_BIG=1 pytest tests/benchmarks/test_bench_device.py --benchmark-json /tmp/device.json
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pytest
import torch

import pgbench
from pgbench import backends, synthetic

SEED = 0
ROUNDS = 3
BIG = os.environ.get("PGBENCH_BIG") == "1"

only_if_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, only_if_cuda])]


def shape(device: str) -> tuple[int, int]:
    """(n, k): the issue's full set on a GPU or with PGBENCH_BIG=1, a small one for the CPU twin otherwise."""
    return (589_824, 3072) if BIG or device == "cuda" else (65_536, 512)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def gemm_tflops(device: str, size: int = 2048, repeats: int = 5) -> float:
    """The device's float32 GEMM rate (TFLOP/s): the best of ``repeats`` square ``size`` matmuls."""
    g = torch.Generator().manual_seed(SEED)
    a = torch.randn(size, size, generator=g).to(device)
    b = torch.randn(size, size, generator=g).to(device)
    a @ b                                   # warm-up (kernel selection, thread pool)
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best / 1e12


def data(device: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    n, k = shape(device)
    X = synthetic.layer_subvectors(n, 4, seed=SEED)
    g = torch.Generator().manual_seed(SEED)
    C0 = X[torch.randperm(n, generator=g)[:k]].clone()
    return X.to(device), C0.to(device), k


@pytest.mark.parametrize("device", DEVICES)
def test_one_lloyd_iteration_against_the_gemm_floor(benchmark, device):
    """One engine iteration (torch backend) from an explicit init, against 2 n k d flops at the GEMM rate."""
    X, C0, k = data(device)

    def one_iteration():
        r = pgbench.kmeans(X, k, init=C0, resolve="none", n_iter=1, seed=SEED, device=device, backend="torch")
        sync(device)
        return r

    result = benchmark.pedantic(one_iteration, rounds=ROUNDS, warmup_rounds=1)
    n, d = X.shape
    rate = gemm_tflops(device)
    floor = 2 * n * k * d / (rate * 1e12)
    benchmark.extra_info.update(n=n, k=k, d=d, device=device, gemm_tflops=rate, floor_seconds=floor)
    if benchmark.stats is not None:          # timed runs (not --benchmark-disable)
        benchmark.extra_info["ratio_vs_floor"] = benchmark.stats.stats.median / floor
    if device == "cuda":
        benchmark.extra_info["cuda_device"] = torch.cuda.get_device_name(0)
    assert result.centroids.shape == (k, d) and bool(torch.isfinite(result.centroids).all())
    assert result.inertia >= 0 and floor > 0


def _faiss_kmeans_iteration(faiss, Xnp: np.ndarray, init: np.ndarray, gpu: bool) -> float:
    """One faiss.Kmeans iteration from ``init`` (on the GPU when ``gpu``); returns its objective."""
    km = faiss.Kmeans(Xnp.shape[1], init.shape[0], niter=1, seed=SEED, gpu=gpu, max_points_per_centroid=Xnp.shape[0])
    km.train(Xnp, init_centroids=init)
    return float(km.obj[-1])


@pytest.mark.parametrize("gpu", [False, pytest.param(True, marks=[pytest.mark.cuda, only_if_cuda, pytest.mark.skipif(
    not backends.faiss_has_gpu(), reason="faiss without GPU support (pip install 'pgbench[gpu]')")])],
    ids=["faiss-cpu", "faiss-gpu"])
def test_faiss_on_the_same_set(benchmark, gpu):
    """faiss.Kmeans doing one iteration on the same set, from the same init: the library's own figure."""
    faiss = backends.faiss_module()
    if faiss is None:
        pytest.skip("faiss is not installed")
    X, C0, k = data("cuda" if gpu else "cpu")
    Xnp, init = np.ascontiguousarray(X.cpu().numpy()), np.ascontiguousarray(C0.cpu().numpy())
    objective = benchmark.pedantic(_faiss_kmeans_iteration, args=(faiss, Xnp, init, gpu), rounds=ROUNDS,
                                   warmup_rounds=1)
    benchmark.extra_info.update(n=Xnp.shape[0], k=k, gpu=gpu)
    if benchmark.stats is not None:
        benchmark.extra_info["median_seconds"] = statistics.median(benchmark.stats.stats.data)
    assert objective > 0
