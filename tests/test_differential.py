"""Differential tests: pgbench's baselines beside the libraries they claim to be (issue 10, item 6).

scikit-learn and faiss are dependencies, so these run the real thing: scikit-learn's
relocation against ``KMeans(init=C0, n_init=1, algorithm="lloyd")`` over 1-20
iterations, weighted and unweighted, centroids equal to 1e-10 (float64 on both
sides); faiss's split against ``faiss.Clustering`` on a case whose donor is forced
(same objective per iteration and same split count); faiss's training subsample
against ``faiss.Kmeans`` (full-data inertia within 3 %); greedy k-means++ against
``sklearn.cluster.kmeans_plusplus`` in distribution (a two-sample KS test of the
potential over many seeds, beside the exact law test in test_baselines_init.py).
"""

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from sklearn.cluster import KMeans, kmeans_plusplus

import pgbench
from pgbench import registry
from pgbench.synthetic import gaussian_mixture, layer_subvectors
from pgbench.testing.compare import rows_match

faiss = pytest.importorskip("faiss")


# ---------------------------------------------------------------- scikit-learn relocation

def _relocation_case():
    """200 points in 5 blobs (float64); 8 start centroids, 3 of them far away: empty at the first assignment."""
    X = gaussian_mixture(200, 2, 5, spread=10.0, std=0.4, seed=11).double()
    C0 = torch.cat([X[[0, 40, 80, 120, 160]], torch.tensor([[100.0, 100.0], [120.0, 90.0], [-80.0, 95.0]],
                                                             dtype=torch.float64)])
    w = torch.randint(1, 4, (200,), generator=torch.Generator().manual_seed(3)).double()
    return X, C0, w


@pytest.mark.parametrize("weighted", [False, True])
def test_sklearn_relocation_matches_kmeans_over_1_to_20_iterations(weighted):
    X, C0, w = _relocation_case()
    sw = w.numpy() if weighted else None
    met_empties = False
    for n_iter in range(1, 21):
        ours = pgbench.kmeans(X, 8, init=C0, resolve="sklearn", n_iter=n_iter, backend="torch", dtype="float64",
                              sample_weight=None if sw is None else w)
        met_empties |= any(s.n_empty_assigned > 0 for s in ours.trace)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                # ConvergenceWarning at max_iter
            theirs = KMeans(8, init=C0.numpy(), n_init=1, max_iter=n_iter, tol=0.0, algorithm="lloyd").fit(
                X.numpy(), sample_weight=sw)
        C = torch.from_numpy(theirs.cluster_centers_)
        assert rows_match(ours.centroids, C, 1e-10), (n_iter, (ours.centroids - C).abs().max())
    assert met_empties                                      # relocation really ran


# ---------------------------------------------------------------- faiss split

def _forced_donor_case():
    """A 40-point blob around (5, 5), four far singletons; start centroids: a blob point, the
    singletons, and a second copy of the first singleton, which is empty at the first assignment.

    faiss accepts donor cj when r < (hassign[cj] - 1) / (n - k): singletons never (0), the blob always
    (39 / 37 >= 1), so the donor does not depend on the random draws, which differ between faiss's
    generator and pgbench's.
    """
    g = torch.Generator().manual_seed(2)
    blob = torch.tensor([5.0, 5.0]) + 0.5 * torch.randn(40, 2, generator=g)
    singles = torch.tensor([[50.0, 1.0], [1.0, 50.0], [-50.0, 2.0], [2.0, -50.0]])
    X = torch.cat([blob, singles]).float()
    C0 = torch.cat([blob[:1], singles, singles[:1]]).float()
    return X, C0


def test_faiss_split_matches_faiss_clustering_on_a_forced_donor():
    X, C0 = _forced_donor_case()
    n_iter = 8
    clus = faiss.Clustering(2, 6)
    clus.niter = n_iter
    clus.min_points_per_centroid = 1
    clus.max_points_per_centroid = 10_000
    faiss.copy_array_to_vector(C0.numpy().ravel(), clus.centroids)
    clus.train(X.numpy(), faiss.IndexFlatL2(2))
    stats = clus.iteration_stats
    objective = [stats.at(i).obj for i in range(stats.size())]
    nsplit = [stats.at(i).nsplit for i in range(stats.size())]
    ours = pgbench.kmeans(X, 6, init=C0, resolve="faiss", n_iter=n_iter, backend="faiss")
    assert nsplit[0] == 1 and sum(nsplit) >= 1                          # the forced split happened
    m = len(objective)                                                  # faiss may stop early on a fixed point
    assert [s.n_empty_assigned for s in ours.trace[:m]] == nsplit
    assert np.allclose([s.inertia for s in ours.trace[:m]], objective, rtol=1e-5)
    theirs = faiss.vector_to_array(clus.centroids).reshape(6, 2)
    assert rows_match(ours.centroids, torch.from_numpy(theirs), 1e-4)


def test_max_points_per_centroid_is_faiss_kmeans_within_3_percent():
    # a large set: 100,000 x 8 heavy-tailed points, k = 64, so both train on 64 * 256 = 16,384 points
    X = layer_subvectors(100_000, 8, seed=5)
    km = faiss.Kmeans(8, 64, niter=15, seed=1234, max_points_per_centroid=256)
    km.train(X.numpy())
    theirs = float(km.index.search(X.numpy(), 1)[0].sum())
    ours = pgbench.kmeans(X, 64, init="random", resolve="faiss", seed=0, max_points_per_centroid=256)
    assert ours.n_train == 64 * 256
    assert abs(ours.inertia / theirs - 1) < 0.03


# ---------------------------------------------------------------- k-means++ in distribution

def _potential(X, C):
    return float(torch.cdist(X.double(), torch.as_tensor(C).double()).pow(2).min(1).values.sum())


def test_kmeanspp_potential_has_sklearns_distribution():
    X = gaussian_mixture(300, 2, 12, spread=10.0, std=0.5, seed=4)
    init = registry.get("init", "kmeans++")
    ours = [_potential(X, init(X, torch.ones(300), 8, torch.Generator().manual_seed(s)).centroids)
            for s in range(300)]
    theirs = [_potential(X, kmeans_plusplus(X.double().numpy(), 8, random_state=s)[0]) for s in range(300)]
    assert ks_2samp(ours, theirs).pvalue > 1e-3
    # the test has power: plain D^2 sampling (one local trial) has another distribution
    plain = [_potential(X, init(X, torch.ones(300), 8, torch.Generator().manual_seed(s), n_local_trials=1).centroids)
             for s in range(300)]
    assert ks_2samp(plain, theirs).pvalue < 1e-3
