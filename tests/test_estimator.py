"""Tests for pgbench.estimator.KMeans, the scikit-learn wrapper of the engine.

First scikit-learn's own estimator checks, then small hand-checked cases, then
properties on random data (hypothesis).
"""

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.utils import shuffle
from sklearn.utils.estimator_checks import parametrize_with_checks

import pgbench
from pgbench.estimator import KMeans

# Two triangles far apart: hand-checked centres (1/3, 1/3) and (31/3, 31/3); every
# point is at squared distance 2/9, 5/9 or 5/9 from its centre, so the inertia is
# 2 * 12/9 = 8/3.
BLOBS = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]], dtype=np.float64)
TRUTH = np.array([0, 0, 0, 1, 1, 1])


# --------------------------------------------------------------------------------------
# scikit-learn conformance

def _expected_failures(estimator):
    """Checks KMeans is known to fail, each with the reason (sklearn's own KMeans xfails it too)."""
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "weights are equivalent to repetitions only up to a relabelling: the order of "
            "the centres depends on the order of the samples, and the check compares raw "
            "labels (see test_sample_weight_equivalent_to_repetition_up_to_relabelling)."
        ),
    }


@parametrize_with_checks([KMeans(), KMeans(dtype="float64", backend="torch")],
                         expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check, monkeypatch):
    # check_array_api_input skips unless SCIPY_ARRAY_API is set; it only runs the
    # estimator on NumPy inputs with array-API dispatch on, so set it for this test
    # alone instead of skipping.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


# --------------------------------------------------------------------------------------
# hand-checked cases

def test_two_blobs_match_ground_truth_centres_and_inertia():
    km = KMeans(n_clusters=2, random_state=0).fit(BLOBS)
    assert adjusted_rand_score(km.labels_, TRUTH) == 1.0
    order = np.argsort(km.cluster_centers_[:, 0])
    np.testing.assert_allclose(km.cluster_centers_[order], [[1 / 3, 1 / 3], [31 / 3, 31 / 3]], rtol=1e-6)
    assert km.inertia_ == pytest.approx(8 / 3, rel=1e-6)
    assert km.n_features_in_ == 2
    assert km.labels_.dtype == np.int64 and km.labels_.shape == (6,)
    assert 1 <= km.n_iter_ <= 15


def test_predict_on_training_data_equals_labels():
    km = KMeans(n_clusters=2, random_state=0).fit(BLOBS)
    np.testing.assert_array_equal(km.predict(BLOBS), km.labels_)
    np.testing.assert_array_equal(km.fit_predict(BLOBS), km.labels_)
    # a new point goes to the nearest centre
    new = km.predict([[2.0, 2.0], [9.0, 9.0]])
    np.testing.assert_array_equal(new, km.labels_[[0, 3]])


def test_transform_shape_values_and_argmin():
    km = KMeans(n_clusters=2, random_state=0).fit(BLOBS)
    D = km.transform(BLOBS)
    assert D.shape == (6, 2)
    np.testing.assert_array_equal(D.argmin(1), km.predict(BLOBS))
    # (0, 0) is sqrt(2)/3 from its centre (1/3, 1/3)
    assert D[0, km.labels_[0]] == pytest.approx(np.sqrt(2) / 3, rel=1e-6)
    np.testing.assert_allclose(km.fit_transform(BLOBS), D)


def test_score_is_minus_inertia():
    km = KMeans(n_clusters=2, random_state=0).fit(BLOBS)
    assert km.score(BLOBS) == pytest.approx(-km.inertia_, rel=1e-6)
    assert km.score(BLOBS) == pytest.approx(-8 / 3, rel=1e-6)
    # weights scale the per-point squared distances: (0, 0) counts 2/9 three times more
    w = np.ones(6)
    w[0] = 4.0
    assert km.score(BLOBS, sample_weight=w) == pytest.approx(-(8 / 3 + 3 * 2 / 9), rel=1e-6)


