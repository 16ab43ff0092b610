"""The fast ``direct`` backend (backends.DirectAssign) gives direct_assign's output bitwise (issue 12)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pgbench
from pgbench import backends, synthetic


def _same(fast, X, C):
    labels, sq = fast(X, C)
    ref_labels, ref_sq = backends.direct_assign(X, C)
    assert torch.equal(labels, ref_labels)
    assert torch.equal(sq, ref_sq)
    return labels


def test_hand_checked_ties_go_to_the_lowest_index():
    X = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 0.0], [3.0, 3.0]])
    C = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 3.0]])      # 0 and 2 coincide; x2 is halfway
    fast = backends.DirectAssign(X)
    labels = _same(fast, X, C)
    assert labels.tolist() == [1, 0, 0, 3]          # x1 -> 0 (not its duplicate 2), x2 -> 0 (tie with 1)
    assert fast.last_counts["full"] == 2            # x1 and x2, at ties, went to the full computation


def test_fairseq_splits_and_duplicates_match_direct_assign():
    X = synthetic.layer_subvectors(20_000, 4, seed=1)
    g = torch.Generator().manual_seed(1)
    C = X[torch.randint(0, X.shape[0], (300,), generator=g)].clone()      # with duplicate draws
    C[7] = C[3]
    fast = backends.DirectAssign(X)
    _same(fast, X, C)
    for step in range(10):                          # split moves (incremental), then a Lloyd-like move
        if step % 5 == 4:
            C = C + 1e-3 * torch.randn(C.shape, generator=g)
        else:
            t, m = torch.randint(0, 300, (2,), generator=g).tolist()
            e = 1e-6 * torch.randn(4, generator=g)
            C[t] = C[m] + e
            C[m] = C[m] - e
        _same(fast, X, C)
        assert ("incremental" in fast.last_counts) == (step % 5 != 4)


def test_same_centroids_twice_and_other_points():
    X = synthetic.layer_subvectors(5_000, 4, seed=2)
    C = X[:64].clone()
    fast = backends.DirectAssign(X)
    first = _same(fast, X, C)
    assert torch.equal(_same(fast, X, C), first)                 # nothing moved
    Y = synthetic.layer_subvectors(700, 4, seed=3)
    _same(fast, Y, C)                                            # points other than the prepared ones


def test_non_finite_centroids_fall_back_to_direct_assign():
    X = synthetic.layer_subvectors(1_000, 4, seed=4)
    C = X[:10].clone()
    C[2, 0] = float("inf")
    fast = backends.DirectAssign(X)
    labels, sq = fast(X, C)
    ref_labels, ref_sq = backends.direct_assign(X, C)
    assert torch.equal(labels, ref_labels) and torch.equal(sq, ref_sq)
    assert fast.last_counts == {"tree": 0, "full": 1000}


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 300), k=st.integers(2, 40), d=st.integers(1, 8), seed=st.integers(0, 2**16),
       grid=st.booleans(), moves=st.lists(st.integers(0, 39), max_size=4))
def test_property_equal_to_direct_assign(n, k, d, seed, grid, moves):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g) * 0.04          # d > 4: the full computation plus the incremental path
    if grid:                                   # coarse values: many exact ties
        X = torch.round(X * 50) / 50
    C = X[torch.randint(0, n, (k,), generator=g)].clone()
    fast = backends.DirectAssign(X)
    _same(fast, X, C)
    for j in moves:
        C[j % k] = C[(j * 7) % k] + 1e-6
        _same(fast, X, C)


def test_kmeans_direct_backend_is_unchanged_by_the_fast_path(monkeypatch):
    X = synthetic.layer_subvectors(6_000, 4, seed=5)
    fast = pgbench.kmeans(X, 256, init="fairseq", resolve="fairseq", backend="direct", seed=0)
    monkeypatch.setattr(backends, "DirectAssign", lambda X: backends.direct_assign)
    slow = pgbench.kmeans(X, 256, init="fairseq", resolve="fairseq", backend="direct", seed=0)
    assert torch.equal(fast.labels, slow.labels) and torch.equal(fast.centroids, slow.centroids)
    assert fast.inertia == slow.inertia and fast.rounds_total == slow.rounds_total
    assert fast.n_empty_initial > 0 and fast.rounds_total > 0        # the resolver ran (incremental rounds)


def test_without_scipy_it_is_direct_assign(monkeypatch):
    monkeypatch.setattr(backends, "_kdtree", lambda: None)
    X = synthetic.layer_subvectors(2_000, 4, seed=6)
    C = X[:50].clone()
    fast = backends.DirectAssign(X)
    _same(fast, X, C)
    assert fast.last_counts == {"tree": 0, "full": 2000}


def test_above_four_dimensions_screened_and_incremental_rounds():
    X = synthetic.layer_subvectors(3_000, 8, seed=7)
    C = X[:100].clone()
    fast = backends.DirectAssign(X)
    _same(fast, X, C)
    assert fast.last_counts["screened"] > 2_900 and fast.last_counts["screened"] + fast.last_counts["full"] == 3000
    C[3] = C[4] + 1e-6
    _same(fast, X, C)
    assert fast.last_counts["incremental"] == 3000


def test_screen_hand_checked_ties_and_a_clear_winner():
    X = torch.tensor([[0.0] * 8, [1.0] * 8, [0.5] * 8, [3.0] * 8])
    C = torch.tensor([[1.0] * 8, [0.0] * 8, [1.0] * 8, [3.0] * 8])          # 0 and 2 coincide; x2 is halfway
    fast = backends.DirectAssign(X)
    labels = _same(fast, X, C)
    assert labels.tolist() == [1, 0, 0, 3]
    assert fast.last_counts == {"screened": 2, "full": 2}      # x1 (duplicate centroids) and x2 (halfway)


def test_screen_sends_fairseq_splits_to_the_full_computation():
    X = synthetic.layer_subvectors(5_000, 8, seed=9)
    g = torch.Generator().manual_seed(9)
    C = X[torch.randperm(5_000, generator=g)[:200]].clone()
    e = 1e-6 * torch.randn(8, generator=g)
    C[10], C[12] = C[12] + e, C[12] - e                           # fairseq's split of 12 into 10 and 12
    fast = backends.DirectAssign(X)
    _same(fast, X, C)
    assert 0 < fast.last_counts["full"] < 500


def test_screen_huge_values_fall_back_to_direct_assign():
    X = torch.tensor([[1e30] * 8, [0.0] * 8, [1e30] * 7 + [0.0]])
    C = torch.tensor([[1e30] * 8, [1.0] * 8])                      # ||c||^2 overflows float32
    fast = backends.DirectAssign(X)
    assert _same(fast, X, C).tolist() == [0, 1, 0]
    assert fast.last_counts == {"screened": 0, "full": 3}
    Y = torch.tensor([[1e30] * 8, [0.0] * 8])                      # only a point is huge
    C = torch.tensor([[1.0] * 8, [2.0] * 8])
    fast = backends.DirectAssign(Y)
    assert _same(fast, Y, C).tolist() == [0, 0]                    # both distances overflow: a tie at inf
    assert fast.last_counts == {"screened": 1, "full": 1}


def test_sixteen_dimensions_screened_by_the_expanded_formula():
    X = synthetic.layer_subvectors(4_000, 16, seed=8)
    g = torch.Generator().manual_seed(8)
    C = X[torch.randint(0, 4_000, (300,), generator=g)].clone()     # duplicate draws: exact ties
    C[1] = C[0] + 1e-6
    fast = backends.DirectAssign(X)
    _same(fast, X, C)
    assert fast.last_counts["screened"] > 3_000 and fast.last_counts["full"] > 0
    Y = torch.round(X * 20) / 20                                     # coarse grid: many near ties
    _same(backends.DirectAssign(Y), Y, torch.round(C * 20) / 20)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 200), k=st.integers(2, 30), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1e-3, 1.0, 50.0]))
def test_property_screened_equal_to_direct_assign(n, k, seed, scale):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 16, generator=g) * scale + scale
    C = X[torch.randint(0, n, (k,), generator=g)].clone() + 1e-6 * scale
    _same(backends.DirectAssign(X), X, C)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 300), k=st.integers(2, 40), d=st.integers(5, 17), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1e-3, 0.04, 1.0, 50.0]), offset=st.sampled_from([0.0, 1.0, 30.0]),
       splits=st.integers(0, 5), small_blocks=st.booleans())
def test_property_screen_with_fairseq_splits_equal_to_direct_assign(n, k, d, seed, scale, offset, splits,
                                                                  small_blocks):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g) * scale + offset
    C = X[torch.randint(0, n, (k,), generator=g)].clone()
    for _ in range(splits):                     # fairseq's split: c_m +- eps, near ties for c_m's points
        t, m = torch.randint(0, k, (2,), generator=g).tolist()
        e = 1e-6 * torch.randn(d, generator=g)
        C[t], C[m] = C[m] + e, C[m] - e
    fast = backends.DirectAssign(X)
    if small_blocks:                            # blocks of the 16-row minimum, a last partial one
        fast.SCREEN_CHUNK_BYTES = 1
    _same(fast, X, C)
