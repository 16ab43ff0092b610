"""Baseline resolvers against the spec (shared/notes/baselines.md §1.4, §2.3, §3.5).

Every case is small and hand-checked: the expected numbers are derived from the
spec's description of fairseq's ``EM.resolve_empty_clusters``, scikit-learn's
``_relocate_empty_clusters_dense`` + ``_average_centers`` and faiss's
``split_clusters``, not from the code under test.  Initialisations are in
``test_baselines_init.py``.
"""

import contextlib
import signal

import pytest
import torch

import pgbench
from pgbench import backends, registry
from pgbench.state import KMeansState

fairseq_resolve = registry.get("resolve", "fairseq")
sklearn_resolve = registry.get("resolve", "sklearn")
faiss_resolve = registry.get("resolve", "faiss")

FAISS_EPS = 1.0 / 1024


def col(values):
    """1-D values as an (n, 1) float64 tensor."""
    return torch.tensor(values, dtype=torch.float64)[:, None]


def make_state(X, C, weights=None):
    X = torch.as_tensor(X, dtype=torch.float64)
    C = torch.as_tensor(C, dtype=torch.float64).clone()
    w = torch.ones(X.shape[0], dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    state = KMeansState(X, w, C, backends.torch_assign)
    state.reassign()
    return state


def run(X, init, resolve, n_iter=1, **kw):
    """pgbench.kmeans in float64 with the torch backend and explicit initial centroids."""
    return pgbench.kmeans(X, len(init), init=torch.as_tensor(init, dtype=torch.float64), resolve=resolve,
                          n_iter=n_iter, backend="torch", dtype="float64", **kw)


def copy_state(state):
    return KMeansState(state.X, state.weights, state.centroids.clone(), state.assign, state.labels.clone(),
                       state.sq_dists.clone(), state.counts.clone(), state.sizes.clone())


@contextlib.contextmanager
def time_limit(seconds):
    def fail(signum, frame):
        raise TimeoutError(f"did not finish within {seconds} s")
    old = signal.signal(signal.SIGALRM, fail)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ============================================================ fairseq (§1.3-1.4)
#
# Three well-separated groups, each split evenly around its centre, so a split of a
# group's centroid by +-e (|e| ~ 1e-6) sends exactly half of the group to each copy:
#   A: 5 x -1, 5 x +1 (centre 0, size 10);  B: 4 x 99, 4 x 101 (100, 8);  C: 3 x 199, 3 x 201 (200, 6)
# Empty clusters start far away.  Round 1 splits A (10 > 8 > 6) -> 5,5,8,6; round 2 splits
# B (8) -> 5,5,4,4,6; round 3 splits C (6).  Each empty needs exactly one round.

GROUPS = col([-1.0] * 5 + [1.0] * 5 + [99.0] * 4 + [101.0] * 4 + [199.0] * 3 + [201.0] * 3)
CENTRES = [0.0, 100.0, 200.0]


def groups_init(m):
    return col(CENTRES + [1000.0 * (j + 1) for j in range(m)])


def test_fairseq_one_empty_per_round_and_donor_is_current_largest():
    state = make_state(GROUPS, groups_init(3))
    assert state.empty_ids().tolist() == [3, 4, 5]
    before = state.n_assignments
    out = fairseq_resolve(state, torch.Generator().manual_seed(0), eps=1e-6, max_tentatives=100)
    assert (out.n_found, out.n_resolved, out.n_left, out.rounds) == (3, 3, 0, 3)
    assert not out.gave_up and not out.stop
    assert state.n_assignments - before == out.rounds          # one full re-assignment per round
    # each group was the donor exactly once: two centroids within 1e-5 of each centre.  A donor
    # fixed at the start (instead of the current largest) would have split A three times.
    C = state.centroids[:, 0]
    for c in CENTRES:
        assert int(((C - c).abs() < 1e-5).sum()) == 2
    assert sorted(state.counts.tolist()) == [3, 3, 4, 4, 5, 5]


def test_fairseq_split_positions_after_one_round():
    X = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]], dtype=torch.float64)
    state = make_state(X, [[0.0, 0.0], [10.0, 10.0]])
    out = fairseq_resolve(state, torch.Generator().manual_seed(0), eps=1e-6, max_tentatives=100)
    assert out.rounds == 1 and out.n_left == 0
    new, donor = state.centroids[1], state.centroids[0]
    e = new.clone()                                            # new = donor_old + e with donor_old = 0
    assert torch.equal(donor, -e)                              # donor moved the opposite way
    assert 1e-8 < float(e.norm()) < 5e-6                       # |e| ~ eps (absolute)
    # the full re-assignment: x goes to +e iff x.e > 0 (two of the four points)
    assert state.labels.tolist() == (X @ e > 0).long().tolist()
    assert state.counts.tolist() == [2, 2]


