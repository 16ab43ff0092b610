"""k-means++ seeding: pgbench's ``kmeans++`` init against faiss's and scikit-learn's (issue 12).

Data: ``pgbench.synthetic.layer_subvectors`` (heavy-tailed, std 0.04) at the
attention shapes 36,864 x 4 and 147,456 x 4 and the FFN shape 589,824 x 4
(``big``: skipped unless ``PGBENCH_BIG=1``), k = 3072, seed 0; and, in the dense
mode (d > 4), the FFN weight cut into blocks of 8 (294,912 x 8, ``big``)::

    OMP_NUM_THREADS=1 pytest tests/benchmarks/test_bench_kmeanspp.py --benchmark-only --benchmark-json /tmp/kpp.json
    OMP_NUM_THREADS=1 PGBENCH_BIG=1 pytest tests/benchmarks/test_bench_kmeanspp.py -m big --benchmark-only

pgbench's greedy k-means++ (2 + floor(ln k) local trials, scikit-learn's law) is
timed by pytest-benchmark.  The references run inside pedantic's untimed
``setup``, so all three interleave round by round and a load change on a shared
machine hits them alike: faiss's k-means++ (``ClusteringInitialization`` with
``ClusteringInitMethod_KMEANS_PLUS_PLUS``: one candidate per step, unweighted,
first centre uniform) and ``sklearn.cluster.kmeans_plusplus`` (the same greedy
law as ours).

``extra_info``: ``seconds`` (every round), ``seconds_min`` / ``seconds_median``
and the same for ``faiss_`` and ``sklearn_``; ``ratio_vs_faiss`` and
``ratio_vs_sklearn`` (median / median, as the engine benchmarks) and
``ratio_vs_faiss_min`` / ``ratio_vs_sklearn_min`` (min / min); the potentials
sum_i min_j |x_i - c_j|^2 of the three seedings (``potential``,
``faiss_potential``, ``sklearn_potential``); ``n_distance_evals`` (point-candidate
distances computed) and ``distance_fraction`` (of the (k - 1) * trials * n of a
full pass).  Under ``--benchmark-disable`` (the normal test run) only our seeding
runs, once, with its checks.
"""

from __future__ import annotations

import functools
import statistics

import numpy as np
import pytest
import torch
from test_bench_engine import Reference, big, only_if_big, only_if_cuda

from pgbench import backends, registry, synthetic
from pgbench.heuristics._greedy_kmeanspp import PRUNE_MAX_DIM

K = 3072
SEED = 0
ROUNDS = 3

init_kmeanspp = registry.get("init", "kmeans++")


@functools.lru_cache(maxsize=1)
def layer(n: int, d: int = 4) -> tuple[torch.Tensor, np.ndarray]:
    """X (n, d) float32 layer sub-vectors, and X as a C-contiguous numpy array."""
    X = synthetic.layer_subvectors(n, d, seed=SEED)
    return X, np.ascontiguousarray(X.numpy())


def faiss_kmeanspp(Xnp: np.ndarray, k: int) -> np.ndarray:
    """faiss's k-means++ seeding of all of Xnp (n, d): centres (k, d)."""
    faiss = backends.faiss_module()
    init = faiss.ClusteringInitialization(Xnp.shape[1], k)
    init.method = faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS
    init.seed = SEED
    centres = np.empty((k, Xnp.shape[1]), dtype=np.float32)
    init.init_centroids(Xnp.shape[0], faiss.swig_ptr(Xnp), faiss.swig_ptr(centres))
    return centres


