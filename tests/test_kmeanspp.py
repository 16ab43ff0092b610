"""The fast greedy k-means++ (``init_kmeanspp`` / ``_greedy_kmeanspp``) against a plain reference.

Hand-checked draws first, then the exactness property: for the same uniforms, the
candidates drawn and the centres chosen equal those of a straightforward
implementation run on the points in the same (k-d) order, weighted and
unweighted, with duplicates and ties, in both modes; then the law against
scikit-learn's ``kmeans_plusplus`` (two-sample KS test on the final potential,
on data large enough for the pruning to act).
"""

import functools
import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp
from sklearn.cluster import kmeans_plusplus

from pgbench import backends, registry, synthetic
from pgbench.heuristics import _greedy_kmeanspp as fast
from pgbench.heuristics._greedy_kmeanspp import greedy_kmeanspp

init_kmeanspp = registry.get("init", "kmeans++")
F64 = torch.float64


def direct(X, C):
    """Squared distances (m, n) of rows of C to rows of X, as sums of squared differences."""
    return ((X[None] - C[:, None]) ** 2).sum(2)


def expanded(X, C):
    """Squared distances as ||x||^2 - 2 x.c + ||c||^2 clamped at 0 (the dense mode's formula)."""
    return torch.addmm((X * X).sum(1), C, X.t(), alpha=-2).add_((C * C).sum(1, keepdim=True)).clamp_(min=0)


def reference(X, w, k, trials, u, sqdist=direct):
    """Greedy k-means++ written plainly: one cumulative sum over all rows of X per draw.

    Draw: the first row whose cumulative w * D^2 reaches u * total (u in (0, 1]).
    Step: the candidate of smallest sum_i w_i min(D_i^2, |x_i - c|^2), the first on
    ties.  Returns (chosen rows, candidate rows per step).
    """
    def draw(mass, us):
        cum = torch.cumsum(mass.to(F64), 0)
        return torch.searchsorted(cum, us * cum[-1])

    first = draw(w, u[:1])
    D2 = sqdist(X, X[first])[0]
    chosen, candidates = [int(first)], []
    for c in range(1, k):
        cand = draw(w * D2, u[1 + (c - 1) * trials:1 + c * trials])
        dist = torch.minimum(sqdist(X, X[cand]), D2)                      # (trials, n)
        best = int((dist * w).to(F64).sum(1).argmin())
        D2 = dist[best]
        chosen.append(int(cand[best]))
        candidates.append(cand.tolist())
    return chosen, candidates


def assert_same_seeding(seeding, X, w, k, trials, u, sqdist=direct):
    """``seeding`` draws and keeps what the reference does on X, w taken in ``seeding.order``.

    The candidates must be equal at every step, and so must the kept candidate,
    except where the reference's potentials of the two choices agree to float64
    rounding (candidates of equal potential in real arithmetic, summed in another
    order): from there the runs part ways legitimately, and the comparison stops.
    With the expanded formula (``sqdist=expanded``) the comparison also stops once
    the reference's potential is down to that formula's rounding error, not 0 (every
    point a duplicate of a centre but for rounding residues): there the drawing masses are rounding
    residues, whose last bits depend on the shape of the matrix product (the dense
    mode multiplies in chunks), so the draws part ways legitimately too.
    Returns the number of centres compared (k when the runs agree throughout).
    """
    Xe = torch.cat((X, X[:1]))[seeding.order]                        # padding: X[0] with weight 0
    we = torch.cat((w, w.new_zeros(1)))[seeding.order]
    chosen, candidates = reference(Xe, we, k, trials, u, sqdist)
    assert int(seeding.chosen[0]) == chosen[0]
    # rounding floor of the expanded formula's potential: a few units of sum w (||x||^2 + max ||c||^2)
    x2 = (Xe * Xe).sum(1)
    floor = 64 * torch.finfo(Xe.dtype).eps * float((we * (x2 + x2.max())).sum()) if sqdist is expanded else -1.0
    for c in range(1, k):
        if 0 < float((sqdist(Xe, Xe[chosen[:c]]).min(0).values * we).sum()) <= floor:
            return c
        assert seeding.candidates[c - 1].tolist() == candidates[c - 1], f"step {c}"
        ours = int(seeding.chosen[c])
        if ours != chosen[c]:
            D2 = sqdist(Xe, Xe[chosen[:c]]).min(0).values

            def potential(row):
                return float((torch.minimum(D2, sqdist(Xe, Xe[row:row + 1])[0]) * we).sum())

            assert potential(ours) == pytest.approx(potential(chosen[c]), rel=1e-12, abs=0), f"step {c}"
            return c
    return k


