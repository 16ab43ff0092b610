"""The seedings from neighbouring fields: k-means|| (``kmeans-parallel``) and AFK-MC^2 (``afkmc2``).

Hand-checked laws first (k-means||'s per-point inclusion probability with
weights, AFK-MC^2's proposal and acceptance rule, its convergence to the D^2 law
with long chains), then the choices the modules' docstrings make (Spark's
rounds, distinct candidates, the fill when there are k or fewer, the local
Lloyd's empty-cluster rule), then weights against duplicated points, and
faiss's own AFK-MC^2 run beside ours.  Laws are estimated over many seeds and
compared with 4-sigma binomial bounds or a two-sample Kolmogorov-Smirnov test;
each such test also shows that the wrong law would be rejected, so it can fail.
"""

import math

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

import pgbench
from pgbench import registry, synthetic
from pgbench.heuristics import init_afkmc2 as afk
from pgbench.heuristics import init_kmeans_parallel as kpar

kmeans_parallel = registry.get("init", "kmeans-parallel")
afkmc2 = registry.get("init", "afkmc2")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def ones(n):
    return torch.ones(n, dtype=torch.float64)


def potential(X, w, C):
    """sum_i w_i min_j |x_i - c_j|^2 (float64)."""
    return float((torch.cdist(X.double(), C.double()).pow(2).min(1).values * w.double()).sum())


def within(freq, p, trials, sigmas=4.0):
    """``freq`` is within ``sigmas`` binomial standard deviations of ``p``."""
    return abs(freq - p) <= sigmas * math.sqrt(max(p * (1 - p), 1e-12) / trials)


def two_groups():
    """1-D: 20 light points (weight 1) in [0, 1] and 5 heavy ones (weight 8) in [10, 11], k = 3.

    The weights decide where the third centre goes: an init that ignores them
    has a clearly different potential law.
    """
    X = torch.cat([torch.linspace(0, 1, 20), torch.linspace(10, 11, 5)])[:, None].float()
    w = torch.cat([torch.ones(20), torch.full((5,), 8.0)])
    return X, w


def duplicated(X, w):
    """Every point repeated w times, copies adjacent, unit weights."""
    reps = w.round().long()
    return X.repeat_interleave(reps, 0), torch.ones(int(reps.sum()))


# ============================================================ k-means|| (kmeans-parallel)

def test_kmeans_parallel_first_round_inclusion_law_with_weights():
    X = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    w = torch.tensor([1.0, 2.0, 1.0, 3.0], dtype=torch.float64)
    k, l = 1, 0.9                                # l = oversampling_factor * k: some q below 1, some capped
    expected, spark_rule = torch.zeros(4), torch.zeros(4)
    for f in range(4):                           # first candidate f with probability w_f / sum(w)
        d2 = (X[:, 0] - X[f, 0]) ** 2
        q = (l * d2 / float((w * d2).sum())).clamp(max=1)
        p = 1 - (1 - q) ** w                     # at least one of w copies drawn
        p[f] = 1.0
        expected += float(w[f] / w.sum()) * p
        spark_rule += float(w[f] / w.sum()) * torch.where(torch.arange(4) == f, 1.0, (w * q).clamp(max=1))
    trials = 4000
    hits = torch.zeros(4)
    for seed in range(trials):
        cand, rounds = kpar._oversample(X, w, k, gen(seed), l / k, 1)
        assert rounds == 1 and cand.unique().numel() == cand.numel()
        hits[cand] += 1
    for j in range(4):
        assert within(float(hits[j]) / trials, float(expected[j]), trials), (j, hits / trials, expected)
    # the test tells the rule apart from the naive min(1, l w D^2 / phi)
    assert any(not within(float(spark_rule[j]), float(expected[j]), trials) for j in range(4))