@pytest.mark.parametrize("init", ["pg", "kmeans++", "random"])
def test_same_random_state_gives_identical_centres(init):
    X = np.random.default_rng(0).normal(size=(60, 3))
    a = KMeans(n_clusters=5, init=init, random_state=7).fit(X)
    b = KMeans(n_clusters=5, init=init, random_state=7).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.result_.seed == 7
    # a RandomState draws the seed; equal states give equal seeds
    c = KMeans(n_clusters=5, init=init, random_state=np.random.RandomState(3)).fit(X)
    d = KMeans(n_clusters=5, init=init, random_state=np.random.RandomState(3)).fit(X)
    assert c.result_.seed == d.result_.seed
    np.testing.assert_array_equal(c.cluster_centers_, d.cluster_centers_)


def test_heavy_point_pulls_its_centre():
    # 1-D: {0, 1, 2} and {10, 11}; weight 8 on x=2 moves the first centre from 1 to
    # (0 + 1 + 8 * 2) / 10 = 1.7
    X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    plain = KMeans(n_clusters=2, random_state=0).fit(X)
    w = np.array([1.0, 1.0, 8.0, 1.0, 1.0])
    heavy = KMeans(n_clusters=2, random_state=0).fit(X, sample_weight=w)
    assert sorted(plain.cluster_centers_[:, 0]) == pytest.approx([1.0, 10.5])
    assert sorted(heavy.cluster_centers_[:, 0]) == pytest.approx([1.7, 10.5])
    # inertia is weighted: 1.7^2 + 0.7^2 + 8 * 0.3^2 + 2 * 0.5^2
    assert heavy.inertia_ == pytest.approx(2.89 + 0.49 + 0.72 + 0.5, rel=1e-6)
    assert heavy.score(X, sample_weight=w) == pytest.approx(-heavy.inertia_, rel=1e-6)
    np.testing.assert_array_equal(w, [1.0, 1.0, 8.0, 1.0, 1.0])   # not overwritten