def uniforms(k, trials, seed):
    return 1.0 - torch.rand(1 + (k - 1) * trials, generator=torch.Generator().manual_seed(seed), dtype=F64)


# ============================================================ hand-checked draws (n < 16: one leaf, original order)

def test_hand_checked_unweighted_draws():
    # X = 0, 1, 10, 11.  u0 = 0.6: 2.4 of the cumulative weights 1, 2, 3, 4 -> row 2 (x = 10).
    # D^2 = 100, 81, 0, 1 (cumulative 100, 181, 181, 182): u = 0.5 -> 91 -> row 0; u = 0.999 -> 181.8 -> row 3.
    # Potentials: row 0 -> 0 + 1 + 0 + 1 = 2; row 3 -> 100 + 81 + 0 + 0 = 181: row 0 (x = 0) is kept.
    X = torch.tensor([[0.0], [1.0], [10.0], [11.0]], dtype=F64)
    s = greedy_kmeanspp(X, torch.ones(4, dtype=F64), 2, 2, torch.tensor([0.6, 0.5, 0.999], dtype=F64))
    assert s.order.tolist() == [0, 1, 2, 3]
    assert s.chosen.tolist() == [2, 0] and s.candidates.tolist() == [[0, 3]]
    assert s.potential == 2.0 and s.pruned


def test_hand_checked_weighted_draws():
    # w = 0, 1, 1, 5: cumulative 0, 1, 2, 7; u0 = 0.2 -> 1.4 -> row 2 (x = 10).  w D^2 = 0, 81, 0, 5
    # (cumulative 0, 81, 81, 86): u = 0.5 -> 43 -> row 1; u = 0.99 -> 85.14 -> row 3.
    # Weighted potentials: row 1 -> 0*1 + 1*0 + 1*0 + 5*1 = 5; row 3 -> 0 + 81 + 0 + 0 = 81: row 1.
    X = torch.tensor([[0.0], [1.0], [10.0], [11.0]], dtype=F64)
    w = torch.tensor([0.0, 1.0, 1.0, 5.0], dtype=F64)
    s = greedy_kmeanspp(X, w, 2, 2, torch.tensor([0.2, 0.5, 0.99], dtype=F64))
    assert s.chosen.tolist() == [2, 1] and s.candidates.tolist() == [[1, 3]]
    assert s.potential == 5.0


def test_equal_potentials_keep_the_first_candidate():
    # X = -1, 0, 1; u0 = 0.5 -> row 1 (x = 0); D^2 = 1, 0, 1: u = 0.25 -> row 0, u = 0.75 -> row 2.
    # Both candidates leave potential 1: the first drawn is kept, in either draw order.
    X = torch.tensor([[-1.0], [0.0], [1.0]], dtype=F64)
    w = torch.ones(3, dtype=F64)
    s = greedy_kmeanspp(X, w, 2, 2, torch.tensor([0.5, 0.25, 0.75], dtype=F64))
    assert s.candidates.tolist() == [[0, 2]] and s.chosen.tolist() == [1, 0]
    s = greedy_kmeanspp(X, w, 2, 2, torch.tensor([0.5, 0.75, 0.25], dtype=F64))
    assert s.candidates.tolist() == [[2, 0]] and s.chosen.tolist() == [1, 2]


def test_zero_mass_points_are_never_drawn():
    # u = 1 hits the last positive mass exactly; zero-weight rows and chosen rows have no mass.
    X = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]], dtype=F64)
    w = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=F64)
    for u in ([1.0] * 5, [1e-300] * 5, [0.5, 1.0, 1e-300, 1e-300, 1.0]):
        s = greedy_kmeanspp(X, w, 3, 2, torch.tensor(u, dtype=F64))
        assert set(s.chosen.tolist()) == {0, 2, 3}
        assert set(s.candidates.flatten().tolist()) <= {0, 2, 3}


# ============================================================ the k-d order

