"""Dense Weights Consolidation (heuristics/consolidate_dwc.py): hand-checked cases,
each documented choice, Eq. 2, the engine round trip and properties against a
literal reference of Algorithms 4-5."""

import logging
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pgbench
from pgbench.heuristics import consolidate_dwc as dwc
from pgbench import registry
from pgbench.synthetic import gaussian_mixture

DWC = registry.get("consolidate", "dwc")
DEFAULTS = DWC.defaults


def run(X, k, seed=0, weights=None, **params):
    X = torch.as_tensor(X, dtype=torch.float32)
    if X.ndim == 1:
        X = X[:, None]
    w = torch.ones(X.shape[0]) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    return DWC(X, w, k, torch.Generator().manual_seed(seed), **params)


def groups_of(members):
    """The partition of the original indices that ``members`` (n,) encodes, as a set of frozensets."""
    out = {}
    for i, g in enumerate(members.tolist()):
        out.setdefault(g, set()).add(i)
    return {frozenset(s) for s in out.values()}


def reference(X, anchor, eps):
    """Algorithms 4-5 written out literally (plus the final-segment flush), one point at a time.

    Returns (set of dense groups as frozensets, set of independent indices).
    """
    X = X.double()

    def identify(ids):                                 # Algorithm 5 with W = ids, anchor ids[0]
        dist = [float(torch.linalg.vector_norm(X[i] - X[ids[0]])) for i in ids]
        order = sorted(range(len(ids)), key=lambda j: dist[j])   # stable: ties keep their order
        M, W = [dist[j] for j in order], [ids[j] for j in order]
        potential, independent, s = [], [], 0
        for i in range(len(M)):
            if M[i] - M[s] > eps:
                (potential.append(W[s:i]) if i - s > 1 else independent.append(W[s]))
                s = i
        (potential.append(W[s:]) if len(M) - s > 1 else independent.append(W[s]))   # the flush
        return potential, independent

    dense, indep = set(), set()
    stack = [[anchor] + [i for i in range(X.shape[0]) if i != anchor]]
    while stack:                                       # Algorithm 4, depth-first
        ids = stack.pop()
        potential, independent = identify(ids)
        indep.update(independent)
        for c in potential:
            if c[0] == ids[0]:
                dense.add(frozenset(c))
            else:
                stack.append(c)
    return dense, indep


# ----------------------------------------------------------- Algorithm 5 by hand

def test_one_level_by_hand_segments_start_at_s_and_the_last_is_flushed():
    # distances to the anchor 0.0: 0, .5, 1, 1.25, 3, 3.5, 6 with eps = 1 give segments
    # [0 .5 1] (anchor's: dense), [1.25] (cut although 1.25 - .5 < 1: widths are measured
    # from the segment start), [3 3.5] (re-examined), [6] (the final segment, flushed)
    values = [3.5, 0.0, 6.0, 1.25, 0.5, 3.0, 1.0]
    X64 = torch.tensor(values, dtype=torch.float64)[:, None]
    pts = torch.tensor([1, 0, 2, 3, 4, 5, 6])          # the anchor (index 1, value 0) first
    dense_pts, dense_ids, n_dense, n_indep, next_pts, next_gid, next_groups = dwc._split_level(
        X64, pts, torch.zeros(7, dtype=torch.long), 1, 1.0)
    assert n_dense == 1 and set(dense_pts.tolist()) == {1, 4, 6} and dense_ids.tolist() == [0, 0, 0]
    assert n_indep == 2                                 # 1.25 and 6.0
    assert next_groups == 1 and next_pts.tolist() == [5, 0] and next_gid.tolist() == [0, 0]


def test_final_segment_is_flushed_as_a_potential_cluster_or_an_independent_weight():
    # literal pseudocode would drop {5, 5.5} (and {5}) because the loop never closes them
    dense_of, n_dense, n_indep, _ = dwc._identify(torch.tensor([[0.0], [0.5], [5.0], [5.5]], dtype=torch.float64), 0, 1.0)
    assert (n_dense, n_indep) == (2, 0) and dense_of[0] == dense_of[1] != dense_of[2] == dense_of[3]
    dense_of, n_dense, n_indep, _ = dwc._identify(torch.tensor([[0.0], [0.5], [5.0]], dtype=torch.float64), 0, 1.0)
    assert (n_dense, n_indep) == (1, 1) and dense_of.tolist() == [0, 0, -1]
    for seed in range(5):                               # through the hook, any anchor: nothing lost
        c = run([0.0, 0.5, 5.0, 5.5], 1, seed=seed, dwc_eps=1.0)
        assert groups_of(c.members) == {frozenset({0, 1}), frozenset({2, 3})}


