"""Non-finite values in the middle of a run: the boundary's scale check and the loop's ``diverged`` backstop.

Hand-checked cases first (the overflow threshold, each way a run can go non-finite),
then a property: random finite data with random valid parameters is either refused
at the boundary or gives finite centroids and inertia, and never ``ok`` with a
non-finite inertia.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pgbench
from pgbench import backends, registry
from pgbench.params import Real
from pgbench.result import Status
from pgbench.state import ResolveOutcome

BACKENDS = ["torch"] + (["faiss"] if backends.faiss_module() is not None else [])
F32_MAX = float(torch.finfo(torch.float32).max)


def finite(r) -> bool:
    return math.isfinite(r.inertia) and bool(torch.isfinite(r.centroids).all())


def blobs(n=60, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.arange(n) % 4)[:, None].double() * 3 + torch.randn(n, 2, generator=g, dtype=torch.float64) * 0.1


# ------------------------------------------------------------------ boundary

@pytest.mark.parametrize("backend", BACKENDS)
def test_data_at_the_overflow_bound_runs_finite_and_just_past_it_is_refused(backend):
    n = 8
    X = torch.zeros(n, 2)
    edge = math.sqrt(F32_MAX / (4 * n)) * 0.999         # 4 R^2 n just under the float32 maximum
    X[0, 0], X[1, 1] = edge, -edge
    r = pgbench.kmeans(X, 2, init="random", resolve="sklearn", n_iter=3, backend=backend)
    assert r.status == "ok" and finite(r) and r.inertia > 1e36     # far points share a cluster
    X[0, 0] = edge * 1.01
    with pytest.raises(ValueError, match=r"too large for float32: its largest squared norm .* exceeds 3.403e\+38"):
        pgbench.kmeans(X, 2, init="random", resolve="sklearn", n_iter=3, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_what_used_to_crash_or_store_nan_is_refused_and_float64_clusters_it(backend):
    """|x| ~ 1e19: faiss crashed in bincount on label -1, torch returned status ok with inertia nan."""
    X = blobs() * 1e19
    with pytest.raises(ValueError, match="rescale it or use dtype='float64'"):
        pgbench.kmeans(X.float(), 4, init="pg", resolve="pg", backend=backend)
    big = pgbench.kmeans(X, 4, init="pg", resolve="pg", dtype="float64", backend="torch")
    small = pgbench.kmeans(blobs(), 4, init="pg", resolve="pg", dtype="float64", backend="torch")
    assert big.status == "ok" and finite(big) and torch.equal(big.labels, small.labels)   # scale-free heuristics
    assert big.inertia == pytest.approx(small.inertia * 1e38, rel=1e-9)


def test_weights_count_in_the_bound():
    X = blobs().float() * 1e16
    pgbench.kmeans(X, 4, init="random", resolve="sklearn", n_iter=2)                       # 4 R^2 n fits
    with pytest.raises(ValueError, match=r"total weight 6e\+04"):
        pgbench.kmeans(X, 4, init="random", resolve="sklearn", n_iter=2, sample_weight=[1e3] * 60)


def test_squares_that_underflow_are_refused_but_all_zero_data_is_fine():
    with pytest.raises(ValueError, match="too small for float32"):
        pgbench.kmeans(torch.full((6, 2), 1e-25), 2)
    r = pgbench.kmeans(torch.zeros(6, 2), 2, init="random", resolve="none", n_iter=2)
    assert finite(r) and r.inertia == 0.0


# ---------------------------------------------------------------- backstop

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("eps", [1e30, 1e38])
def test_a_huge_fairseq_split_noise_ends_diverged_with_the_last_finite_centroids(backend, eps):
    """eps = 1e30 is a legal float, but moves split centroids so far that float32 distances overflow."""
    X = blobs().float()
    init = X[torch.tensor([0, 0, 1, 2])].clone()                    # a duplicate: cluster 1 starts empty
    r = pgbench.kmeans(X, 4, init=init, resolve="fairseq", eps=eps, backend=backend, n_iter=5)
    assert r.status == "diverged" and r.n_iter == 0 and finite(r)
    assert r.message.startswith("iteration 0, resolver 'fairseq': the assignment overflowed float32")
    assert torch.equal(r.centroids, init)                                    # rolled back to what was assignable
    assert r.inertia == pytest.approx(float(((X - init[r.labels]) ** 2).sum()), rel=1e-5)


def test_a_resolver_that_writes_nan_ends_diverged_after_the_iterations_that_worked():
    calls = []

    def resolve_poison(state, rng, *, after):
        calls.append(1)
        if len(calls) > after:
            state.centroids[0] = float("nan")
        return ResolveOutcome()

    registry.register("resolve", "test_poison", params=[Real("after", 2.0, help="clean calls")],
                      when="after_update")(resolve_poison)
    try:
        X = blobs().float()
        r = pgbench.kmeans(X, 4, init="pg", resolve="test_poison", n_iter=6, backend="torch")
        assert r.status == "diverged" and r.n_iter == 2 and len(calls) == 3 and finite(r)
        assert "iteration 2, resolver 'test_poison': 1 of 4 centroids became non-finite" in r.message
        assert r.status in set(Status)
    finally:
        registry._REGISTRY["resolve"].pop("test_poison")


def test_an_init_that_returns_nan_is_a_heuristic_error_not_a_result():
    from pgbench.state import InitOutcome

    registry.register("init", "test_nan")(lambda X, weights, k, rng: InitOutcome(torch.full((k, X.shape[1]), math.nan)))
    try:
        with pytest.raises(RuntimeError, match="init heuristic 'test_nan' returned non-finite centroids"):
            pgbench.kmeans(blobs(), 4, init="test_nan", resolve="none")
    finally:
        registry._REGISTRY["init"].pop("test_nan")


def test_a_huge_dwc_eps_is_legal_and_consolidates_everything_it_can():
    X = blobs().float()
    r = pgbench.kmeans(X, 2, init="pg", resolve="pg", consolidate="dwc", dwc_eps=1e308, c_mc=0.0)
    assert finite(r) and r.consolidate_info["eps_initial"] == 1e308


# ---------------------------------------------------------------- property

def _resolve_params(draw, resolve):
    if resolve == "fairseq":
        return {"eps": draw(st.sampled_from([0.0, 1e-6, 1.0, 1e10, 1e30, 3e38])),
                "max_tentatives": draw(st.integers(0, 5))}
    if resolve == "faiss":
        return {"eps": draw(st.sampled_from([0.0, 1 / 1024, 0.5, 0.999])), "max_visits": draw(st.integers(0, 50))}
    if resolve == "pg":
        return {"max_passes": draw(st.integers(0, 4)), "patience": draw(st.integers(1, 3)),
                "large_factor": draw(st.sampled_from([1e-30, 0.5, 1.0, 4.0, 1e30]))}
    return {}


@st.composite
def runs(draw):
    n, d = draw(st.integers(2, 30)), draw(st.integers(1, 3))
    base = draw(st.lists(st.integers(-3, 3), min_size=n * d, max_size=n * d))
    scale = 10.0 ** draw(st.integers(-20, 40))
    X = np.asarray(base, dtype=np.float64).reshape(n, d) * scale
    if draw(st.booleans()):                                          # duplicate a block of points
        X[n // 2:] = X[: n - n // 2]
    k = draw(st.integers(1, n))
    resolve = draw(st.sampled_from(["none", "fairseq", "sklearn", "faiss", "pg"]))
    kwargs = dict(init=draw(st.sampled_from(["fairseq", "random", "kmeans++", "pg", "bisecting"])),
                  resolve=resolve, n_iter=draw(st.integers(1, 4)), seed=draw(st.integers(0, 2**32)),
                  dtype=draw(st.sampled_from(["float32", "float64"])),
                  **_resolve_params(draw, resolve))
    kwargs["backend"] = "torch" if kwargs["dtype"] == "float64" else draw(st.sampled_from(BACKENDS))
    if draw(st.booleans()):
        kwargs["sample_weight"] = np.asarray(draw(st.lists(st.sampled_from([0.0, 1e-3, 1.0, 7.0, 1e6]),
                                                           min_size=n, max_size=n))) + 1e-3
    if draw(st.booleans()):
        kwargs["consolidate"] = "dwc"
    return X, k, kwargs


@settings(max_examples=150, deadline=None)
@given(runs())
def test_finite_data_never_gives_a_non_finite_result(run):
    X, k, kwargs = run
    try:
        r = pgbench.kmeans(X, k, **kwargs)
    except ValueError as exc:            # refused at the boundary: only for data past the dtype's range
        assert "too large" in str(exc) or "too small" in str(exc) or "beyond the" in str(exc), exc
        info = torch.finfo(getattr(torch, kwargs["dtype"]))
        r2 = float((X ** 2).sum(1).max())
        mass = max(float(np.sum(kwargs.get("sample_weight", np.ones(len(X))))), 1.0)
        assert 4 * r2 * mass > info.max * 0.99 or 0 < r2 < info.tiny * 1.01, (r2, mass, exc)
        return
    assert r.status in set(Status)
    assert math.isfinite(r.inertia) and bool(torch.isfinite(r.centroids).all()), (r.status, r.message)
    assert r.labels.min() >= 0 and r.labels.max() < k


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_refuses_overflowing_data_and_ends_diverged_like_the_cpu():
    with pytest.raises(ValueError, match="too large for float32"):
        pgbench.kmeans(blobs().float() * 1e19, 4, device="cuda")
    X = blobs().float()
    init = X[torch.tensor([0, 0, 1, 2])].clone()
    cpu = pgbench.kmeans(X, 4, init=init, resolve="fairseq", eps=1e30, backend="torch", n_iter=5)
    gpu = pgbench.kmeans(X, 4, init=init, resolve="fairseq", eps=1e30, device="cuda", n_iter=5)
    assert gpu.status == cpu.status == "diverged" and finite(gpu)
    assert torch.equal(gpu.centroids.cpu(), init) and torch.equal(gpu.labels.cpu(), cpu.labels)