def test_fairseq_perturbation_is_absolute_gaussian_of_scale_eps():
    X = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]], dtype=torch.float64)
    samples = []
    base = make_state(X, [[0.0, 0.0], [10.0, 10.0]])
    for seed in range(200):
        state = copy_state(base)
        fairseq_resolve(state, torch.Generator().manual_seed(seed), eps=1e-6, max_tentatives=0)
        samples.append(state.centroids[1] / 1e-6)              # e / eps
    z = torch.stack(samples).flatten()                         # 400 draws, N(0, 1) by the spec
    assert abs(float(z.mean())) < 0.2
    assert 0.85 < float(z.std()) < 1.15
    # absolute: a donor at (1000, -1000) gets the same e as a donor at the origin
    far = X + torch.tensor([1000.0, -1000.0], dtype=torch.float64)
    s0 = make_state(X, [[0.0, 0.0], [10.0, 10.0]])
    s1 = make_state(far, [[1000.0, -1000.0], [5000.0, 5000.0]])
    fairseq_resolve(s0, torch.Generator().manual_seed(3), eps=1e-6, max_tentatives=100)
    fairseq_resolve(s1, torch.Generator().manual_seed(3), eps=1e-6, max_tentatives=100)
    shift = torch.tensor([1000.0, -1000.0], dtype=torch.float64)
    assert torch.allclose(s1.centroids - shift, s0.centroids, rtol=0, atol=1e-12)


@pytest.mark.parametrize("first, donor, other", [
    ([9.0, 11.0, -1.0, 1.0], 1, 0),     # cluster 1's points come first in the assignment
    ([-1.0, 1.0, 9.0, 11.0], 0, 1),     # cluster 0's points come first
])
def test_fairseq_donor_ties_go_to_first_label_in_assignment(first, donor, other):
    centres = [0.0, 10.0, 1000.0]
    state = make_state(col(first), col(centres))
    assert state.counts.tolist() == [2, 2, 0]
    out = fairseq_resolve(state, torch.Generator().manual_seed(0), eps=1e-6, max_tentatives=100)
    assert out.rounds == 1 and out.n_left == 0
    C = state.centroids[:, 0]
    assert float(C[other]) == centres[other]                   # the other one is untouched
    assert float(C[donor]) != centres[donor]
    assert abs(float(C[2]) - centres[donor]) < 1e-5            # the new centroid sits on the donor
    assert abs(float(C[2] + C[donor]) - 2 * centres[donor]) < 1e-12


def test_fairseq_target_is_a_uniformly_random_empty_cluster():
    # two empties (3, 4); round 1's donor is A (centre 0), so the target of round 1 is whichever
    # empty ends up next to 0.  Both must occur across seeds.
    firsts = []
    for seed in range(40):
        state = make_state(GROUPS, groups_init(2))
        fairseq_resolve(state, torch.Generator().manual_seed(seed), eps=1e-6, max_tentatives=100)
        near_a = [j for j in (3, 4) if abs(float(state.centroids[j, 0])) < 1e-5]
        assert len(near_a) == 1
        firsts.append(near_a[0])
    assert 8 <= firsts.count(3) <= 32