def test_anchor_singleton_is_independent_and_other_clusters_are_re_examined():
    # anchor 10 alone; {0, .5} and {20, 20.5} share the distance ring 9.5..10.5 and are
    # one potential cluster, re-examined from its first element and split correctly
    X64 = torch.tensor([[10.0], [0.0], [0.5], [20.0], [19.5]], dtype=torch.float64)
    dense_of, n_dense, n_indep, n_levels = dwc._identify(X64, 0, 1.0)
    assert (n_dense, n_indep) == (2, 1) and n_levels == 3
    assert dense_of[0] == -1 and dense_of[1] == dense_of[2] != dense_of[3] == dense_of[4]


def test_long_chains_of_segments_are_all_found():
    # 300 segments in one group: exercises the pointer doubling over many links
    far = torch.arange(300, dtype=torch.float64)[:, None] * 1.5
    _, n_dense, n_indep, _ = dwc._identify(far, 0, 1.0)
    assert (n_dense, n_indep) == (0, 300)
    pairs = torch.arange(300, dtype=torch.float64)[:, None] * 0.75   # segments {0, .75}, {1.5, 2.25}, ...
    dense_of, n_dense, n_indep, _ = dwc._identify(pairs, 0, 1.0)
    assert (n_dense, n_indep) == (150, 0) and torch.equal(dense_of[0::2], dense_of[1::2])


# ----------------------------------------------------------- the hook

def test_exact_duplicates_become_one_weighted_point():
    base = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [30.0, 30.0]])
    copies = torch.tensor([0, 2, 0, 2, 2, 1, 0, 3, 2, 2, 4])         # counts 3, 1, 5, 1, 1
    X = base[copies]
    for eps in (0.0, None):                             # even at eps = 0
        c = run(X, 2, dwc_eps=eps, dwc_weighting="sum")
        assert torch.equal(c.X[c.members], X)           # members map back exactly
        assert c.X.shape[0] == 5 and sorted(c.weights.tolist()) == [1, 1, 1, 3, 5]
        assert torch.equal(c.weights[c.members], torch.tensor([3, 5, 3, 5, 5, 1, 3, 1, 5, 5, 1.0]))
        single = run(X, 2, dwc_eps=eps)                  # the default: each group weighs one point
        assert single.weighting == "single" and single.weights.tolist() == [1.0] * 5
        assert torch.equal(single.members, c.members)
        assert (c.info["n_dense_groups"], c.info["n_points_merged"], c.info["n_independent"]) == (2, 8, 3)
        assert c.members.tolist() == [0, 1, 0, 1, 1, 2, 0, 3, 1, 1, 4]   # ordered by first member


def test_far_apart_points_stay_independent():
    X = torch.cartesian_prod(torch.arange(5.0), torch.arange(5.0)) * 10
    c = run(X, 3, dwc_eps=1.0)
    assert torch.equal(c.X, X) and torch.equal(c.members, torch.arange(25))
    assert c.info["n_dense_groups"] == 0 and c.info["n_consolidated"] == 25 and c.info["skipped"] == ""


@pytest.mark.parametrize("c_sd, shrinks", [(0.8, 4), (0.5, 2)])
def test_eq2_shrinks_eps_exactly_until_enough_points_are_left(c_sd, shrinks):
    # three pairs 0.5 apart, k = 2: pairs merged (n_cw = 3 < 4) while eps >= 0.5;
    # 0.8: 1, .8, .64, .512 merge, .4096 splits; 0.5: 1, .5 merge (0.5 is not > 0.5), .25 splits
    X = [0.0, 0.5, 7.0, 7.5, 19.0, 19.5]
    for seed in range(4):
        c = run(X, 2, seed=seed, dwc_eps=1.0, c_sd=c_sd)
        assert c.info["n_eps_rounds"] == shrinks + 1
        assert c.info["eps_final"] == c.info["eps_initial"] * c_sd ** shrinks
        assert c.info["n_consolidated"] == 6 and c.info["n_dense_groups"] == 0
    c = run(X, 1, dwc_eps=1.0)                           # k = 1: 3 >= 2 holds at once
    assert c.info["n_eps_rounds"] == 1 and c.info["n_dense_groups"] == 3


