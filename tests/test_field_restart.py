"""The dead-code restart resolver (``restart``) and the weighted draws it and the seedings share.

Hand-checked states first (which clusters are dead, where their centroids go,
what the outcome reports), then the draw law (uniform without replacement for
unit weights, as vector-quantize-pytorch's ``sample_vectors``; integer weights
as duplicated points, draw for draw), then runs in the engine.
"""

import pytest
import torch

import pgbench
from pgbench import backends, registry, synthetic
from pgbench.engine import _update
from pgbench.heuristics._sampling import draws_in_units, inverse_cdf, weighted_draws
from pgbench.state import KMeansState

restart = registry.get("resolve", "restart")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def after_update(X, C, weights=None):
    """A state at the restart's hook point: assigned, then the centroid update done."""
    X = torch.as_tensor(X, dtype=torch.float32)
    w = torch.ones(X.shape[0]) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    state = KMeansState(X, w, torch.as_tensor(C, dtype=torch.float32).clone(), backends.torch_assign)
    state.reassign()
    _update(state)
    return state


# ============================================================ the shared draws

def test_inverse_cdf_skips_zero_weights_and_clamps_to_the_last_positive_entry():
    cum = torch.cumsum(torch.tensor([0.0, 2.0, 0.0, 1.0, 0.0], dtype=torch.float64), 0)   # [0, 2, 2, 3, 3]
    values = torch.tensor([0.0, 1.999, 2.0, 2.5, 3.0, 3.5], dtype=torch.float64)
    assert inverse_cdf(cum, values).tolist() == [1, 1, 3, 3, 3, 3]


def test_weighted_draws_follow_the_weights():
    w = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    draws = weighted_draws(w, 4000, gen(0))
    freq = torch.bincount(draws, minlength=3).double() / 4000
    assert freq[0] == 0 and abs(float(freq[2]) - 0.75) < 0.03


def test_draws_in_units_unit_weights_are_distinct_and_uniform():
    hist = torch.zeros(6)
    for seed in range(600):
        d = draws_in_units(torch.ones(6), 4, gen(seed))
        assert d.unique().numel() == 4                       # without replacement
        hist += torch.bincount(d, minlength=6)
    assert float(hist.min()) > 330 and float(hist.max()) < 470   # 400 each: uniform


def test_draws_in_units_integer_weights_draw_as_duplicated_points():
    w = torch.tensor([1.0, 3.0, 0.0, 2.0])
    owner = torch.arange(4).repeat_interleave(w.long())        # copy -> point, copies adjacent
    for seed in range(50):
        a = draws_in_units(w, 5, gen(seed))
        b = owner[draws_in_units(torch.ones(6), 5, gen(seed))]
        assert torch.equal(a, b), seed
        assert torch.bincount(a, minlength=4).le(w.long()).all()     # never more draws than units


def test_draws_in_units_past_the_last_unit_restores_the_weights():
    d = draws_in_units(torch.tensor([0.5, 0.0, 0.25]), 5, gen(0))
    assert set(d.tolist()) <= {0, 2} and d[:2].unique().numel() == 2   # each once, then again


# ============================================================ restart: hand-checked states

def test_restart_moves_every_empty_cluster_onto_a_distinct_point():
    X = [[0.0], [1.0], [2.0], [10.0], [11.0]]
    state = after_update(X, [[0.0], [0.0], [10.0], [10.0]])       # 1 and 3 tie with 0 and 2: empty
    labels, counts = state.labels.clone(), state.counts.clone()
    out = restart(state, gen(0))
    assert (out.n_found, out.n_resolved, out.n_left, out.rounds, out.gave_up) == (2, 2, 0, 1, False)
    assert out.info == {"n_restarted": 2, "n_light": 0}
    assert state.centroids[[0, 2], 0].tolist() == [1.0, 10.5]     # the update's means, untouched
    new = state.centroids[[1, 3], 0].tolist()
    assert len(set(new)) == 2 and set(new) <= {0.0, 1.0, 2.0, 10.0, 11.0}
    assert torch.equal(state.labels, labels) and torch.equal(state.counts, counts)   # no reassignment


def test_restart_without_dead_clusters_does_nothing():
    state = after_update([[0.0], [1.0], [10.0]], [[0.0], [10.0]])
    before = state.centroids.clone()
    out = restart(state, gen(0))
    assert (out.n_found, out.n_resolved, out.n_left, out.rounds) == (0, 0, 0, 0)
    assert torch.equal(state.centroids, before)


