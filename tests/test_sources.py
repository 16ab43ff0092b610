"""Tests for the synthetic and benchmark-file data sources and the centroid index."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pgbench import sources, synthetic
from pgbench.metrics import centroid_index, orphan_count
from pgbench.pq import reconstruct_weight, relative_error, subvectors_to_weight

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "clustering"

SYNTHETIC = {
    "gaussian_mixture": {"n": 300, "d": 3, "n_centers": 5},
    "layer_weights": {"out_features": 16, "in_features": 24, "block_size": 4},
    "duplicates": {"n": 200, "d": 4},
    "imbalanced": {"n": 300, "n_centers": 6, "imbalance": 10.0},
    "overestimated_k": {"n": 300, "n_centers": 3, "k": 40},
    "high_dim": {"n": 200, "d": 64, "n_centers": 4},
}


def one(name: str, seed: int = 0, **params) -> sources.Dataset:
    (ds,) = list(sources.load(name, seed=seed, **params))
    return ds


# ------------------------------------------------------------------ registration

def test_every_source_is_registered():
    assert set(SYNTHETIC) | {"clustering_file", "checkpoint"} <= set(sources.source_names())


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_contract_and_seeding(name):
    a = one(name, seed=3, **SYNTHETIC[name])
    again = one(name, seed=3, **SYNTHETIC[name])
    other = one(name, seed=4, **SYNTHETIC[name])
    assert a.X.dtype == torch.float32 and a.X.ndim == 2 and a.X.is_contiguous()
    assert isinstance(a.k, int) and a.k >= 1
    assert torch.isfinite(a.X).all()
    assert torch.equal(a.X, again.X)
    assert not torch.equal(a.X, other.X)
    if a.true_centroids is not None:
        assert a.true_centroids.dtype == torch.float32
        assert a.true_centroids.shape[1] == a.X.shape[1]


@pytest.mark.parametrize("name, params, fragment", [
    ("gaussian_mixture", {"n_centers": 0}, "n_centers"),
    ("gaussian_mixture", {"k": 2.5}, "k must be"),
    ("layer_weights", {"in_features": 30, "block_size": 8}, "does not divide"),
    ("layer_weights", {"distribution": "cauchy"}, "distribution"),
    ("layer_weights", {"layer_type": "conv"}, "layer_type"),
    ("duplicates", {"exact_fraction": 0.7, "near_fraction": 0.5}, "sum <= 1"),
    ("imbalanced", {"imbalance": 0.5}, "imbalance"),
    ("overestimated_k", {"n_centers": 10, "k": 10}, "k must be in"),
    ("high_dim", {"std": -1.0}, "std"),
])
def test_bad_parameters_fail_on_one_line_before_iteration(name, params, fragment):
    with pytest.raises(ValueError) as err:
        sources.load(name, **params)  # not iterated: the check happens at the call
    message = str(err.value)
    assert fragment in message and f"'{name}'" in message and "\n" not in message


def test_gaussian_mixture_points_sit_around_the_true_centres():
    ds = one("gaussian_mixture", n=500, d=2, n_centers=4, std=0.01)
    assert ds.k == 4 and ds.true_centroids.shape == (4, 2)
    nearest = torch.cdist(ds.X, ds.true_centroids).min(dim=1).values
    assert float(nearest.max()) < 0.06  # 6 sigma


def test_layer_weights_rebuild_the_weight_and_match_pgbench_synthetic():
    ds = one("layer_weights", seed=5, out_features=16, in_features=24, block_size=4, k=8)
    assert ds.weight_shape == (16, 24) and ds.block_size == 4 and ds.k == 8
    assert ds.X.shape == (16 * 24 // 4, 4)
    W = subvectors_to_weight(ds.X, ds.weight_shape)
    assert torch.equal(W, synthetic.layer_weights(16, 24, std=0.04, seed=5))
    # each sub-vector as its own centroid reconstructs the layer exactly
    W_hat = reconstruct_weight(ds.X, torch.arange(ds.X.shape[0]), ds.weight_shape)
    assert relative_error(W, W_hat) == 0.0


@pytest.mark.parametrize("distribution", ["student_t", "laplace"])
def test_layer_weights_are_heavy_tailed_with_the_requested_std(distribution):
    ds = one("layer_weights", out_features=64, in_features=64, distribution=distribution, layer_type="fc1")
    x = ds.X.double().flatten()
    assert ds.layer_type == "fc1"
    assert abs(float(x.std()) - 0.04) < 1e-6
    excess_kurtosis = float(((x - x.mean()) ** 4).mean() / x.var() ** 2) - 3.0
    assert excess_kurtosis > 1.5  # Laplace: 3; Student-t(3): unbounded; Gaussian: 0


def test_duplicates_have_the_requested_exact_and_near_copies():
    n, exact, near = 400, 0.25, 0.15
    ds = one("duplicates", n=n, d=3, exact_fraction=exact, near_fraction=near, n_groups=5, near_std=1e-5)
    n_exact, n_near = int(n * exact), int(n * near)
    assert ds.meta["n_exact"] == n_exact and ds.meta["n_near"] == n_near
    # exact copies add no distinct row; each near copy is a new row
    assert torch.unique(ds.X, dim=0).shape[0] == n - n_exact
    dist = torch.cdist(ds.X.double(), ds.X.double())
    dist.fill_diagonal_(float("inf"))
    assert int((dist.min(dim=1).values < 1e-4).sum()) >= n_exact + n_near


def test_imbalanced_sizes_fall_geometrically():
    ds = one("imbalanced", n=1000, n_centers=5, imbalance=16.0)
    sizes = ds.meta["sizes"]
    assert sum(sizes) == 1000 and len(sizes) == 5 == ds.k
    assert sizes == sorted(sizes, reverse=True)
    assert 12 < sizes[0] / sizes[-1] < 20
    owner = torch.cdist(ds.X, ds.true_centroids).argmin(dim=1)
    assert torch.bincount(owner, minlength=5).tolist() == sizes


def test_overestimated_k_keeps_the_true_count_small():
    ds = one("overestimated_k", n=300, n_centers=3, k=40)
    assert ds.k == 40 and ds.true_centroids.shape == (3, 2)


def test_high_dim_shape():
    ds = one("high_dim", n=100, d=256, n_centers=4)
    assert ds.X.shape == (100, 256) and ds.true_centroids.shape == (4, 256) and ds.k == 4


# ------------------------------------------------------------- clustering files

def write_sets(folder: Path) -> None:
    """A Fränti-style set 'toy' and a Birch-style set 'tb' with label 0 as noise."""
    (folder / "toy.txt").write_text("0 0\n2 0\n10 10\n12 10\n")
    (folder / "toy_gt.txt").write_text("1 0\n11 10\n")
    with gzip.open(folder / "tb.data.gz", "wt") as f:
        f.write("0 0\n4 0\n100 100\n20 20\n")
    with gzip.open(folder / "tb.labels0.gz", "wt") as f:
        f.write("1\n1\n0\n2\n")


def test_clustering_file_reads_both_formats(tmp_path):
    write_sets(tmp_path)
    sets = {ds.name: ds for ds in sources.load("clustering_file", directory=str(tmp_path))}
    assert sorted(sets) == ["tb", "toy"]
    toy, tb = sets["toy"], sets["tb"]
    assert toy.k == 2 and toy.X.shape == (4, 2)
    assert torch.equal(toy.true_centroids, torch.tensor([[1.0, 0.0], [11.0, 10.0]]))
    assert tb.k == 2 and tb.X.shape == (4, 2)
    # label means, the noise point (label 0) left out
    assert torch.equal(tb.true_centroids, torch.tensor([[2.0, 0.0], [20.0, 20.0]]))


def test_clustering_file_names_and_relative_directory(tmp_path, monkeypatch):
    (tmp_path / "sets").mkdir()
    write_sets(tmp_path / "sets")
    monkeypatch.chdir(tmp_path)
    assert [d.name for d in sources.load("clustering_file", directory="sets", names="tb")] == ["tb"]
    assert [d.name for d in sources.load("clustering_file", directory="sets", names="toy, tb")] == ["toy", "tb"]


@pytest.mark.parametrize("setup, params, fragment", [
    (lambda p: (p / "toy_gt.txt").unlink(), {}, "toy_gt.txt: file not found"),
    (lambda p: (p / "tb.labels0.gz").unlink(), {"names": "tb"}, "tb.labels0.gz: file not found"),
    (lambda p: None, {"names": "a9"}, "a9.txt: file not found"),
    (lambda p: None, {"directory": "/no/such/dir"}, "no data directory"),
])
def test_clustering_file_errors_name_the_file(tmp_path, setup, params, fragment):
    write_sets(tmp_path)
    setup(tmp_path)
    params = {"directory": str(tmp_path), **params}
    with pytest.raises(ValueError) as err:
        sources.load("clustering_file", **params)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_clustering_file_unparsable_file_is_named(tmp_path):
    write_sets(tmp_path)
    (tmp_path / "toy.txt").write_text("1 2\nthree 4\n")
    with pytest.raises(ValueError, match="toy.txt: cannot read"):
        list(sources.load("clustering_file", directory=str(tmp_path), names="toy"))


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared clustering data not available")
def test_real_clustering_sets_have_the_documented_k():
    expected = {"a1": 20, "a2": 35, "a3": 50, "s1": 15, "s2": 15, "s3": 15, "s4": 15,
                "unbalance": 8, "dim032": 16, "birch1": 100, "birch2": 100}
    found = {}
    for ds in sources.load("clustering_file", directory=str(SHARED)):
        found[ds.name] = ds.k
        assert ds.true_centroids.shape == (ds.k, ds.X.shape[1])
        assert centroid_index(ds.true_centroids, ds.true_centroids) == 0
    assert found == expected


# ------------------------------------------------------------- centroid index

TRUE = torch.tensor([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])


def test_ci_is_zero_for_the_same_centroids_in_any_order():
    assert centroid_index(TRUE, TRUE) == 0
    assert centroid_index(TRUE[[2, 0, 1]] + 0.5, TRUE) == 0


def test_ci_counts_a_missed_cluster():
    # found 0 and 1 both map to true 0; true 10 is an orphan -> CI(found->true) = 1.
    # true 10 maps to found 1 (distance 9 < 10), so CI(true->found) = 0.
    found = torch.tensor([[0.0, 0.0], [1.0, 0.0], [20.0, 0.0]])
    assert orphan_count(found, TRUE) == 1
    assert orphan_count(TRUE, found) == 0
    assert centroid_index(found, TRUE) == 1


def test_ci_counts_a_superfluous_centroid_the_other_way():
    # 4 found, 3 true: every true centroid is hit (30 -> 20), but found 30 owns nothing.
    found = torch.tensor([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0]])
    assert orphan_count(found, TRUE) == 0
    assert orphan_count(TRUE, found) == 1
    assert centroid_index(found, TRUE) == 1


def test_ci_two_missed_clusters_and_numpy_input():
    # all three found centroids sit in the first true cluster
    found = np.array([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]])
    assert centroid_index(found, TRUE.numpy()) == 2


@pytest.mark.parametrize("found, true, fragment", [
    (torch.zeros(2, 3), TRUE, "dimension"),
    (torch.zeros(0, 2), TRUE, "non-empty 2-D"),
    (torch.tensor([[float("nan"), 0.0]]), TRUE, "finite"),
    ([[0.0, 0.0]], TRUE, "torch.Tensor or numpy"),
])
def test_ci_rejects_bad_input(found, true, fragment):
    with pytest.raises(ValueError, match=fragment):
        centroid_index(found, true)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**16))
def test_ci_properties(k1, k2, seed):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(k1, 2, generator=g), torch.randn(k2, 2, generator=g)
    ci = centroid_index(a, b)
    assert ci == centroid_index(b, a)
    assert abs(k1 - k2) <= ci <= max(k1, k2) - 1
    assert centroid_index(a, a[torch.randperm(k1, generator=g)]) == 0