def sklearn_kmeanspp(Xnp: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import kmeans_plusplus  # noqa: PLC0415

    return kmeans_plusplus(Xnp, k, random_state=SEED)[0]


def potential(X: torch.Tensor, centres) -> float:
    """sum_i min_j |x_i - c_j|^2 in float64 (exact faiss search)."""
    _, sq = backends.FaissAssign(X)(X, torch.as_tensor(np.asarray(centres), dtype=torch.float32))
    return float(sq.double().sum())


def seed_ours(X: torch.Tensor):
    return init_kmeanspp(X, torch.ones(X.shape[0]), K, torch.Generator().manual_seed(SEED),
                         n_local_trials=None)


def _run(benchmark, n: int, d: int = 4) -> None:
    X, Xnp = layer(n, d)
    refs = {"faiss": Reference(lambda: faiss_kmeanspp(Xnp, K)),
            "sklearn": Reference(lambda: sklearn_kmeanspp(Xnp, K))}

    def setup():
        if not benchmark.disabled:
            for ref in refs.values():
                ref()

    out = benchmark.pedantic(seed_ours, args=(X,), setup=setup, rounds=ROUNDS, warmup_rounds=0)
    full = (K - 1) * out.info["n_local_trials"] * n
    info = benchmark.extra_info
    info.update(n=n, d=d, k=K, device="cpu", init="kmeans++", potential=out.info["potential"],
                n_distance_evals=out.info["n_distance_evals"], distance_fraction=out.info["n_distance_evals"] / full)
    if benchmark.stats is not None:                       # None under --benchmark-disable
        ours = benchmark.stats.stats.data
        info.update(seconds=list(ours), seconds_min=min(ours), seconds_median=statistics.median(ours))
        for name, ref in refs.items():
            info.update({f"{name}_seconds": ref.seconds, f"{name}_seconds_min": min(ref.seconds),
                         f"{name}_seconds_median": ref.median, f"{name}_potential": potential(X, ref.last),
                         f"ratio_vs_{name}": info["seconds_median"] / ref.median,
                         f"ratio_vs_{name}_min": info["seconds_min"] / min(ref.seconds)})
    # k distinct data rows, the potential our bookkeeping reports, and the pruning at work
    assert torch.unique(out.centroids, dim=0).shape[0] == K
    assert out.info["potential"] == pytest.approx(potential(X, out.centroids), rel=1e-4)
    if d <= PRUNE_MAX_DIM:
        assert out.info["pruned"] and info["distance_fraction"] < 0.1
    else:
        assert not out.info["pruned"] and info["distance_fraction"] == 1.0


@pytest.mark.parametrize("n", [36_864, 147_456], ids=["attn-36864", "attn-147456"])
def test_kmeanspp_vs_faiss_and_sklearn(benchmark, n):
    """Attention shapes (a 768 x 192 or 768 x 768 projection cut into blocks of 4)."""
    _run(benchmark, n)


@big
@only_if_big
def test_kmeanspp_ffn_vs_faiss_and_sklearn(benchmark):
    """FFN shape (a 768 x 3072 weight cut into blocks of 4): minutes, sklearn's seeding most of them."""
    _run(benchmark, 589_824)


@big
@only_if_big
def test_kmeanspp_dense_ffn_d8_vs_faiss_and_sklearn(benchmark):
    """Dense mode: the FFN weight cut into blocks of 8 (294,912 x 8), every distance computed."""
    _run(benchmark, 294_912, 8)


@pytest.mark.ci_bench
def test_ci_kmeanspp(benchmark):
    """The CI gate's seeding case: 16,384 x 4, k = 256 (about 0.1 s)."""
    X = synthetic.layer_subvectors(16_384, 4, seed=SEED)

    def setup():                                          # a fresh generator per round
        return (X, torch.ones(16_384), 256, torch.Generator().manual_seed(SEED)), {"n_local_trials": None}

    out = benchmark.pedantic(init_kmeanspp, setup=setup, rounds=7, warmup_rounds=1)
    benchmark.extra_info.update(n=16_384, d=4, k=256, device="cpu", init="kmeans++",
                                n_distance_evals=out.info["n_distance_evals"])
    assert torch.unique(out.centroids, dim=0).shape[0] == 256


@pytest.mark.cuda
@only_if_cuda
def test_kmeanspp_cuda(benchmark):
    """The same seeding on the GPU at 147,456 x 4, synchronised inside the timed call."""
    X = layer(147_456)[0].cuda()

    def seed():
        out = init_kmeanspp(X, torch.ones(X.shape[0], device="cuda"), K, torch.Generator().manual_seed(SEED),
                            n_local_trials=None)
        torch.cuda.synchronize()
        return out

    out = benchmark.pedantic(seed, rounds=ROUNDS, warmup_rounds=1)
    benchmark.extra_info.update(n=X.shape[0], d=4, k=K, device="cuda", init="kmeans++",
                                cuda_device=torch.cuda.get_device_name(0),
                                n_distance_evals=out.info["n_distance_evals"])
    assert out.centroids.device.type == "cuda" and torch.unique(out.centroids, dim=0).shape[0] == K
