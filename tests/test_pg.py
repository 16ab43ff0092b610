"""PG k-means: partitioning (Algorithm 1), pre-assignment and cluster fine-tuning (Algorithm 2)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pgbench
from pgbench.heuristics._partitioning import centroid_partitioning
from pgbench import backends, registry
from pgbench.state import KMeansState
from pgbench.synthetic import layer_subvectors

pg_init = registry.get("init", "pg")
pg_resolve = registry.get("resolve", "pg")


def _ones(n):
    return torch.ones(n)


def test_partitioning_hand_checked_line():
    # 8 points 1..8, target 2.  Root: mean 4.5, farthest point ties between 1 and 8 -> argmax takes
    # the first (index 0); half = 4 -> inner = the 4 points nearest to 1.  Each half splits again.
    X = torch.arange(1.0, 9.0)[:, None]
    leaves, rest = centroid_partitioning(X, _ones(8), torch.arange(8), 2.0, 8)
    assert [leaf.tolist() for leaf in leaves] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert rest.numel() == 0


def test_partitioning_half_is_the_closest_multiple_of_the_target():
    # 9 points, target 3: half = 4.5 -> closest multiple of 3 is 3 (|4.5-3| == |4.5-6|: round-half-even
    # gives 1.5 -> 2 multiples = 6).  Python's round(1.5) == 2, so the inner part holds 6 points.
    X = torch.arange(9.0)[:, None]
    leaves, _ = centroid_partitioning(X, _ones(9), torch.arange(9), 3.0, 9)
    assert sorted(leaf.numel() for leaf in leaves) == [3, 3, 3]
    assert leaves[0].tolist() == [0, 1, 2]            # inner parts first, from the farthest point


def test_partitioning_budget_and_reserved_last_slot():
    X = torch.arange(8.0)[:, None]
    leaves, rest = centroid_partitioning(X, _ones(8), torch.arange(8), 2.0, 3, reserve_last=True)
    assert len(leaves) == 2                           # 3 slots, the last kept for the caller
    assert sorted(torch.cat(leaves + [rest]).tolist()) == list(range(8))
    assert rest.numel() == 4


def test_partitioning_respects_weights():
    X = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    w = torch.tensor([3.0, 1.0, 1.0, 1.0])           # mass 6, target 3
    leaves, _ = centroid_partitioning(X, w, torch.arange(4), 3.0, 2)
    masses = sorted(float(w[leaf].sum()) for leaf in leaves)
    assert masses == [3.0, 3.0]


@pytest.mark.parametrize("n, k", [(1000, 10), (4096, 64), (3000, 7), (20_000, 256)])
def test_pg_init_zero_empty_and_near_equal_sizes_on_distinct_points(n, k):
    X = layer_subvectors(n, 4, seed=n)
    out = pg_init(X, torch.ones(n), k, torch.Generator().manual_seed(0))
    assert out.centroids.shape == (k, 4)
    # the leaves themselves: k disjoint groups of near-equal size
    leaves, _ = centroid_partitioning(X, torch.ones(n), torch.arange(n), n / k, k)
    sizes = torch.tensor([leaf.numel() for leaf in leaves], dtype=torch.float)
    assert len(leaves) + out.info["n_extra_splits"] == k
    assert sizes.max() <= n / k * 2 + 1
    # the first assignment with these centroids leaves no empty cluster
    labels, _ = backends.torch_assign(X, out.centroids)
    assert int((torch.bincount(labels, minlength=k) == 0).sum()) == 0


def test_pg_init_fills_missing_leaves_by_splitting_the_largest():
    X = torch.arange(10.0)[:, None]
    out = pg_init(X, _ones(10), 4, torch.Generator())
    assert out.centroids.shape == (4, 1)
    assert len(set(out.centroids.flatten().tolist())) == 4


def test_pg_init_with_identical_points_still_returns_k_centroids():
    X = torch.zeros(3, 2)
    out = pg_init(X, _ones(3), 3, torch.Generator())
    assert out.centroids.shape == (3, 2) and out.info["n_extra_splits"] == 1


def _state(X, C):
    s = KMeansState(X, torch.ones(X.shape[0]), C.clone(), backends.torch_assign)
    s.reassign()
    return s


def test_pg_resolve_splits_the_large_cluster_with_eq1_target():
    # 100 points in one blob, 3 centroids of which 2 are empty (far away)
    X = torch.linspace(0, 1, 100)[:, None]
    C = torch.tensor([[0.5], [50.0], [60.0]])
    s = _state(X, C)
    assert s.n_empty == 2
    out = pg_resolve(s, torch.Generator(), max_passes=15, patience=3)
    # pass 1: S_c = 100/3, L = {0} (100), slots = 3, S_avg = 100/3,
    # S_scl = max(sqrt(100 * 100/3), 100/3) = 57.7 -> leaves of the 100-point cluster: 2 (58 + 42),
    # one empty slot gets the second leaf; the last empty is reserved, rest is empty -> 1 empty left.
    assert out.n_found == 2 and out.rounds >= 1
    assert out.n_left == s.n_empty
    assert s.n_empty == 0, "a second pass fills the reserved slot"
    assert s.counts.sum() == 100


def test_pg_resolve_eq1_scaling_target():
    # Eq. 1 / Algorithm 2 line 17 are the same formula
    n_lc, s_avg = 900.0, 25.0
    assert max(n_lc / math.sqrt(n_lc / s_avg), s_avg) == pytest.approx(max(math.sqrt(n_lc) * math.sqrt(s_avg), s_avg))


def test_pg_resolve_is_bounded_and_stops_early_on_duplicates():
    X = torch.tensor([[0.0], [1.0]]).repeat(50, 1)     # 2 distinct points, k = 6
    C = torch.tensor([[0.0], [1.0], [5.0], [6.0], [7.0], [8.0]])
    s = _state(X, C)
    out = pg_resolve(s, torch.Generator(), max_passes=15, patience=3)
    assert out.gave_up and out.n_left == s.n_empty > 0
    assert out.rounds <= 15


def test_pg_resolve_max_passes_zero_does_nothing():
    X = torch.linspace(0, 1, 50)[:, None]
    s = _state(X, torch.tensor([[0.5], [9.0]]))
    out = pg_resolve(s, torch.Generator(), max_passes=0)
    assert out.rounds == 0 and out.n_left == 1


def test_pg_baseline_resolves_what_fairseq_leaves_on_duplicate_heavy_data():
    from pgbench.synthetic import with_duplicates

    X = with_duplicates(8000, 4, 0.6, 40, seed=0)
    fairseq = pgbench.kmeans(X, 256, init="fairseq", resolve="fairseq", seed=0)
    pg = pgbench.kmeans(X, 256, init="pg", resolve="pg", seed=0)
    assert fairseq.status == "stopped" and fairseq.n_empty_final > 0
    assert pg.status == "ok" and pg.n_empty_final == 0


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 300), k=st.integers(1, 40), seed=st.integers(0, 99))
def test_pg_init_leaves_partition_the_points(n, k, seed):
    k = min(k, n)
    X = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    leaves, rest = centroid_partitioning(X, torch.ones(n), torch.arange(n), n / k, k)
    everything = torch.cat(leaves + [rest])
    assert sorted(everything.tolist()) == list(range(n))          # disjoint and complete
    assert 1 <= len(leaves) <= k and all(leaf.numel() > 0 for leaf in leaves)
    out = pg_init(X, torch.ones(n), k, torch.Generator())
    assert out.centroids.shape == (k, 3) and torch.isfinite(out.centroids).all()