def test_sample_weight_equivalent_to_repetition_up_to_relabelling():
    # the data of sklearn's check_sample_weight_equivalence (xfailed above): same
    # partition, same centres as a set and same inertia, only the numbering differs
    rng = np.random.RandomState(42)
    X = rng.rand(15, 30)
    rng.randint(0, 3, size=15)
    sw = rng.randint(0, 5, size=15)
    X_rep = X.repeat(sw, axis=0)
    X_w, sw_w = shuffle(X, sw, random_state=0)
    rep = KMeans(dtype="float64", backend="torch", random_state=0).fit(X_rep)
    wei = KMeans(dtype="float64", backend="torch", random_state=0).fit(X_w, sample_weight=sw_w)
    assert adjusted_rand_score(rep.predict(X), wei.predict(X)) == 1.0
    key = lambda C: C[np.lexsort(C.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(key(rep.cluster_centers_), key(wei.cluster_centers_), rtol=1e-10)
    assert rep.inertia_ == pytest.approx(wei.inertia_, rel=1e-10)


def test_result_and_status_exposed():
    km = KMeans(n_clusters=2, random_state=0).fit(BLOBS)
    assert isinstance(km.result_, pgbench.KMeansResult)
    assert km.result_.status == "ok"
    assert km.result_.resolve == "pg" and km.result_.init == "pg"
    assert len(km.result_.trace) == km.n_iter_


def test_unresolved_status_warns():
    # two distinct points for three clusters: one cluster must stay empty
    X = np.array([[0.0, 0.0]] * 3 + [[5.0, 5.0]])
    with pytest.warns(ConvergenceWarning, match="unresolved"):
        km = KMeans(n_clusters=3, random_state=0).fit(X)
    assert km.result_.status == "unresolved"
    assert km.result_.n_empty_final == 1


def test_lazy_top_level_export():
    assert pgbench.KMeans is KMeans


# --------------------------------------------------------------------------------------
# parameters, dtypes, errors

@pytest.mark.parametrize("in_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("engine_dtype", ["float32", "float64"])
def test_output_dtype_follows_input(in_dtype, engine_dtype):
    km = KMeans(n_clusters=2, dtype=engine_dtype, random_state=0).fit(BLOBS.astype(in_dtype))
    assert km.cluster_centers_.dtype == in_dtype
    assert km.transform(BLOBS.astype(in_dtype)).dtype == in_dtype
    assert km.transform(BLOBS.astype(np.int64)).dtype == np.float64
    assert isinstance(km.inertia_, float) and isinstance(km.score(BLOBS), float)


def test_params_routed_to_heuristics():
    km = KMeans(n_clusters=2, random_state=0, params={"max_passes": 3, "patience": 1}).fit(BLOBS)
    assert km.result_.params["resolve"]["max_passes"] == 3
    with pytest.raises(ValueError, match="not taken by any selected heuristic"):
        KMeans(n_clusters=2, params={"bogus": 1}).fit(BLOBS)
    with pytest.raises(ValueError, match="params must be a dict"):
        KMeans(n_clusters=2, params=[("max_passes", 3)]).fit(BLOBS)
    with pytest.raises(ValueError, match="heuristic parameters only; set seed"):
        KMeans(n_clusters=2, params={"seed": 3}).fit(BLOBS)


def test_explicit_init_and_other_heuristics():
    km = KMeans(n_clusters=2, init=[[0.0, 0.0], [10.0, 10.0]], resolve="none").fit(BLOBS)
    assert km.result_.init == "explicit"
    np.testing.assert_array_equal(km.labels_, TRUTH)
    km = KMeans(n_clusters=2, init="fairseq", resolve="fairseq", random_state=1).fit(BLOBS)
    assert km.result_.status in set(pgbench.result.Status)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="n_samples=2 should be >= n_clusters=3"):
        KMeans(n_clusters=3).fit(BLOBS[:2])
    with pytest.raises(ValueError, match="n_clusters must be a positive integer"):
        KMeans(n_clusters=0).fit(BLOBS)
    with pytest.raises(ValueError, match="random_state must be a non-negative integer"):
        KMeans(n_clusters=2, random_state=-1).fit(BLOBS)
    with pytest.raises(ValueError, match="unknown resolve heuristic"):
        KMeans(n_clusters=2, resolve="nope").fit(BLOBS)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        KMeans(n_clusters=2).fit(BLOBS, sample_weight=[1, 1, 1, 1, 1, -1])
    km = KMeans(n_clusters=2, random_state=0).fit(BLOBS)
    with pytest.raises(ValueError, match="features"):
        km.predict(np.zeros((2, 3)))


def test_pickle_and_clone_round_trip():
    km = KMeans(n_clusters=2, random_state=0, params={"patience": 2}).fit(BLOBS)
    back = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(back.predict(BLOBS), km.labels_)
    fresh = clone(km)
    assert fresh.get_params() == km.get_params() and not hasattr(fresh, "labels_")


def test_feature_names_out():
    km = KMeans(n_clusters=2, random_state=0).fit(BLOBS)
    assert list(km.get_feature_names_out()) == ["kmeans0", "kmeans1"]


# --------------------------------------------------------------------------------------
# scikit-learn conventions: init names, nested params, predict on cluster_centers_, defaults

def test_sklearn_init_name_is_kmeans_plus_plus():
    ours = KMeans(n_clusters=2, init="k-means++", random_state=3).fit(BLOBS)
    assert ours.result_.init == "kmeans++"
    same = KMeans(n_clusters=2, init="kmeans++", random_state=3).fit(BLOBS)
    np.testing.assert_array_equal(ours.cluster_centers_, same.cluster_centers_)
    assert ours.get_params()["init"] == "k-means++"                    # the parameter stays as given (clone)


def test_params_are_nested_parameters():
    km = KMeans(n_clusters=2, params={"max_passes": 3})
    deep = km.get_params(deep=True)
    assert deep["params__max_passes"] == 3 and "params__max_passes" not in km.get_params(deep=False)
    given = km.params
    assert km.set_params(params__patience=1, n_iter=4) is km
    assert km.params == {"max_passes": 3, "patience": 1} and given == {"max_passes": 3}   # a copy, not mutated
    assert km.n_iter == 4
    assert KMeans().set_params(params__max_passes=2).params == {"max_passes": 2}
    assert KMeans().set_params(params={"patience": 2}, params__max_passes=2).params == {"patience": 2,
                                                                                         "max_passes": 2}
    with pytest.raises(ValueError, match="params__max_pases"):
        KMeans().set_params(params__max_pases=2)
    assert clone(km).get_params(deep=True) == km.get_params(deep=True)


def test_grid_search_tunes_heuristic_params_through_a_pipeline():
    from sklearn.datasets import make_blobs
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, _ = make_blobs(n_samples=120, centers=4, random_state=0)
    pipe = Pipeline([("scale", StandardScaler()), ("km", KMeans(n_clusters=4, random_state=0))])
    grid = {"km__params__max_passes": [1, 15], "km__init": ["k-means++", "pg"]}
    search = GridSearchCV(pipe, grid, cv=2, error_score="raise").fit(X)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_.named_steps["km"]
    assert best.result_.params["resolve"]["max_passes"] == search.best_params_["km__params__max_passes"]
    assert best.result_.init == {"k-means++": "kmeans++", "pg": "pg"}[search.best_params_["km__init"]]
    assert pipe.named_steps["km"].params is None                         # the template is untouched


def test_predict_transform_score_follow_cluster_centers():
    km = KMeans(n_clusters=2, random_state=0).fit(BLOBS)
    km.cluster_centers_ = km.cluster_centers_[::-1].copy()               # swap the two centres by hand
    np.testing.assert_array_equal(km.predict(BLOBS), 1 - km.labels_)
    np.testing.assert_array_equal(km.transform(BLOBS).argmin(1), 1 - km.labels_)
    km.cluster_centers_ = np.array([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]])
    np.testing.assert_array_equal(km.predict([[99.0, 99.0], [1.0, 0.0]]), [2, 0])
    assert km.score(BLOBS) == pytest.approx(-(0 + 1 + 1 + 0 + 1 + 1))     # squared distances to (0,0)/(10,10)
    km.cluster_centers_ = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"cluster_centers_ must have shape \(n_clusters, 2\)"):
        km.predict(BLOBS)