def test_kmeans_parallel_runs_spark_rounds_and_keeps_distinct_candidates():
    X = synthetic.gaussian_mixture(2000, 2, 16, seed=3)
    for n_rounds in (1, 2, 3):
        out = kmeans_parallel(X, torch.ones(2000), 16, gen(0), n_rounds=n_rounds)
        info = out.info
        assert info["n_rounds"] == n_rounds
        assert info["n_distinct_candidates"] == info["n_candidates"] > 16      # continuous data: no copies
        assert 1 + 0.5 * 32 * n_rounds < info["n_candidates"] <= 1 + 2 * 32 * n_rounds
        assert info["n_filled"] == 0 and out.centroids.shape == (16, 2)
    # duplicates drawn in one round count once
    dup = X[:50].repeat(4, 1)
    info = kmeans_parallel(dup, torch.ones(200), 4, gen(0)).info
    assert info["n_distinct_candidates"] <= 50 < 200


def test_kmeans_parallel_fewer_distinct_points_than_k_keeps_all_and_fills_with_copies():
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    X = pts.repeat(4, 1)
    for seed in range(10):
        out = kmeans_parallel(X, torch.ones(12), 5, gen(seed))
        rows = [tuple(r) for r in out.centroids.tolist()]
        assert set(rows) == {tuple(r) for r in pts.tolist()}                   # every location, nothing else
        assert out.info["n_distinct_candidates"] == 3
        assert out.info["n_filled"] == 2 and out.info["n_filled_duplicates"] == 2


def test_kmeans_parallel_k_equals_n_gives_every_point():
    X = torch.rand(7, 3, generator=gen(4))
    for seed in range(10):
        C = kmeans_parallel(X, torch.ones(7), 7, gen(seed)).centroids
        assert sorted(map(tuple, C.tolist())) == sorted(map(tuple, X.tolist()))


def test_kmeans_parallel_identical_points_stop_sampling_and_stay_finite():
    X = torch.tensor([[0.5, -1.25]]).repeat(10, 1)
    out = kmeans_parallel(X, torch.ones(10), 3, gen(0))
    assert out.info["n_rounds"] == 0 and out.info["n_filled_duplicates"] == 2
    assert torch.equal(out.centroids, X[:3])


def test_kmeans_parallel_far_outlier_gets_its_own_centre():
    X = torch.cat([synthetic.gaussian_mixture(60, 3, 3, spread=10.0, std=0.3, seed=14), torch.full((1, 3), 1e6)])
    for seed in range(10):
        C = kmeans_parallel(X, torch.ones(61), 4, gen(seed)).centroids
        assert torch.isfinite(C).all()
        assert bool((C == 1e6).all(1).any())                    # alone in its cluster, so exactly there


def test_kmeans_parallel_n_local_trials_none_is_greedy_and_one_is_spark(monkeypatch):
    X = synthetic.gaussian_mixture(1000, 2, 8, seed=0)
    k = 20
    seen = []
    cdist = torch.cdist

    def spy(a, b, *args, **kwargs):
        seen.append(a.shape[0])                                 # draws per local step
        return cdist(a, b, *args, **kwargs)

    for trials, want in ((None, 2 + int(math.log(k))), (1, 1), (3, 3)):
        seen.clear()
        monkeypatch.setattr(torch, "cdist", spy)
        out = kmeans_parallel(X, torch.ones(1000), k, gen(0), n_local_trials=trials)
        monkeypatch.undo()
        assert out.info["n_distinct_candidates"] > k and out.info["n_local_trials"] == want
        assert seen == [want] * (k - 1)


def test_kmeans_parallel_local_lloyd_moves_an_empty_cluster_to_a_candidate():
    P = torch.tensor([[0.0], [1.0], [10.0]])
    mass = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    picks = set()
    for seed in range(30):
        C, ran = kpar._local_lloyd(P, mass, torch.tensor([[0.0], [0.0]]), 1, gen(seed))
        assert ran == 1
        assert float(C[0, 0]) == pytest.approx(11 / 3)          # every candidate ties to centre 0
        picks.add(float(C[1, 0]))                               # the empty one: a uniform candidate
    assert picks == {0.0, 1.0, 10.0}
    C, ran = kpar._local_lloyd(P, mass, torch.tensor([[0.5], [10.0]]), 30, gen(0))
    assert ran == 1 and C[:, 0].tolist() == [0.5, 10.0]         # converged: the second pass moves nothing