def test_automatic_eps_is_a_fraction_of_the_cell_radius_and_scale_free():
    X = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])   # rms = sqrt(2)
    c = run(X, 2)                                        # 0.1 * sqrt(2) * 2 ** (-1/2) = 0.1
    assert c.info["eps_initial"] == pytest.approx(0.1, rel=1e-12)
    Y = gaussian_mixture(400, 3, 5, std=0.01, seed=1)
    a, b = run(Y, 4, seed=3), run(Y * 8, 4, seed=3)    # x8 is exact in floating point
    assert b.info["eps_initial"] == 8 * a.info["eps_initial"]
    assert groups_of(a.members) == groups_of(b.members) and a.info["n_dense_groups"] > 0
    assert run(Y + 3, 4).info["eps_initial"] == pytest.approx(a.info["eps_initial"], rel=1e-4)
    assert groups_of(run(Y * 2.0 ** -100, 4, seed=3).members) == groups_of(a.members)   # tiny scales too


def test_too_few_points_for_eq2_consolidates_nothing_and_draws_nothing():
    rng = torch.Generator().manual_seed(0)
    state = rng.get_state()
    X = torch.zeros(5, 2)
    c = DWC(X, torch.ones(5), 3, rng)     # 5 < 2 * 3
    assert torch.equal(rng.get_state(), state)
    assert torch.equal(c.members, torch.arange(5)) and c.X.shape == (5, 2)
    assert "can never hold" in c.info["skipped"] and c.info["n_eps_rounds"] == 0
    c = run(torch.zeros(5, 2), 3, c_mc=0.5)             # c_mc * k < k: the bound is k, 5 >= 3
    assert "eps=0" in c.info["skipped"]                 # all identical: 1 < 3 at any eps


def test_unreachable_eq2_gives_up_loudly(caplog):
    X = torch.arange(20.0)[torch.arange(60) % 20][:, None]           # 20 distinct values
    with caplog.at_level(logging.WARNING, logger="pgbench.heuristics.consolidate_dwc"):
        c = run(X, 15, dwc_max_rounds=7)                 # needs 30 > 20 distinct
    assert c.info["n_eps_rounds"] == 7 and "dwc_max_rounds=7" in c.info["skipped"]
    assert torch.equal(c.members, torch.arange(60)) and "nothing consolidated" in caplog.text
    c = run(X, 15, dwc_eps=0.0)                          # eps = 0 cannot shrink: stops at once
    assert c.info["n_eps_rounds"] == 1 and "eps=0" in c.info["skipped"]


def test_weighting_sum_and_single():
    X = torch.tensor([[0.0], [0.0], [0.0], [9.0], [20.0]])
    w = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    s = run(X, 1, weights=w, dwc_eps=0.5, dwc_weighting="sum")
    assert s.weights.tolist() == [6.0, 4.0, 5.0] and s.info["weighting"] == "sum" and s.weighting == "sum"
    one = run(X, 1, weights=w, dwc_eps=0.5)             # the default, the paper's "one weight"
    assert one.weights.tolist() == [2.0, 4.0, 5.0]      # mean member weight
    assert one.info["weighting"] == "single" and one.weighting == "single"
    assert run(X, 1, dwc_eps=0.5, dwc_weighting="single").weights.tolist() == [1.0, 1.0, 1.0]
    Z = torch.tensor([[0.0], [0.25], [9.0], [20.0]])     # zero-mass group: plain mean
    z = run(Z, 1, weights=[0.0, 0.0, 1.0, 1.0], dwc_eps=0.5, dwc_weighting="sum")
    assert z.X[:, 0].tolist() == [0.125, 9.0, 20.0] and z.weights.tolist() == [0.0, 1.0, 1.0]
    m = run(Z, 1, weights=[1.0, 3.0, 1.0, 1.0], dwc_eps=0.5)
    assert m.X[0, 0] == pytest.approx(0.1875)           # weighted mean


@pytest.mark.parametrize("params, message", [
    ({"dwc_eps": -1.0}, "dwc_eps"), ({"dwc_eps": float("nan")}, "dwc_eps"),
    ({"dwc_eps_ratio": 0.0}, "dwc_eps_ratio"), ({"c_sd": 1.0}, "c_sd"), ({"c_sd": 0.0}, "c_sd"),
    ({"c_mc": -1.0}, "c_mc"), ({"dwc_max_rounds": 0}, "dwc_max_rounds"),
    ({"dwc_weighting": "mean"}, "dwc_weighting"),
])
def test_bad_parameters_are_value_errors(params, message):
    with pytest.raises(ValueError, match=message):
        run([0.0, 1.0, 2.0, 3.0], 1, **params)


