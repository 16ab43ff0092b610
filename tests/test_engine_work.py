"""Engine additions of issue 10: resolver work counts, the direct backend, faiss's subsample, the
empties of the last in-loop assignment.  Small hand-checked cases; the library comparisons are in
test_differential.py."""

import pytest
import torch

import pgbench
from pgbench import backends, registry
from pgbench.state import KMeansState
from pgbench.synthetic import layer_subvectors, with_duplicates


@pytest.fixture(scope="module")
def dups():
    """Duplicate-heavy points where fairseq's init leaves many empties and its resolver stops."""
    return with_duplicates(2000, 4, 0.6, 20, seed=0)


# ---------------------------------------------------------------- resolver work

def test_fairseq_work_is_n_times_k_per_round(dups):
    r = pgbench.kmeans(dups, 64, init="fairseq", resolve="fairseq", seed=0, n_iter=3, max_tentatives=5)
    assert r.status == "stopped"
    for s in r.trace:
        assert s.resolve_assign_passes == s.rounds
        assert s.resolve_distance_evals == s.rounds * 2000 * 64
    assert r.trace[-1].rounds == 6                      # max_tentatives + 1 rounds, the last one failing
    assert r.resolve_distance_evals == r.rounds_total * 2000 * 64


@pytest.mark.parametrize("resolve", ["sklearn", "faiss", "none"])
def test_resolvers_that_reuse_the_assignment_do_no_extra_work(dups, resolve):
    r = pgbench.kmeans(dups, 64, init="fairseq", resolve=resolve, seed=0, n_iter=4)
    assert any(s.n_empty_assigned > 0 for s in r.trace)
    assert r.resolve_distance_evals == 0 and r.resolve_assign_passes == 0
    if resolve != "none":
        assert r.rounds_total > 0                       # 1 "round" per iteration with empties, though no pass


def test_pg_work_is_its_trees_plus_one_full_pass_per_round():
    # 100 points i/99 in one cluster, two far empty centroids (k = 3).
    # Pass 1: slot 2 reserved, L = {0}, S_avg = 100/3, S_scl = sqrt(100 * 100/3) = 57.7: the root (100
    #   points, 200 tree evaluations) splits 58 | 42 from point 0, both leaves; leaf 2 takes slot 1.
    #   Full re-assignment: means 28.5/99 and 78.5/99, boundary 0.540 -> sizes 54, 46, 0.
    # Pass 2: slot 2 reserved, L = {0, 1}; cluster 0 (54 points, 108 evaluations) splits 44 | 10, the
    #   budget of one leaf leaves the 10 as rest -> c_last in slot 2.  Full re-assignment: no empty.
    X = torch.linspace(0, 1, 100)[:, None]
    state = KMeansState(X, torch.ones(100), torch.tensor([[0.5], [50.0], [60.0]]), backends.torch_assign)
    state.reassign()
    evals0, passes0 = state.n_distance_evals, state.n_assignments
    out = registry.get("resolve", "pg")(state, torch.Generator(), max_passes=15, patience=3)
    assert out.rounds == 2 and out.n_left == 0
    assert state.n_assignments - passes0 == 2
    assert state.n_distance_evals - evals0 == (2 * 100 + 2 * 54) + 2 * (100 * 3)


def test_work_columns_are_in_the_trace_dicts(dups):
    r = pgbench.kmeans(dups, 64, init="fairseq", resolve="fairseq", seed=0, n_iter=2, max_tentatives=5)
    row = r.trace_dicts()[0]
    assert row["resolve_distance_evals"] == r.trace[0].resolve_distance_evals
    assert row["resolve_assign_passes"] == r.trace[0].resolve_assign_passes
    assert r.summary()["resolve_assign_passes"] == r.resolve_assign_passes


# ---------------------------------------------------------------- last in-loop assignment

def test_last_in_loop_assignment_is_what_fairseq_returns(dups):
    r = pgbench.kmeans(dups, 64, init="fairseq", resolve="fairseq", seed=0, n_iter=3, max_tentatives=5)
    # stopped: the update was skipped, so the extra final assignment sees the same centroids
    assert r.n_empty_last_assignment == r.trace[-1].n_empty_resolved == r.n_empty_final
    plain = pgbench.kmeans(dups, 64, init="fairseq", resolve="none", seed=0, n_iter=3)
    assert plain.n_empty_last_assignment == plain.trace[-1].n_empty_assigned


def test_last_in_loop_assignment_can_differ_from_the_final_one():
    # resolve none.  Points 4, 0, 0, 0; centroids 3.9, 4.2, 100: every point goes to 3.9, so the
    # loop's assignment has 2 empty clusters.  The update moves centroid 0 to the mean 1, after which
    # the point 4 is nearer to 4.2: the final assignment has 1 empty cluster.
    X = torch.tensor([[4.0], [0.0], [0.0], [0.0]])
    r = pgbench.kmeans(X, 3, init=torch.tensor([[3.9], [4.2], [100.0]]), resolve="none", n_iter=1,
                       backend="torch")
    assert r.n_empty_last_assignment == 2 and r.n_empty_final == 1


# ---------------------------------------------------------------- direct backend