def test_kmeans_parallel_no_local_lloyd_returns_candidates():
    X = synthetic.gaussian_mixture(500, 2, 4, seed=1)
    C = kmeans_parallel(X, torch.ones(500), 8, gen(0), n_local_iter=0).centroids
    assert {tuple(r) for r in C.tolist()} <= {tuple(r) for r in X.tolist()}


def test_kmeans_parallel_weights_equal_duplicates_in_distribution():
    """One Bernoulli draw per point: equal in law, not draw for draw (the KS test over 200 seeds)."""
    X, w = two_groups()
    Xd, wd = duplicated(X, w)
    seeds = range(200)
    weighted = [potential(X, w, kmeans_parallel(X, w, 3, gen(s)).centroids) for s in seeds]
    copies = [potential(X, w, kmeans_parallel(Xd, wd, 3, gen(s)).centroids) for s in seeds]
    ignored = [potential(X, w, kmeans_parallel(X, torch.ones(25), 3, gen(s)).centroids) for s in seeds]
    assert ks_2samp(weighted, copies).pvalue > 0.01
    assert ks_2samp(weighted, ignored).pvalue < 1e-6             # the test sees weights being ignored


# ============================================================ AFK-MC^2 (afkmc2)

def test_afkmc2_proposal_hand_checked():
    X = torch.tensor([[0.0], [1.0], [3.0]])
    w = torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)
    q, cum = afk._proposal(X, w, torch.tensor([0]))
    # w d^2 = [0, 1, 18], sum 19; w / sum(w) = [1/4, 1/4, 1/2]
    assert q.tolist() == pytest.approx([1 / 8, 1 / 8 + 1 / 38, 1 / 4 + 9 / 19])
    assert float(cum[-1]) == pytest.approx(1.0)
    q, _ = afk._proposal(torch.zeros(3, 1), w, torch.tensor([1]))   # every d^2 = 0: q = w / sum(w)
    assert q.tolist() == pytest.approx([0.25, 0.25, 0.5])


def test_afkmc2_chain_accepts_by_the_product_rule():
    # pi = w D^2, q the proposal, u the uniforms: move to y when pi(y) q(x) > u pi(x) q(y)
    assert afk._chain([0.0, 2.0, 1.0], [0.5, 0.25, 0.25], [0.9, 0.9]) == 1     # D = 0 state leaves; 0.25 < 0.45 stays
    assert afk._chain([1.0, 1.0], [0.5, 0.5], [0.99]) == 1                     # ratio 1 > 0.99
    assert afk._chain([2.0, 1.0], [0.5, 0.5], [0.6]) == 0                      # ratio 0.5 < 0.6
    assert afk._chain([2.0, 1.0], [0.5, 0.5], [0.4]) == 1                      # ratio 0.5 > 0.4
    assert afk._chain([0.0, 0.0, 0.0], [0.3, 0.3, 0.4], [0.0, 0.0]) == 0       # nothing to move to: stays


def _second_centre_laws(x, w):
    """Exact P(second centre = j) under k-means++ D^2 sampling and under the proposal q alone."""
    n = len(x)
    d2 = (x[:, None] - x[None, :]) ** 2                             # (n, n)
    first = w / w.sum()
    dsq = sum(first[f] * w * d2[f] / (w * d2[f]).sum() for f in range(n))
    prop = sum(first[f] * (0.5 * w / w.sum() + 0.5 * w * d2[f] / (w * d2[f]).sum()) for f in range(n))
    return dsq, prop