def test_kd_order_is_a_balanced_permutation_with_padding():
    X = synthetic.layer_subvectors(1000, 4, seed=1)
    order = fast.kd_order(X, 5)                           # 32 leaves of ceil(1000 / 32) = 32 rows
    assert order.numel() == 32 * 32
    assert sorted(order.tolist()) == sorted(list(range(1000)) + [1000] * 24)
    # leaves lie in disjoint k-d cells, so their bounding boxes add up to at most the whole box
    # (32 random groups of 32 rows would each span most of it)
    leaves = torch.cat((X, X[:1]))[order].view(32, 32, 4).double()
    volumes = (leaves.amax(1) - leaves.amin(1)).prod(1)
    assert float(volumes.sum()) <= float((X.amax(0) - X.amin(0)).double().prod())


def test_kd_order_splits_ties_by_position():
    X = torch.zeros(64, 2)                               # all equal: every split keeps the order
    assert fast.kd_order(X, 2).tolist() == list(range(64))


# ============================================================ exactness against the reference

@st.composite
def problems(draw, kinds=("plain", "duplicates", "grid")):
    n = draw(st.integers(17, 600))
    d = draw(st.integers(1, 4))
    k = draw(st.integers(2, min(n, 40)))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=F64) ** 3                   # heavy tails
    kind = draw(st.sampled_from(kinds))
    if kind == "duplicates":                                           # a third of the rows repeat others
        X[: n // 3] = X[n - n // 3:].clone()
    elif kind == "grid":                                               # small integers: many equal distances
        X = torch.randint(0, 4, (n, d), generator=g).to(F64)
    w = torch.ones(n, dtype=F64)
    if kind != "grid" and draw(st.booleans()):
        w = torch.rand(n, generator=g, dtype=F64) * 3 * (torch.rand(n, generator=g) > 0.2)
        w[0] = 1.0
    trials = draw(st.sampled_from([None, 1, 3]))
    return X, w, k, trials or 2 + int(math.log(k)), seed


def widened(X):
    """X with two more columns (d + 2 >= 3), for the dense mode."""
    return torch.cat((X, X[:, :1] * 0.5 + 1.0, X[:, -1:] ** 2), 1)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_pruned_mode_draws_and_chooses_as_the_reference(problem):
    X, w, k, trials, seed = problem
    u = uniforms(k, trials, seed)
    s = greedy_kmeanspp(X, w, k, trials, u)
    assert s.pruned
    assert_same_seeding(s, X, w, k, trials, u)


@pytest.mark.parametrize("chunk", [fast.DENSE_CHUNK, 1], ids=["one-chunk", "chunk-per-block"])
@settings(max_examples=15, deadline=None)
@given(problems())
def test_dense_mode_draws_and_chooses_as_the_reference(chunk, problem):
    # chunk 1 (below a block): one block per chunk, so several chunks even for a few hundred points
    X, w, k, trials, seed = problem
    X = widened(X)
    u = uniforms(k, trials, seed)
    with mock.patch.object(fast, "DENSE_CHUNK", chunk):
        s = greedy_kmeanspp(X, w, k, trials, u, pruned=False)
    assert s.order[: X.shape[0]].tolist() == list(range(X.shape[0]))   # original order
    assert_same_seeding(s, X, w, k, trials, u, sqdist=expanded)


@settings(max_examples=15, deadline=None)
@given(problems(kinds=("grid",)))
def test_exact_arithmetic_agrees_throughout_ties_included(problem):
    # small integer coordinates, unit weights: every distance and sum is exact, equal potentials
    # are equal in both implementations, and the first candidate wins in both
    X, w, k, trials, seed = problem
    u = uniforms(k, trials, seed)
    assert assert_same_seeding(greedy_kmeanspp(X, w, k, trials, u), X, w, k, trials, u) == k
    Xw = widened(X)
    s = greedy_kmeanspp(Xw, w, k, trials, u, pruned=False)
    assert assert_same_seeding(s, Xw, w, k, trials, u, sqdist=expanded) == k


def test_modes_default_by_dimension():
    X = torch.randn(100, fast.PRUNE_MAX_DIM + 1, dtype=F64)
    assert not greedy_kmeanspp(X, torch.ones(100, dtype=F64), 3, 2, uniforms(3, 2, 0)).pruned
    assert greedy_kmeanspp(X[:, :fast.PRUNE_MAX_DIM], torch.ones(100, dtype=F64), 3, 2, uniforms(3, 2, 0)).pruned


def test_pruned_mode_skips_most_distances_and_keeps_exact_potentials():
    X = synthetic.layer_subvectors(20_000, 4, seed=0)
    out = init_kmeanspp(X, torch.ones(20_000), 256, torch.Generator().manual_seed(0), n_local_trials=None)
    full = 255 * out.info["n_local_trials"] * 20_000
    assert out.info["pruned"] and out.info["n_distance_evals"] < 0.25 * full          # measured: 16 %
    _, sq = backends.torch_assign(X.double(), out.centroids.double())
    assert out.info["potential"] == pytest.approx(float(sq.sum()), rel=1e-5)
    assert torch.unique(out.centroids, dim=0).shape[0] == 256


def test_box_refresh_interval_and_chunking_do_not_change_the_result(monkeypatch):
    X = synthetic.layer_subvectors(3000, 3, seed=2).double()
    w = torch.rand(3000, generator=torch.Generator().manual_seed(1), dtype=F64)
    u = uniforms(60, 5, 3)
    base = greedy_kmeanspp(X, w, 60, 5, u)
    monkeypatch.setattr(fast, "REFRESH", 1)
    monkeypatch.setattr(fast, "CHUNK_FLOATS", 64)                      # many evaluation chunks per step
    other = greedy_kmeanspp(X, w, 60, 5, u)
    assert torch.equal(base.chosen, other.chosen) and torch.equal(base.candidates, other.candidates)
    assert other.n_distance_evals <= base.n_distance_evals                      # fresher boxes prune at least as much


def test_cuda_sums_path_on_cpu_gives_the_same_seeding(monkeypatch):
    """CPU twin of the CUDA path: per-candidate gains summed with the one-hot product."""
    X = synthetic.layer_subvectors(5000, 4, seed=3).double()
    u = uniforms(80, 6, 0)
    base = greedy_kmeanspp(X, torch.ones(5000, dtype=F64), 80, 6, u)
    monkeypatch.setattr(fast, "segment_sums", functools.partial(backends.segment_sums, method="onehot"))
    twin = greedy_kmeanspp(X, torch.ones(5000, dtype=F64), 80, 6, u)
    assert torch.equal(base.chosen, twin.chosen) and torch.equal(base.candidates, twin.candidates)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("d", [4, 16])
def test_cuda_seeding_matches_cpu(d):
    X = synthetic.layer_subvectors(20_000, d, seed=4).double()
    w = torch.rand(20_000, generator=torch.Generator().manual_seed(0), dtype=F64)
    u = uniforms(200, 7, 1)
    cpu = greedy_kmeanspp(X, w, 200, 7, u)
    gpu = greedy_kmeanspp(X.cuda(), w.cuda(), 200, 7, u.cuda())
    assert torch.equal(cpu.order, gpu.order.cpu())
    assert torch.equal(cpu.chosen, gpu.chosen.cpu()) and torch.equal(cpu.candidates, gpu.candidates.cpu())
    out = init_kmeanspp(X.float().cuda(), w.float().cuda(), 200, torch.Generator().manual_seed(0),
                        n_local_trials=None)
    assert out.centroids.device.type == "cuda" and out.centroids.shape == (200, d)


# ============================================================ the law, against scikit-learn

def test_final_potential_law_matches_sklearn_ks():
    """Two-sample KS test on the potential after k = 6 centres, 300 seeds each, 400 points in 2-d.

    400 points make 16 leaves, so the k-d order, the two-level draws and the box
    pruning all act.  The same test tells greedy seeding from plain D^2 seeding.
    """
    X = synthetic.gaussian_mixture(400, 2, 12, std=0.08, seed=5).double()
    Xn = X.numpy()

    def potential(C):
        return float(torch.cdist(X, torch.as_tensor(C)).min(1).values.pow(2).sum())

    ours = [init_kmeanspp(X, torch.ones(400, dtype=F64), 6, torch.Generator().manual_seed(s),
                          n_local_trials=None).info["potential"] for s in range(300)]
    theirs = [potential(kmeans_plusplus(Xn, 6, random_state=s)[0]) for s in range(300)]
    plain = [init_kmeanspp(X, torch.ones(400, dtype=F64), 6, torch.Generator().manual_seed(s),
                           n_local_trials=1).info["potential"] for s in range(300)]
    assert ks_2samp(ours, theirs).pvalue > 1e-3
    assert ks_2samp(plain, theirs).pvalue < 1e-3                       # the test has power
    assert np.median(ours) < np.median(plain)
