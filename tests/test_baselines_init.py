"""Baseline initialisations against the spec (shared/notes/baselines.md §1.3, §2.2, §2.5, §3.3).

Hand-checked cases for fairseq's with-replacement draw, the without-replacement
random draw and scikit-learn's greedy k-means++ (its exact second-centre law on
five points, and a comparison with ``sklearn.cluster.kmeans_plusplus``).
"""

import math

import numpy as np
import pytest
import torch
from sklearn.cluster import kmeans_plusplus

import pgbench
from pgbench import backends, registry
from pgbench.state import KMeansState

init_fairseq = registry.get("init", "fairseq")
init_random = registry.get("init", "random")
init_kmeanspp = registry.get("init", "kmeans++")
init_bisecting = registry.get("init", "bisecting")


def ones(n):
    return torch.ones(n, dtype=torch.float64)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def blobs(n_blobs=5, per_blob=20, seed=0):
    """Blobs on a 100-spaced grid with std 0.1, so D^2 across blobs dwarfs D^2 within."""
    g = gen(seed)
    centres = torch.tensor([[100.0 * (i % 3), 100.0 * (i // 3)] for i in range(n_blobs)], dtype=torch.float64)
    X = centres.repeat_interleave(per_blob, 0) + 0.1 * torch.randn(n_blobs * per_blob, 2, generator=g,
                                                                 dtype=torch.float64)
    return X, torch.arange(n_blobs).repeat_interleave(per_blob)


# ============================================================ fairseq (§1.3 step 1)

def test_fairseq_init_draws_with_replacement_and_higher_duplicate_is_empty():
    X = torch.arange(10, dtype=torch.float64)[:, None]          # point i is the value i
    faiss_assign = backends.FaissAssign(X.float())
    n_distinct, hist = [], torch.zeros(10)
    for seed in range(100):
        out = init_fairseq(X, ones(10), 10, gen(seed))
        idx = out.centroids[:, 0].long().tolist()                # which point each centroid copies
        assert out.centroids[:, 0].tolist() == [float(i) for i in idx]
        hist += torch.bincount(torch.tensor(idx), minlength=10)
        n_distinct.append(len(set(idx)))
        # argmin takes the first of equal centroids: the higher-indexed copy is empty
        expected_empty = [j for j in range(10) if idx[j] in idx[:j]]
        for assign in (backends.torch_assign, faiss_assign):
            Xs = X if assign is backends.torch_assign else X.float()
            state = KMeansState(Xs, ones(10).to(Xs.dtype), out.centroids.to(Xs.dtype).clone(), assign)
            state.reassign()
            assert state.empty_ids().tolist() == expected_empty, (seed, idx)
        assert out.info["n_duplicate_draws"] == len(expected_empty)
    # with replacement: E[distinct] = 10 (1 - 0.9^10) = 6.51 (without replacement it would be 10)
    assert abs(np.mean(n_distinct) - 6.513) < 0.3
    assert float(hist.min()) > 60 and float(hist.max()) < 140        # uniform: 100 per point


def test_fairseq_init_duplicates_are_empty_at_first_assignment_in_kmeans():
    X = torch.arange(10, dtype=torch.float32)[:, None]
    for seed in range(10):
        idx = init_fairseq(X, torch.ones(10), 10, gen(seed)).centroids[:, 0].long()
        n_dup = 10 - int(torch.unique(idx).numel())
        res = pgbench.kmeans(X, 10, init="fairseq", resolve="none", n_iter=1, seed=seed)
        assert res.trace[0].n_empty_assigned == n_dup == res.init_info["n_duplicate_draws"]


# ============================================================ random (§2.2, §3.3)

def test_random_init_is_k_distinct_points():
    X = torch.arange(10, dtype=torch.float64)[:, None] * torch.tensor([[1.0, -3.0]], dtype=torch.float64)
    for seed in range(30):
        C = init_random(X, ones(10), 10, gen(seed)).centroids
        assert sorted(C[:, 0].tolist()) == X[:, 0].tolist()          # k = n: a permutation of X
        C = init_random(X, ones(10), 4, gen(seed)).centroids
        rows = {tuple(r) for r in C.tolist()}
        assert len(rows) == 4 and rows <= {tuple(r) for r in X.tolist()}


def test_random_init_draws_proportional_to_weight_without_replacement():
    X = torch.arange(10, dtype=torch.float64)[:, None]
    w = torch.tensor([0.0] * 5 + [1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    for seed in range(20):
        C = init_random(X, w, 5, gen(seed)).centroids
        assert sorted(C[:, 0].tolist()) == [5.0, 6.0, 7.0, 8.0, 9.0]


# ============================================================ greedy k-means++ (§2.2)

def test_kmeanspp_one_centre_per_well_separated_blob():
    X, blob = blobs()
    for seed in range(10):
        C = init_kmeanspp(X, ones(len(X)), 5, gen(seed)).centroids
        hit = blob[torch.cdist(C, X).argmin(1)]                       # blob of each chosen point
        assert sorted(hit.tolist()) == [0, 1, 2, 3, 4]
        ref, _ = kmeans_plusplus(X.numpy(), 5, random_state=seed)     # scikit-learn agrees
        assert sorted(blob[torch.cdist(torch.from_numpy(ref), X).argmin(1)].tolist()) == [0, 1, 2, 3, 4]


def test_kmeanspp_centres_are_points_and_never_repeat():
    X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [9.0, 0.0], [3.0, 7.0]],
                     dtype=torch.float64)
    for seed in range(20):
        C = init_kmeanspp(X, ones(6), 6, gen(seed)).centroids         # k = n: a chosen point has D = 0
        assert sorted(map(tuple, C.tolist())) == sorted(map(tuple, X.tolist()))


def test_kmeanspp_first_centre_proportional_to_weight():
    X = torch.arange(4, dtype=torch.float64)[:, None]
    w = torch.tensor([0.0, 0.0, 5.0, 0.0], dtype=torch.float64)
    assert float(init_kmeanspp(X, w, 1, gen(0)).centroids[0, 0]) == 2.0
    w = torch.tensor([1.0, 3.0, 0.0, 0.0], dtype=torch.float64)
    picks = [float(init_kmeanspp(X, w, 1, gen(s)).centroids[0, 0]) for s in range(400)]
    assert set(picks) <= {0.0, 1.0}
    assert abs(picks.count(1.0) / 400 - 0.75) < 0.08


@pytest.mark.parametrize("k, trials", [(2, 2), (3, 3), (7, 3), (8, 4), (20, 4), (21, 5), (55, 6), (150, 7)])
def test_kmeanspp_default_local_trials_is_2_plus_floor_ln_k(k, trials):
    X = torch.randn(200, 2, generator=gen(1), dtype=torch.float64)
    for n_local_trials, expected in ((None, trials), (1, 1)):
        g = gen(0)
        out = init_kmeanspp(X, ones(200), k, g, n_local_trials=n_local_trials)
        assert out.info["n_local_trials"] == expected
        # one uniform for the first centre, then one per candidate: the generator moved exactly that far
        ref = gen(0)
        torch.rand(1 + (k - 1) * expected, generator=ref, dtype=torch.float64)
        assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=ref))


def _second_centre_law(x):
    """Exact P(first = f, second = s) of greedy k-means++ with k = 2 (L = 2 candidates), by the spec."""
    n = len(x)
    P = np.zeros((n, n))
    for f in range(n):
        d2 = (x - x[f]) ** 2
        p = d2 / d2.sum()
        pot = [np.minimum(d2, (x - x[c]) ** 2).sum() for c in range(n)]
        for a in range(n):
            for b in range(n):
                s = a if pot[a] <= pot[b] else b                     # argmin: first candidate on ties
                P[f, s] += p[a] * p[b] / n
    return P


def test_kmeanspp_second_centre_law_matches_spec_and_sklearn():
    x = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    P = _second_centre_law(x)
    X = torch.from_numpy(x)[:, None]

    def freq(pairs):
        F = np.zeros((5, 5))
        for f, s in pairs:
            F[f, s] += 1
        return F / len(pairs)

    def index(values):
        return [int(np.flatnonzero(x == v)[0]) for v in values]

    ours = freq([index(init_kmeanspp(X, ones(5), 2, gen(s)).centroids[:, 0].tolist()) for s in range(3000)])
    tol = 4 * np.sqrt(P * (1 - P) / 3000) + 0.004
    assert (np.abs(ours - P) <= tol).all(), np.round(ours - P, 3)
    theirs = freq([kmeans_plusplus(x[:, None], 2, random_state=s)[1].tolist() for s in range(800)])
    tol = 4 * np.sqrt(P * (1 - P) / 800) + 0.006
    assert (np.abs(theirs - P) <= tol).all(), np.round(theirs - P, 3)   # the law itself is sklearn's
    # the tolerance is tight enough to tell the greedy law from plain D^2 sampling (L = 1)
    Q = np.array([(x - x[f]) ** 2 / ((x - x[f]) ** 2).sum() / 5 for f in range(5)])
    assert (np.abs(Q - P) > 4 * np.sqrt(P * (1 - P) / 3000) + 0.004).any()


# ============================================================ bisecting (§2.5)
#
# A: 40 points at 0, B: 30 at 100, C: 20 at 1000 (std 0.1).  The first 2-means separates {A, B}
# from C; "largest_cluster" then splits the 70 of {A, B} into A and B; with k = 4 it splits A
# (40, the largest) although A is a tight blob.

def _abc(weight_c=1.0):
    g = gen(4)
    sizes = torch.tensor([40, 30, 20])
    X = torch.tensor([[0.0], [100.0], [1000.0]], dtype=torch.float64).repeat_interleave(sizes, 0)
    X = X + 0.1 * torch.randn(90, 1, generator=g, dtype=torch.float64)
    w = ones(90)
    w[70:] = weight_c
    return X, w


def test_bisecting_splits_the_largest_cluster():
    X, w = _abc()
    a, b, c = X[:40].mean(0), X[40:70].mean(0), X[70:].mean(0)
    for seed in range(5):
        C = init_bisecting(X, w, 3, gen(seed)).centroids
        assert torch.allclose(C[C[:, 0].argsort()], torch.stack([a, b, c]), rtol=0, atol=1e-9)
        C = init_bisecting(X, w, 4, gen(seed)).centroids[:, 0].sort().values
        assert C[0] < C[1] < 1 and torch.allclose(C[2:], torch.cat([b, c]), rtol=0, atol=1e-9)


def test_bisecting_largest_is_by_point_count_not_weight():
    # spec §2.5: scikit-learn's largest_cluster scores leaves by unweighted point COUNT (np.bincount)
    X, w = _abc(weight_c=10.0)          # C: 20 points but mass 200 > 70
    a, b, c = X[:40].mean(0), X[40:70].mean(0), X[70:].mean(0)
    C = init_bisecting(X, w, 3, gen(0)).centroids
    assert torch.allclose(C[C[:, 0].argsort()], torch.stack([a, b, c]), rtol=0, atol=1e-9)


def test_bisecting_largest_by_mass_splits_the_heavy_cluster_first():
    X, w = _abc(weight_c=10.0)          # first split {A, B} | {C}; C has mass 200 > 70, so C is split next
    for seed in range(5):
        C = init_bisecting(X, w, 3, gen(seed), largest_by="mass").centroids
        C = C[C[:, 0].argsort()]
        assert torch.allclose(C[0], X[:70].mean(0), rtol=0, atol=1e-9)       # A and B stay together
        assert (C[1:, 0] > 900).all()                                         # C is halved
    with pytest.raises(ValueError, match="largest_by"):
        init_bisecting(X, w, 3, gen(0), largest_by="inertia")


def test_bisecting_fewer_distinct_points_than_k_terminates():
    X = torch.arange(5, dtype=torch.float64).repeat(10)[:, None]
    out = init_bisecting(X, ones(50), 8, gen(0))
    assert out.centroids.shape == (8, 1)
    assert sorted(set(out.centroids[:, 0].tolist())) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert out.info["n_unfilled"] == 3
    assert math.isfinite(float(out.centroids.sum()))
