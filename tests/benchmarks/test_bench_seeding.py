"""Seeding time and quality of k-means|| and AFK-MC^2 against greedy k-means++, on one layer set.

The set is 36,864 x 4 layer-shaped sub-vectors (the size of a 768 x 192 block
cut by 4) with k = 256, where n > m k (m = 200), the regime AFK-MC^2 is built
for.  ``kmeans++`` is timed alone; for each of the other two, k-means++ runs
inside ``benchmark.pedantic``'s untimed ``setup`` (its rounds interleave with
the timed ones, so a load change on a shared machine hits both), and
``extra_info`` gets ``kmeans++_seconds_median``, ``ratio_vs_kmeans++`` (seeding
median over k-means++'s median) and ``potential_ratio_vs_kmeans++`` (the seeds'
potential sum_i min_j |x_i - c_j|^2 over k-means++'s, same seed).  Under
``--benchmark-disable`` each is one untimed call and its asserts.  Time with
``OMP_NUM_THREADS=1``::

    OMP_NUM_THREADS=1 pytest tests/benchmarks/test_bench_seeding.py --benchmark-only --benchmark-json /tmp/seed.json
"""

from __future__ import annotations

import functools
import statistics
import time

import pytest
import torch

from pgbench import registry, synthetic
from pgbench.backends import torch_assign

K = 256
ROUNDS = 5


@functools.lru_cache(maxsize=1)
def layer() -> torch.Tensor:
    """(36864, 4) float32 heavy-tailed sub-vectors."""
    return synthetic.layer_subvectors(36_864, 4, std=0.04, seed=0)


def seed_with(name: str):
    """Seeding with init heuristic ``name`` and its defaults, generator seeded with 0."""
    X = layer()
    h = registry.get("init", name)
    w = torch.ones(X.shape[0])
    return lambda: h(X, w, K, torch.Generator().manual_seed(0))


def potential(C: torch.Tensor) -> float:
    return float(torch_assign(layer(), C)[1].double().sum())


def test_seeding_kmeanspp(benchmark):
    out = benchmark.pedantic(seed_with("kmeans++"), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(init="kmeans++", n=layer().shape[0], d=4, k=K, potential=potential(out.centroids))


@pytest.mark.parametrize("name", ["kmeans-parallel", "afkmc2"])
def test_seeding_vs_kmeanspp(benchmark, name):
    reference = seed_with("kmeans++")
    ref_seconds, ref_out = [], []

    def setup():
        t0 = time.perf_counter()
        ref_out[:] = [reference()]
        ref_seconds.append(time.perf_counter() - t0)

    out = benchmark.pedantic(seed_with(name), setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    ratio = potential(out.centroids) / potential(ref_out[0].centroids)
    benchmark.extra_info.update({"init": name, "n": layer().shape[0], "d": 4, "k": K,
                                 "kmeans++_seconds_median": statistics.median(ref_seconds),
                                 "potential_ratio_vs_kmeans++": ratio, **out.info})
    if benchmark.stats is not None:          # None under --benchmark-disable
        benchmark.extra_info["ratio_vs_kmeans++"] = benchmark.stats.stats.median / statistics.median(ref_seconds)
    assert out.centroids.shape == (K, 4) and torch.isfinite(out.centroids).all()
    assert ratio < 1.5                       # a seeding, not a random draw: near k-means++'s potential