@pytest.mark.parametrize("m", [1, 2, 3])
def test_fairseq_max_tentatives_off_by_one(m):
    # an E-step needing m rounds: max_tentatives = m succeeds ...
    state = make_state(GROUPS, groups_init(m))
    out = fairseq_resolve(state, torch.Generator().manual_seed(0), eps=1e-6, max_tentatives=m)
    assert (out.rounds, out.n_left, out.gave_up, out.stop) == (m, 0, False, False)
    # ... max_tentatives = m - 1 fails at round m, even though that round removed the last empty
    state = make_state(GROUPS, groups_init(m))
    out = fairseq_resolve(state, torch.Generator().manual_seed(0), eps=1e-6, max_tentatives=m - 1)
    assert (out.rounds, out.n_left, out.gave_up, out.stop) == (m, 0, True, True)
    assert out.n_found == m


def test_fairseq_gives_up_with_empties_left():
    state = make_state(GROUPS, groups_init(3))
    out = fairseq_resolve(state, torch.Generator().manual_seed(0), eps=1e-6, max_tentatives=1)
    assert (out.rounds, out.n_found, out.n_resolved, out.n_left) == (2, 3, 2, 1)
    assert out.gave_up and out.stop


def test_fairseq_stop_through_kmeans_skips_the_update_and_ends_iterations():
    res = run(GROUPS, groups_init(3), "fairseq", n_iter=5, max_tentatives=2)
    assert res.status == "stopped"
    assert res.n_iter == 1 and len(res.trace) == 1
    assert res.trace[0].gave_up and res.trace[0].rounds == 3 and res.trace[0].n_empty_assigned == 3
    # M-step skipped: the centroids are the perturbed pairs around 0/100/200, not the half means
    C = sorted(res.centroids[:, 0].tolist())
    for got, centre in zip(C, [0, 0, 100, 100, 200, 200]):
        assert abs(got - centre) < 1e-5
    # same run with one more tentative: the update happens and all iterations run
    ok = run(GROUPS, groups_init(3), "fairseq", n_iter=5, max_tentatives=3)
    assert ok.status == "ok" and ok.n_iter == 5
    assert sorted(ok.centroids[:, 0].tolist()) == [-1.0, 1.0, 99.0, 101.0, 199.0, 201.0]


def test_fairseq_stop_leaves_empties_in_final_result():
    res = run(GROUPS, groups_init(3), "fairseq", n_iter=5, max_tentatives=1)
    assert res.status == "stopped" and res.n_iter == 1
    assert res.n_empty_final == 1


# ============================================================ scikit-learn (§2.3)