def test_defaults_are_the_engines():
    import inspect

    engine = inspect.signature(pgbench.kmeans).parameters
    ours = inspect.signature(KMeans).parameters
    shared = set(engine) & set(ours)
    assert shared == {"init", "resolve", "consolidate", "n_iter", "device", "backend", "dtype", "tol", "params"}
    assert {name: ours[name].default for name in shared - {"params"}} == \
        {name: engine[name].default for name in shared - {"params"}}
    assert engine["init"].default == engine["resolve"].default == "pg"


# --------------------------------------------------------------------------------------
# properties

@st.composite
def data_and_k(draw):
    n = draw(st.integers(2, 30))
    d = draw(st.integers(1, 4))
    X = draw(arrays(np.float64, (n, d), elements=st.floats(-100, 100, allow_nan=False, width=32)))
    k = draw(st.integers(1, n))
    return X, k


@settings(max_examples=20, deadline=None)
@given(data_and_k(), st.sampled_from(["pg", "kmeans++"]))
def test_properties_on_random_data(case, init):
    X, k = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)   # duplicates can leave empties
        km = KMeans(n_clusters=k, init=init, n_iter=5, dtype="float64", backend="torch",
                    random_state=0).fit(X)
    assert km.cluster_centers_.shape == (k, X.shape[1])
    assert km.labels_.shape == (X.shape[0],)
    assert km.labels_.min() >= 0 and km.labels_.max() < k
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    assert km.score(X) == pytest.approx(-km.inertia_, rel=1e-9, abs=1e-9)
    D = km.transform(X)
    assert D.shape == (X.shape[0], k) and (D >= 0).all()
    # the predicted centre is a nearest one (exact argmin can differ only on ties)
    np.testing.assert_allclose(D[np.arange(X.shape[0]), km.labels_], D.min(1), rtol=1e-9, atol=1e-6)
    # the inertia is the sum of squared transform distances to the assigned centres
    assert km.inertia_ == pytest.approx(float((D[np.arange(X.shape[0]), km.labels_] ** 2).sum()),
                                        rel=1e-6, abs=1e-6)