def test_afkmc2_long_chains_draw_the_k_means_pp_law():
    x = torch.tensor([0.0, 1.0, 2.0, 6.0, 10.0], dtype=torch.float64)
    w = torch.tensor([1.0, 3.0, 1.0, 1.0, 2.0], dtype=torch.float64)
    dsq, prop = _second_centre_laws(x, w)
    trials = 3000
    X = x[:, None].float()
    for m, law in ((200, dsq), (1, prop)):                           # m = 1: no chain, q itself
        hits = torch.zeros(5)
        for seed in range(trials):
            C = afkmc2(X, w.float(), 2, gen(seed), chain_length=m).centroids
            hits[int((x == float(C[1, 0])).nonzero()[0, 0])] += 1
        freq = hits / trials
        assert all(within(float(freq[j]), float(law[j]), trials) for j in range(5)), (m, freq, law)
    assert any(not within(float(prop[j]), float(dsq[j]), trials) for j in range(5))   # the laws differ


def test_afkmc2_weights_equal_duplicates_draw_for_draw():
    X, w = two_groups()
    Xd, wd = duplicated(X, w)
    for seed in range(20):
        a = afkmc2(X, w, 3, gen(seed)).centroids
        b = afkmc2(Xd, wd, 3, gen(seed)).centroids
        assert torch.equal(a, b), seed


def test_afkmc2_identical_points_duplicate_the_centre():
    X = torch.tensor([[0.5, -1.25]]).repeat(10, 1)
    out = afkmc2(X, torch.ones(10), 3, gen(0))
    assert torch.equal(out.centroids, X[:3]) and out.info["n_chains_moved"] == 0


def _faiss_afkmc2(X, k, chain_proposals, seed):
    import faiss

    init = faiss.ClusteringInitialization(X.shape[1], k)
    init.method = faiss.ClusteringInitMethod_AFK_MC2
    init.seed = seed
    init.afkmc2_chain_length = chain_proposals
    x = np.ascontiguousarray(X.numpy(), dtype=np.float32)
    C = np.empty((k, X.shape[1]), dtype=np.float32)
    init.init_centroids(X.shape[0], faiss.swig_ptr(x), faiss.swig_ptr(C))
    return torch.from_numpy(C)


def test_afkmc2_agrees_with_faiss_in_distribution():
    """faiss's AFK_MC2 beside ours on data without duplicate points.

    The two cannot agree draw for draw (faiss draws from std::mt19937_64 with its
    own seed), and they differ on duplicates (faiss rejects chosen indices and
    never leaves a zero-distance state), so the comparison is the law of the
    potential over 300 seeds, with a short chain (m = 4 here, 3 proposals in
    faiss's counting) so that both are still far from k-means++ and a
    difference in the chain would show.  The control: no chain at all (m = 1)
    is told apart from faiss's.
    """
    X = synthetic.gaussian_mixture(300, 2, 6, spread=10.0, std=1.0, seed=5)
    w = torch.ones(300)
    k, seeds = 8, range(300)
    ours = [potential(X, w, afkmc2(X, w, k, gen(s), chain_length=4).centroids) for s in seeds]
    theirs = [potential(X, w, _faiss_afkmc2(X, k, 3, s)) for s in seeds]
    no_chain = [potential(X, w, afkmc2(X, w, k, gen(s), chain_length=1).centroids) for s in seeds]
    assert ks_2samp(ours, theirs).pvalue > 0.01
    assert ks_2samp(no_chain, theirs).pvalue < 1e-4


# ============================================================ both: in the engine

@pytest.mark.parametrize("init, key", [("kmeans-parallel", "n_distinct_candidates"), ("afkmc2", "n_chains_moved")])
def test_field_seedings_run_in_kmeans_and_report_what_they_did(init, key):
    X = synthetic.gaussian_mixture(2000, 2, 8, spread=20.0, std=0.2, seed=0)
    for seed in range(3):
        res = pgbench.kmeans(X, 8, init=init, resolve="sklearn", n_iter=10, seed=seed)
        assert res.status == "ok" and res.init == init and key in res.init_info
        assert math.isfinite(res.inertia)