def test_sklearn_empty_lands_exactly_on_farthest_point_from_its_own_centre():
    # A: 10 tight points around the origin (largest cluster); B: 50, 52, 60 with centre 50.
    # Farthest from its own centre is 60 (d^2 = 100) in the SMALLER cluster B.
    a = [[0.1 * (i % 3 - 1), 0.1 * (i // 3 - 1)] for i in range(10)]
    X = torch.tensor(a + [[50.0, 0.0], [52.0, 0.0], [60.0, 0.0]], dtype=torch.float64)
    init = [[0.0, 0.0], [50.0, 0.0], [-500.0, -500.0]]
    res = run(X, init, "sklearn")
    assert res.trace[0].n_empty_assigned == 1 and res.trace[0].n_resolved == 1
    assert torch.equal(res.centroids[2], X[12])                      # exactly on the far point
    assert torch.equal(res.centroids[1], torch.tensor([51.0, 0.0], dtype=torch.float64))  # B without it
    assert torch.allclose(res.centroids[0], X[:10].mean(0), atol=1e-15)


def test_sklearn_several_empties_take_the_several_farthest_points():
    # A = 0,1,2,3,5,20 around 2 (d^2 4,1,0,1,9,324); B = 100,101,130 around 100 (0,1,900)
    X = col([0.0, 1.0, 2.0, 3.0, 5.0, 20.0, 100.0, 101.0, 130.0])
    init = col([2.0, 100.0, 1000.0, 2000.0, -1000.0])
    res = run(X, init, "sklearn")
    assert res.trace[0].n_empty_assigned == 3 and res.trace[0].n_resolved == 3
    C = res.centroids[:, 0].tolist()
    assert sorted(C[2:]) == [5.0, 20.0, 130.0]                       # the three largest d^2
    assert C[0] == 1.5 and C[1] == 100.5                             # donors' means without them


def test_sklearn_zero_distance_guard_relocates_nothing_then_largest_fallback():
    # every point sits exactly on its centroid: max d^2 == 0 -> no relocation
    X = col([1.0, 1.0, 1.0, 5.0, 5.0])
    state = make_state(X, col([1.0, 5.0, 100.0]))
    labels = state.labels.clone()
    out = sklearn_resolve(state, torch.Generator().manual_seed(0))
    assert out.info["n_relocated"] == 0 and out.info["guard_zero_distance"]
    assert torch.equal(state.labels, labels)
    # spec §2.3 step 2: the still-empty cluster goes to the largest cluster's position (1, size 3)
    res = run(X, col([1.0, 5.0, 100.0]), "sklearn")
    assert res.centroids[:, 0].tolist() == [1.0, 5.0, 1.0]
    assert res.status == "unresolved" and res.n_empty_final == 1


def test_sklearn_drained_singleton_donor_falls_back_to_largest_cluster():
    # spec §2.3 example: X = 0, 10, 10, centres 1, 10, 20.  Cluster 2 is empty; the farthest point
    # is 0 (d^2 = 1), the only member of cluster 0, which is drained.  Cluster 0 then gets the
    # position of the largest cluster (10).  (scikit-learn itself gives [20, 10, 0] through a
    # quirk the spec says not to replicate.)
    res = run(col([0.0, 10.0, 10.0]), col([1.0, 10.0, 20.0]), "sklearn")
    assert res.centroids[:, 0].tolist() == [10.0, 10.0, 0.0]


def test_sklearn_empty_means_zero_weight():
    # spec §2.3: "empty = clusters whose accumulated weight is exactly 0".  Cluster 1 holds only the
    # zero-weight point 50, cluster 2 holds nothing: both are empty for scikit-learn.  d^2 to the own
    # centre (1): 1, 0, 4, and 0 for 50 -> the two farthest points are 3 and 0.
    X = col([0.0, 1.0, 3.0, 50.0])
    res = run(X, col([1.0, 50.0, -100.0]), "sklearn", sample_weight=[1.0, 1.0, 1.0, 0.0])
    C = res.centroids[:, 0].tolist()
    assert sorted(C[1:]) == [0.0, 3.0]
    assert C[0] == 1.0


def test_sklearn_farthest_is_by_distance_not_weighted_distance():
    # p = 10 (d^2 = 100, weight 2^-7) vs q = 5.5 (d^2 = 30.25, weight 64): scikit-learn ranks by d^2
    X = col([0.0, 0.5, -0.5, 5.5, 10.0])
    w = [1.0, 1.0, 1.0, 64.0, 2.0 ** -7]
    res = run(X, col([0.0, -100.0]), "sklearn", sample_weight=w)
    assert float(res.centroids[1, 0]) == 10.0


# ============================================================ faiss (§3.5)

def test_faiss_split_runs_after_update_with_multiplicative_parity_perturbation():
    X = torch.tensor([[9.0, 20.0, 30.0], [11.0, 20.0, 30.0], [10.0, 19.0, 30.0], [10.0, 21.0, 30.0]],
                     dtype=torch.float64)
    assert registry.get("resolve", "faiss").when == "after_update"
    res = run(X, [[9.0, 20.0, 30.0], [100.0, 100.0, 100.0]], "faiss")
    # n - k = 2, cluster 0 has size 4: p = 3/2 >= 1, always the donor.  The split uses the
    # UPDATED centroid (the mean (10, 20, 30)), not the initial (9, 20, 30).
    up, down = 1 + FAISS_EPS, 1 - FAISS_EPS
    mean = torch.tensor([10.0, 20.0, 30.0], dtype=torch.float64)
    assert torch.equal(res.centroids[1], mean * torch.tensor([up, down, up], dtype=torch.float64))
    assert torch.equal(res.centroids[0], mean * torch.tensor([down, up, down], dtype=torch.float64))
    assert res.centroids[1].tolist() == [10.009765625, 19.98046875, 30.029296875]


def _sized_state(sizes, weights=None):
    """Cluster j holds sizes[j] copies of point (j+1, 2(j+1)); empty clusters sit far away."""
    X, C = [], []
    for j, s in enumerate(sizes):
        p = [float(j + 1), 2.0 * (j + 1)]
        X += [p] * s
        C.append(p if s else [1000.0 * (j + 1), -1000.0 * (j + 1)])
    state = make_state(X, C, weights)
    assert state.counts.tolist() == list(sizes)
    return state


def _scaled(v, sign):
    f = torch.tensor([1 + sign * FAISS_EPS, 1 - sign * FAISS_EPS], dtype=torch.float64)
    return v * f


def test_faiss_deterministic_donors_and_halved_bookkeeping():
    # sizes [2, 0, 0, 3], n = 5, k = 4 -> n - k = 1, acceptance p = h - 1: certain when h >= 2,
    # impossible when h <= 1.  Empty 1: c0 (h = 2) is accepted; bookkeeping h1 = 1, h0 = 2 - 1 = 1.
    # Empty 2: c0 and c1 now have p = 0, so the donor must be c3.  Without the halving (h1 = 0 or
    # h0 = 2) the donor of empty 2 would be c0 or c1.
    for run_seed in range(3):
        for seed in (1234, 0, 7):
            state = _sized_state([2, 0, 0, 3])
            C0, C3 = state.centroids[0].clone(), state.centroids[3].clone()
            labels, n_assign = state.labels.clone(), state.n_assignments
            out = faiss_resolve(state, torch.Generator().manual_seed(run_seed), split_seed=seed)
            assert torch.equal(state.centroids[1], _scaled(C0, +1))
            assert torch.equal(state.centroids[0], _scaled(C0, -1))
            assert torch.equal(state.centroids[2], _scaled(C3, +1))
            assert torch.equal(state.centroids[3], _scaled(C3, -1))
            assert (out.n_found, out.n_resolved, out.n_left) == (2, 2, 0)
            assert torch.equal(state.labels, labels) and state.n_assignments == n_assign  # no reassign


def _donor_of(state_before, centroid):
    """Index j with centroid == C_before[j] * (1+eps, 1-eps)."""
    close = ((_scaled(state_before, +1) - centroid).abs() <= 1e-12 * centroid.abs()).all(1)   # (k,)
    hits = torch.nonzero(close).flatten().tolist()
    assert len(hits) == 1
    return hits[0]


def test_faiss_scan_acceptance_singletons_never_donors():
    # sizes [1,3,1,0,3,1,1,4]: n = 14, k = 8, n - k = 6; p = 1/3, 1/3, 1/2 for c1, c4, c7 and 0 for
    # singletons.  The scan from c0 gives P(c1) = 3/7, P(c4) = 2/7, P(c7) = 2/7 (low-index bias;
    # proportional-to-(size-1) would give 2/7, 2/7, 3/7).
    counts = {1: 0, 4: 0, 7: 0}
    n = 500
    base = _sized_state([1, 3, 1, 0, 3, 1, 1, 4])
    for seed in range(n):
        state = copy_state(base)
        before = state.centroids.clone()
        faiss_resolve(state, torch.Generator().manual_seed(0), split_seed=seed)
        donor = _donor_of(before, state.centroids[3])
        assert donor in counts                                  # never a singleton
        counts[donor] += 1
    assert abs(counts[1] / n - 3 / 7) < 0.07
    assert abs(counts[4] / n - 2 / 7) < 0.07
    assert abs(counts[7] / n - 2 / 7) < 0.07


def test_faiss_halved_donor_can_donate_again_with_scan_probability():
    # sizes [0, 0, 10], n - k = 7.  Empty 0 <- c2 (p = 9/7).  Bookkeeping h = [5, 0, 5]; empty 1:
    # c0 p = 4/7, c1 p < 0, c2 p = 4/7 -> P(donor c0) = (4/7) / (1 - (3/7)^2) = 0.7.
    hits = 0
    n = 500
    base = _sized_state([0, 0, 10])
    for seed in range(n):
        state = copy_state(base)
        C2 = state.centroids[2].clone()
        faiss_resolve(state, torch.Generator().manual_seed(0), split_seed=seed)
        first, c2 = _scaled(C2, +1), _scaled(C2, -1)                 # after the split of empty 0
        C = state.centroids
        from_c0 = (torch.allclose(C[1], _scaled(first, +1), rtol=1e-12, atol=0)
                   and torch.allclose(C[0], _scaled(first, -1), rtol=1e-12, atol=0)
                   and torch.allclose(C[2], c2, rtol=1e-12, atol=0))
        from_c2 = (torch.allclose(C[1], _scaled(c2, +1), rtol=1e-12, atol=0)
                   and torch.allclose(C[2], _scaled(c2, -1), rtol=1e-12, atol=0)
                   and torch.allclose(C[0], first, rtol=1e-12, atol=0))
        assert from_c0 != from_c2
        hits += from_c0
    assert abs(hits / n - 0.7) < 0.06


def test_faiss_donor_choice_ignores_run_seed():
    # random donor choice (p < 1), yet identical results for every run seed: re-seeded at each call
    X = torch.tensor(sum(([[float(j + 1), 2.0 * (j + 1)]] * s for j, s in enumerate([1, 3, 1, 1, 3, 1, 1, 4])), []),
                     dtype=torch.float64)
    init = X.unique(dim=0).tolist()[:7] + [[500.0, 500.0], [600.0, 600.0]]
    results = [pgbench.kmeans(X, 9, init=torch.tensor(init, dtype=torch.float64), resolve="faiss", n_iter=3,
                              seed=s, backend="torch", dtype="float64") for s in range(4)]
    for r in results[1:]:
        assert torch.equal(r.centroids, results[0].centroids)
    # two calls on the same sizes with the run generator advanced in between: the same split
    rng = torch.Generator().manual_seed(5)
    a, b = _sized_state([1, 3, 1, 0, 3, 1, 1, 4]), _sized_state([1, 3, 1, 0, 3, 1, 1, 4])
    faiss_resolve(a, rng)
    torch.rand(17, generator=rng)
    faiss_resolve(b, rng)
    assert torch.equal(a.centroids, b.centroids)


def test_faiss_fallback_to_largest_after_visit_limit():
    # max_visits = 1: the scan visits only c0 (empty, p < 0), then takes the largest cluster (c2)
    for seed in range(20):
        state = _sized_state([0, 2, 5])
        C2 = state.centroids[2].clone()
        out = faiss_resolve(state, torch.Generator().manual_seed(0), split_seed=seed, max_visits=1)
        assert torch.equal(state.centroids[0], _scaled(C2, +1))
        assert out.info["n_fallback_largest"] == 1
    # weighted masses all <= 1 (weights 1/4): every p <= 0, the default 10 k visit bound ends the
    # scan (faiss >= 1.14.2) and the largest mass (c0: 4 points, 1.0) donates
    with time_limit(10):
        state = _sized_state([4, 2, 0], weights=[0.25] * 6)
        C0 = state.centroids[0].clone()
        out = faiss_resolve(state, torch.Generator().manual_seed(0))
    assert torch.equal(state.centroids[2], _scaled(C0, +1))
    assert out.info["n_fallback_largest"] == 1


# ============================================================ none

def test_none_leaves_empties_and_reports_unresolved():
    X = col([0.0, 1.0, 10.0, 11.0])
    res = run(X, col([0.5, 10.5, 99.0]), "none", n_iter=3)
    assert res.status == "unresolved" and res.n_empty_final == 1 and res.n_iter == 3
    assert res.centroids[:, 0].tolist() == [0.5, 10.5, 99.0]     # the empty keeps its stale centroid
    assert all(s.n_resolved == 0 and s.rounds == 0 and s.n_empty_assigned == 1 for s in res.trace)


# ============================================================ every resolver terminates

@pytest.mark.parametrize("resolve", registry.names("resolve"))
def test_resolvers_terminate_with_fewer_distinct_points_than_k(resolve):
    X = torch.arange(5, dtype=torch.float32).repeat(10)[:, None] * torch.tensor([[1.0, -2.0]])  # 50 pts, 5 distinct
    for init in ("fairseq", "random"):
        with time_limit(15):
            res = pgbench.kmeans(X, 20, init=init, resolve=resolve, n_iter=15, seed=1)
        assert res.status in {"unresolved", "stopped"}, (init, res.status)
        assert res.n_empty_final > 0
        assert res.n_empty_final >= 15                            # at most 5 clusters can be non-empty