def test_restart_min_size_restarts_light_clusters_but_counts_only_the_empty_ones():
    X = [[0.0], [1.0], [2.0], [10.0], [11.0]]
    state = after_update(X, [[1.0], [10.0], [10.0]])              # masses 3, 2, 0
    out = restart(state, gen(3), min_size=2.5)
    assert (out.n_found, out.n_resolved, out.n_left, out.rounds) == (1, 1, 0, 1)
    assert out.info == {"n_restarted": 2, "n_light": 1}
    assert float(state.centroids[0, 0]) == 1.0                    # mass 3 >= 2.5: kept
    assert set(state.centroids[1:, 0].tolist()) <= {0.0, 1.0, 2.0, 10.0, 11.0}
    # min_size 2 is not above the mass 2: only the empty cluster
    state = after_update(X, [[1.0], [10.0], [10.0]])
    assert restart(state, gen(3), min_size=2.0).info["n_restarted"] == 1


def test_restart_counts_a_cluster_of_zero_weight_points_as_dead_but_not_empty():
    state = after_update([[0.0], [1.0], [10.0]], [[0.5], [10.0]], weights=[1.0, 1.0, 0.0])
    out = restart(state, gen(0))
    assert (out.n_found, out.n_resolved, out.n_left) == (0, 0, 0)
    assert out.info == {"n_restarted": 1, "n_light": 1}
    assert float(state.centroids[1, 0]) in (0.0, 1.0)             # drawn by weight: never the 0-weight point


def test_restart_on_identical_points_reports_the_unmoved_clusters_as_left():
    state = after_update([[2.0, 3.0]] * 6, [[2.0, 3.0]] * 3)
    before = state.centroids.clone()
    out = restart(state, gen(0))
    assert (out.n_found, out.n_resolved, out.n_left, out.gave_up) == (2, 0, 2, True)
    assert torch.equal(state.centroids, before)


def test_restart_draws_uniformly_for_unit_weights_and_by_weight_otherwise():
    X = [[0.0], [1.0], [2.0], [3.0], [10.0]]
    hist_unit, hist_w = torch.zeros(5), torch.zeros(5)
    for seed in range(1000):
        s = after_update(X, [[1.5], [10.0], [10.0]])
        restart(s, gen(seed))
        hist_unit[int((torch.tensor(X)[:, 0] == s.centroids[2, 0]).nonzero()[0, 0])] += 1
        s = after_update(X, [[1.5], [10.0], [10.0]], weights=[1.0, 1.0, 1.0, 1.0, 6.0])
        restart(s, gen(seed))
        hist_w[int((torch.tensor(X)[:, 0] == s.centroids[2, 0]).nonzero()[0, 0])] += 1
    assert float(hist_unit.min()) > 150 and float(hist_unit.max()) < 250           # 200 each
    assert abs(float(hist_w[4]) / 1000 - 0.6) < 0.06                                # 6 of 10 units


def test_restart_runs_after_the_update():
    assert restart.when == "after_update"


# ============================================================ restart in the engine

def test_restart_resolves_the_empty_clusters_of_fairseqs_init():
    X = synthetic.with_duplicates(2000, 4, 0.6, 20, seed=0)
    res = pgbench.kmeans(X, 64, init="fairseq", resolve="restart", n_iter=15, seed=0)
    assert res.trace[0].n_empty_assigned > 0
    assert res.status == "ok" and res.n_empty_final == 0
    for s in res.trace:
        assert s.rounds == (1 if s.n_empty_assigned else 0)
        assert s.n_resolved + s.n_empty_resolved == s.n_empty_assigned
    plain = pgbench.kmeans(X, 64, init="fairseq", resolve="none", n_iter=15, seed=0)
    assert plain.n_empty_final > 0


@pytest.mark.parametrize("min_size", [0.0, 5.0])
def test_restart_is_deterministic_and_leaves_the_global_generators_alone(min_size):
    import random

    import numpy as np

    X = synthetic.gaussian_mixture(500, 2, 4, seed=2)
    torch.manual_seed(9)
    np.random.seed(9)
    random.seed(9)
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    a = pgbench.kmeans(X, 40, init="fairseq", resolve="restart", seed=4, min_size=min_size)
    b = pgbench.kmeans(X, 40, init="fairseq", resolve="restart", seed=4, min_size=min_size)
    assert torch.equal(a.centroids, b.centroids) and torch.equal(a.labels, b.labels)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert (np.random.get_state()[1] == states[1]).all() and random.getstate() == states[2]