def test_parameter_names_are_not_shared_with_other_heuristics():
    mine = set(DEFAULTS)
    assert mine == {"dwc_eps", "dwc_eps_ratio", "c_sd", "c_mc", "dwc_max_rounds", "dwc_weighting"}
    for stage in registry.STAGES:
        for name in registry.names(stage):
            if (stage, name) != ("consolidate", "dwc"):
                assert not mine & set(registry.get(stage, name).params), (stage, name)


# ----------------------------------------------------------- engine round trip

def test_kmeans_keeps_every_dense_group_on_one_label():
    X = gaussian_mixture(1500, 4, 12, std=0.02, seed=5)
    X[1000:] = X[torch.arange(500) % 37]                # plus exact duplicates
    k, seed = 16, 7
    res = pgbench.kmeans(X, k, init="pg", resolve="pg", consolidate="dwc", seed=seed,
                         dwc_eps_ratio=0.2, dwc_weighting="single")
    assert res.labels.shape == (1500,) and res.params["consolidate"]["dwc_weighting"] == "single"
    c = DWC(X, torch.ones(1500), k, torch.Generator().manual_seed(seed), dwc_eps_ratio=0.2,
            dwc_weighting="single")
    assert res.consolidate_info == c.info and c.info["n_dense_groups"] > 20
    for group in groups_of(c.members):
        assert len({int(res.labels[i]) for i in group}) == 1
    assert res.n_empty_final == 0


def test_same_seed_same_consolidation():
    X = gaussian_mixture(800, 3, 6, std=0.03, seed=2)
    a, b = run(X, 8, seed=11), run(X, 8, seed=11)
    assert torch.equal(a.X, b.X) and torch.equal(a.weights, b.weights)
    assert torch.equal(a.members, b.members) and a.info == b.info
    r1 = pgbench.kmeans(X, 8, init="pg", resolve="pg", consolidate="dwc", seed=4)
    r2 = pgbench.kmeans(X, 8, init="pg", resolve="pg", consolidate="dwc", seed=4)
    assert torch.equal(r1.labels, r2.labels) and torch.equal(r1.centroids, r2.centroids)


# ----------------------------------------------------------- properties

grid_points = st.integers(1, 3).flatmap(lambda d: st.lists(
    st.lists(st.integers(-6, 6), min_size=d, max_size=d), min_size=1, max_size=40))


@settings(max_examples=150, deadline=None)
@given(grid_points, st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5, 3.0]), st.data())
def test_matches_the_literal_algorithms(points, eps, data):
    X = torch.tensor(points, dtype=torch.float64) / 4
    anchor = data.draw(st.integers(0, len(points) - 1))
    dense_of, n_dense, n_indep, _ = dwc._identify(X, anchor, eps)
    want_dense, want_indep = reference(X, anchor, eps)
    got = groups_of(torch.where(dense_of >= 0, dense_of, -1 - torch.arange(len(points))))
    assert {g for g in got if len(g) > 1} == want_dense
    assert {i for g in got if len(g) == 1 for i in g} == want_indep
    assert (n_dense, n_indep) == (len(want_dense), len(want_indep))


@settings(max_examples=100, deadline=None)
@given(grid_points, st.integers(1, 6), st.sampled_from([None, 0.0, 0.5, 2.0]),
       st.sampled_from(["sum", "single"]), st.integers(0, 2 ** 16), st.data())
def test_consolidation_properties(points, k, eps, weighting, seed, data):
    n = len(points)
    k = min(k, n)
    X = torch.tensor(points, dtype=torch.float32) / 4
    w = torch.tensor(data.draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=torch.float32)
    c = run(X, k, seed=seed, weights=w, dwc_eps=eps, dwc_weighting=weighting)
    m = c.X.shape[0]
    assert c.members.shape == (n,) and c.weights.shape == (m,) and c.X.shape == (m, X.shape[1])
    assert c.members.min() >= 0 and c.members.max() == m - 1
    assert torch.equal(torch.unique(c.members), torch.arange(m))     # every point used
    assert m == c.info["n_consolidated"] >= min(n, 2 * k)            # Eq. 2 (or nothing merged)
    if weighting == "sum":
        assert float(c.weights.sum()) == pytest.approx(float(w.sum()))
    radius = (X - c.X[c.members]).norm(dim=1)
    assert float(radius.max()) <= 2 * c.info["eps_final"] + 1e-5
    assert c.info["n_points_merged"] == int((torch.bincount(c.members) > 1).mul(
        torch.bincount(c.members)).sum())
    if c.info["skipped"]:
        assert torch.equal(c.members, torch.arange(n))
    else:
        assert c.info["eps_final"] == c.info["eps_initial"] * 0.8 ** (c.info["n_eps_rounds"] - 1)