def _fairseq_distances(X, C):
    """fairseq's EM.compute_distances, transcribed: W (d, n) columns, (k, d, n) differences, 2-norm."""
    W = X.t()
    return (W[None, :, :] - C[:, :, None]).norm(p=2, dim=1)          # (k, n)


def test_direct_backend_is_fairseqs_e_step_in_chunks():
    g = torch.Generator().manual_seed(0)
    X = 1.0 + 1e-3 * torch.randn(3000, 4, generator=g)                  # weights with a +1.0 offset
    C = X[torch.randint(0, 3000, (300,), generator=g)].clone()
    C[150:] = C[:150] + 1e-6 * torch.randn(150, 4, generator=g)          # fairseq-style +-1e-6 splits
    ref = torch.argmin(_fairseq_distances(X, C), dim=0)
    for rows in (1, 7, 1000, None):
        labels, sq = backends.direct_assign(X, C, chunk_rows=rows)
        assert torch.equal(labels, ref)
        assert torch.equal(sq, ((X - C[labels]) ** 2).sum(1))
    # the expanded formula cannot tell these apart: it disagrees with fairseq on many points
    expanded, _ = backends.torch_assign(X, C)
    assert int((expanded != ref).sum()) > 100


def test_direct_backend_chunks_to_a_byte_budget(monkeypatch):
    seen = []
    real = torch.cdist

    def spy(x, c, **kwargs):
        seen.append((x.shape[0], kwargs.get("compute_mode")))
        return real(x, c, **kwargs)

    monkeypatch.setitem(backends._CHUNK_BYTES, "cpu", 4 * 50 * 64)      # 64 rows of k = 50 distances
    monkeypatch.setattr(torch, "cdist", spy)
    X, C = torch.randn(200, 2), torch.randn(50, 2)
    labels, _ = backends.direct_assign(X, C)
    assert seen == [(64, "donot_use_mm_for_euclid_dist")] * 3 + [(8, "donot_use_mm_for_euclid_dist")]
    assert torch.equal(labels, real(X, C).argmin(1))


def test_direct_backend_through_kmeans_and_float64():
    X = layer_subvectors(500, 4, seed=1)
    a = pgbench.kmeans(X, 16, init="fairseq", resolve="fairseq", backend="direct", seed=0)
    b = pgbench.kmeans(X.double(), 16, init="fairseq", resolve="fairseq", backend="direct", dtype="float64", seed=0)
    assert a.backend == "direct" and a.status == "ok" and b.status == "ok"
    assert a.inertia == pytest.approx(b.inertia, rel=1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_direct_backend_on_cuda_matches_cpu():
    X = layer_subvectors(20_000, 4, seed=2)
    C = X[:512].clone()
    lc, sc = backends.direct_assign(X, C)
    lg, sg = backends.direct_assign(X.cuda(), C.cuda())
    assert (lc == lg.cpu()).float().mean() > 0.999
    assert torch.allclose(sc, sg.cpu(), atol=1e-7)


# ---------------------------------------------------------------- max_points_per_centroid

def test_max_points_per_centroid_none_uses_every_point():
    X = layer_subvectors(3000, 4, seed=3)
    r = pgbench.kmeans(X, 10, init="random", resolve="faiss", seed=0)
    same = pgbench.kmeans(X, 10, init="random", resolve="faiss", seed=0, max_points_per_centroid=300)
    assert r.n_train == 3000 and same.n_train == 3000                 # 3000 <= 10 * 300: no subsample
    assert torch.equal(r.centroids, same.centroids)


def test_max_points_per_centroid_trains_on_a_subsample_and_labels_every_point():
    X = layer_subvectors(3000, 4, seed=3)
    r = pgbench.kmeans(X, 10, init="random", resolve="faiss", seed=0, max_points_per_centroid=39)
    assert r.n_train == 390 and r.labels.shape == (3000,)
    labels, sq = backends.torch_assign(X, r.centroids)
    assert torch.equal(r.labels, labels)
    assert r.inertia == pytest.approx(float(sq.sum()), rel=1e-5)
    # weights follow their points; a consolidation runs first, the subsample draws from its output
    w = torch.randint(1, 4, (3000,), generator=torch.Generator().manual_seed(0)).float()
    rw = pgbench.kmeans(X, 10, init="random", resolve="faiss", seed=0, max_points_per_centroid=39, sample_weight=w)
    assert rw.n_train == 390 and rw.labels.shape == (3000,)
    rc = pgbench.kmeans(X, 10, init="pg", resolve="pg", consolidate="dwc", seed=0, max_points_per_centroid=39)
    assert rc.n_train == 390 and rc.labels.shape == (3000,)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "256", True])
def test_max_points_per_centroid_bad_values_are_refused_before_work(bad):
    with pytest.raises(ValueError, match="max_points_per_centroid") as info:
        pgbench.kmeans(torch.randn(50, 2), 4, max_points_per_centroid=bad)
    assert "\n" not in str(info.value)


def test_max_points_per_centroid_is_an_engine_argument_no_heuristic_may_take():
    assert "max_points_per_centroid" in registry.RESERVED_PARAMS
