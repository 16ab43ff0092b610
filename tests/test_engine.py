"""Engine contracts: validation, determinism, trace, statuses, backends, CUDA twin."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pgbench
from pgbench import backends, registry
from pgbench.synthetic import gaussian_mixture, layer_subvectors

INITS = registry.names("init")
RESOLVES = registry.names("resolve")


@pytest.fixture(scope="module")
def blobs():
    return gaussian_mixture(600, 3, 6, std=0.02, seed=3)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("bad, message", [
    (lambda X: X.clone().index_fill_(0, torch.tensor([3]), float("nan")), "NaN or Inf"),
    (lambda X: X.clone().index_fill_(0, torch.tensor([3]), float("inf")), "NaN or Inf"),
    (lambda X: X[:, 0], "2-D"),
    (lambda X: X[:0], "at least one point"),
    (lambda X: np.array([["a", "b"]]), "numeric"),
])
def test_bad_points_are_one_line_value_errors(blobs, bad, message):
    with pytest.raises(ValueError, match=message) as info:
        pgbench.kmeans(bad(blobs), 4)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "at least 1"),
    ({"k": 601}, "larger than the number of points"),
    ({"k": 2.5}, "integer"),
    ({"k": 4, "init": "nope"}, r"unknown init heuristic 'nope' \(known: afkmc2, bisecting, fairseq"),
    ({"k": 4, "resolve": "nope"}, "unknown resolve heuristic 'nope'"),
    ({"k": 4, "consolidate": "nope"}, "unknown consolidate heuristic 'nope'"),
    ({"k": 4, "resolve": "fairseq", "patience": 3}, "parameter 'patience' is not taken"),
    ({"k": 4, "resolve": "fairseq", "max_tentatives": "many"}, "must be int"),
    ({"k": 4, "init": np.zeros((4, 2))}, r"init centroids must have shape \(4, 3\)"),
    ({"k": 4, "sample_weight": np.ones(5)}, r"sample_weight must have shape \(600,\)"),
    ({"k": 4, "sample_weight": -np.ones(600)}, "non-negative"),
    ({"k": 4, "sample_weight": np.full(600, np.nan)}, "NaN or Inf"),
    ({"k": 4, "n_iter": 0}, "n_iter must be a positive integer"),
    ({"k": 4, "device": "tpu"}, "device"),
    ({"k": 4, "backend": "annoy"}, "unknown backend"),
    ({"k": 4, "backend": "faiss", "dtype": "float64"}, "float32"),
    ({"k": 4, "seed": -1}, "seed"),
])
def test_bad_arguments_raise_before_work(blobs, kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        pgbench.kmeans(blobs, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_request_without_gpu_is_a_clear_error(blobs):
    with pytest.raises(ValueError, match="CUDA is not available"):
        pgbench.kmeans(blobs, 4, device="cuda")


# ---------------------------------------------------------------- every combination runs

@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("resolve", RESOLVES)
def test_every_combination_runs_and_reports(blobs, init, resolve):
    r = pgbench.kmeans(blobs, 12, init=init, resolve=resolve, n_iter=4, seed=1)
    assert r.centroids.shape == (12, 3) and r.labels.shape == (600,)
    assert r.status in ("ok", "unresolved", "stopped")
    assert len(r.trace) == r.n_iter <= 4
    assert r.n_empty_final == int((torch.bincount(r.labels, minlength=12) == 0).sum())
    assert r.params["resolve"] == registry.get("resolve", resolve).defaults
    assert all(s.seconds_assign >= 0 and s.inertia >= 0 for s in r.trace)


# ---------------------------------------------------------------- hand-checked engine behaviour

def test_plain_lloyd_on_a_hand_checked_case():
    X = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    r = pgbench.kmeans(X, 2, init=torch.tensor([[0.0], [1.0]]), resolve="none", n_iter=3, backend="torch")
    # iteration 0: {0}, {1, 10, 11} -> centroids 0, 22/3; iteration 1: {0, 1}, {10, 11} -> 0.5, 10.5
    assert r.trace[0].inertia == pytest.approx(0.0 + 0.0 + 81.0 + 100.0)
    assert r.centroids.flatten().tolist() == pytest.approx([0.5, 10.5])
    assert r.labels.tolist() == [0, 0, 1, 1]
    assert r.inertia == pytest.approx(4 * 0.25)
    assert r.status == "ok" and r.init == "explicit"


def test_sample_weight_moves_the_mean():
    X = torch.tensor([[0.0], [1.0], [10.0]])
    r = pgbench.kmeans(X, 2, init=torch.tensor([[0.0], [10.0]]), resolve="none", n_iter=2,
                       sample_weight=[1.0, 3.0, 1.0], backend="torch")
    assert r.centroids.flatten().tolist() == pytest.approx([0.75, 10.0])


def test_empty_cluster_keeps_its_centroid_under_resolve_none():
    X = torch.tensor([[0.0], [1.0], [2.0]])
    r = pgbench.kmeans(X, 2, init=torch.tensor([[1.0], [100.0]]), resolve="none", n_iter=2, backend="torch")
    assert r.centroids[1].item() == 100.0
    assert r.trace[0].n_empty_assigned == 1 and r.n_empty_final == 1 and r.status == "unresolved"


def test_tol_stops_early_once_centroids_are_still(blobs):
    r = pgbench.kmeans(blobs, 6, init="kmeans++", resolve="none", n_iter=50, tol=0.0, seed=0)
    assert r.n_iter < 50


def test_fewer_distinct_points_than_k_ends_with_a_status_saying_so():
    X = torch.tensor([[0.0, 0.0], [1.0, 1.0]]).repeat(10, 1)     # 20 points, 2 distinct
    for resolve in RESOLVES:
        r = pgbench.kmeans(X, 5, init="random", resolve=resolve, n_iter=5, seed=0)
        assert r.status in ("unresolved", "stopped"), resolve
        assert r.n_empty_final >= 3
        if r.status == "unresolved":
            assert "fewer distinct points than k" in r.message


# ---------------------------------------------------------------- backends agree

def test_torch_and_faiss_backends_agree():
    X = layer_subvectors(5000, 4, seed=2)
    C = X[:300].clone()
    lt, dt = backends.torch_assign(X, C, chunk_rows=777)
    lf, df = backends.make_assign("faiss", X)(X, C)
    assert (lt == lf).float().mean() > 0.999          # float rounding may flip exact near-ties
    assert torch.allclose(dt, df, atol=1e-6)


def test_assignment_never_builds_the_full_distance_matrix():
    X = torch.randn(1000, 2)
    C = torch.randn(50, 2)
    labels, _ = backends.torch_assign(X, C, chunk_rows=64)
    ref = torch.cdist(X, C).argmin(1)
    assert torch.equal(labels, ref)


# ---------------------------------------------------------------- properties

@settings(max_examples=25, deadline=None)
@given(n=st.integers(5, 60), d=st.integers(1, 4), k=st.integers(1, 5), seed=st.integers(0, 1000),
       init=st.sampled_from(INITS), resolve=st.sampled_from(RESOLVES), dup=st.booleans())
def test_properties(n, d, k, seed, init, resolve, dup):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    if dup:
        X = X[torch.randint(0, max(1, n // 4), (n,), generator=g)]
    k = min(k, n)
    r = pgbench.kmeans(X, k, init=init, resolve=resolve, n_iter=3, seed=seed, backend="torch")
    assert r.labels.min() >= 0 and r.labels.max() < k
    assert int(torch.bincount(r.labels, minlength=k).sum()) == n
    assert torch.isfinite(r.centroids).all()
    again = pgbench.kmeans(X, k, init=init, resolve=resolve, n_iter=3, seed=seed, backend="torch")
    assert torch.equal(r.centroids, again.centroids) and torch.equal(r.labels, again.labels)
    assert r.status in ("ok", "unresolved", "stopped")


def test_same_seed_same_output_and_other_seed_differs(blobs):
    a = pgbench.kmeans(blobs, 10, init="fairseq", resolve="fairseq", seed=5)
    b = pgbench.kmeans(blobs, 10, init="fairseq", resolve="fairseq", seed=5)
    c = pgbench.kmeans(blobs, 10, init="fairseq", resolve="fairseq", seed=6)
    assert torch.equal(a.centroids, b.centroids) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.centroids, c.centroids)


def test_no_global_random_state_is_used(blobs):
    torch.manual_seed(0)
    np.random.seed(0)
    before = (torch.get_rng_state().clone(), np.random.get_state()[1].copy())
    for init in INITS:
        for resolve in RESOLVES:
            pgbench.kmeans(blobs, 10, init=init, resolve=resolve, n_iter=2, seed=1)
    assert torch.equal(before[0], torch.get_rng_state())
    assert (before[1] == np.random.get_state()[1]).all()


# ---------------------------------------------------------------- CUDA twin

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("resolve", RESOLVES)
def test_cuda_matches_cpu_quality(init, resolve):
    X = layer_subvectors(20_000, 4, seed=1)
    cpu = pgbench.kmeans(X, 256, init=init, resolve=resolve, seed=0, device="cpu", backend="torch")
    gpu = pgbench.kmeans(X, 256, init=init, resolve=resolve, seed=0, device="cuda")
    assert gpu.centroids.device.type == "cuda" and gpu.backend == "torch"
    again = pgbench.kmeans(X, 256, init=init, resolve=resolve, seed=0, device="cuda")
    assert torch.equal(gpu.centroids, again.centroids)          # same seed, same device
    assert gpu.status == cpu.status or gpu.n_empty_final <= cpu.n_empty_final + 2
    assert gpu.inertia == pytest.approx(cpu.inertia, rel=0.05)


def test_cuda_segment_sum_path_matches_index_add_on_cpu():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 37, (5000,), generator=g)
    values = torch.randn(5000, 5, generator=g, dtype=torch.float64)
    a = backends.segment_sums(labels, values, 40, method="index_add")
    b = backends.segment_sums(labels, values, 40, method="onehot")
    assert torch.allclose(a, b) and (a[37:] == 0).all()


def test_heuristic_parameters_cannot_shadow_engine_arguments():
    with pytest.raises(ValueError, match="takes itself"):
        registry.register("resolve", "shadowing", params={"seed": 1})


def test_faiss_split_seed_is_settable():
    X = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    r = pgbench.kmeans(X, 2, init=torch.tensor([[1.5], [9.0]]), resolve="faiss", n_iter=1, split_seed=7)
    assert r.params["resolve"]["split_seed"] == 7
