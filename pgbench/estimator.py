"""A scikit-learn estimator around the instrumented engine, :func:`pgbench.kmeans`.

:class:`KMeans` lets the PG heuristics (and the faithful fairseq, scikit-learn and
faiss ones) drop into scikit-learn pipelines, grid searches and clones.  The fitted
estimator keeps the engine's :class:`~pgbench.result.KMeansResult` as ``result_``,
so the per-iteration trace and the empty-cluster ``status`` stay reachable.

Precision: the engine computes in ``dtype`` (float32 by default); the arrays the
estimator hands back (``cluster_centers_``, ``transform``) follow the input's
floating dtype, float32 for float32 input and float64 otherwise, as in
``sklearn.cluster.KMeans``.  ``predict`` and ``score`` use the same assignment
backend and precision as the fit, so ``predict`` on the training data gives
``labels_`` (without a consolidation) and ``score`` on it gives ``-inertia_``.
They read the current ``cluster_centers_``, so centres set by hand are used.

scikit-learn conventions: ``init="k-means++"`` names the ``kmeans++`` heuristic
(scikit-learn's greedy k-means++), ``init="random"`` is k distinct samples, as in
``sklearn.cluster.KMeans``.  Heuristic parameters live in the ``params`` dict and
are tunable one by one as ``params__NAME`` through ``get_params`` /
``set_params``, so ``GridSearchCV(pipe, {"km__params__max_passes": [1, 15]})``
works; ``set_params`` refuses a NAME that no registered heuristic declares.
The defaults are :func:`pgbench.kmeans`'s (PG init and resolution, 15
iterations, float32), except ``random_state=None``: a fresh seed per fit unless
one is given, as scikit-learn estimators do (the engine's ``seed`` defaults to 0).
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import (BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin,
                          TransformerMixin)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import backends, registry
from .engine import kmeans
from .validation import as_device, as_dtype, check_positive_int, error_text

# Engine arguments that must come from the estimator's own parameters, not ``params``.
_ENGINE_ARGS = frozenset(inspect.signature(kmeans).parameters) - {"params"}

_TORCH_DTYPES = {np.float64: torch.float64, np.float32: torch.float32}

# Bytes of the (rows, k, d) difference block per chunk in ``transform``.
_TRANSFORM_CHUNK_BYTES = 16 * 2**20

# scikit-learn's names for init heuristics that pgbench registers under another name.
SKLEARN_INIT_NAMES = {"k-means++": "kmeans++"}

# Prefix of the nested parameters that address one key of ``params``.
_PARAMS = "params__"


def _as_tensor(a: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``a`` as a tensor of ``dtype`` on ``device``; read-only arrays are copied, not shared."""
    t = torch.from_numpy(a) if a.flags.writeable else torch.tensor(a)
    return t.to(dtype=dtype, device=device)


def _validated(estimator: "KMeans", X: Any, reset: bool = True) -> np.ndarray:
    """scikit-learn's ``validate_data`` (float64 or float32), its errors put on one line."""
    try:
        return validate_data(estimator, X, dtype=[np.float64, np.float32], reset=reset)
    except ValueError as exc:   # e.g. "Expected 2D array ...:\narray=[...]\nReshape your data ..."
        raise ValueError(error_text(exc)) from None


def _weights(sample_weight: Any, X: np.ndarray) -> np.ndarray:
    """scikit-learn's ``_check_sample_weight`` (float64), its errors put on one line."""
    try:
        return _check_sample_weight(sample_weight, X, dtype=np.float64)
    except ValueError as exc:
        raise ValueError(error_text(exc)) from None


def _seed(random_state: Any) -> int:
    """An engine seed: a non-negative int as itself, anything else through ``check_random_state``."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state!r}.")
        return int(random_state)
    return int(check_random_state(random_state).randint(2**31 - 1))


class KMeans(ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means with pluggable empty-cluster heuristics, as a scikit-learn estimator.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters k; fitting needs at least k samples.
    init : str or array-like of shape (n_clusters, n_features), default="pg"
        Name of an ``init`` heuristic (``python -m pgbench list``;
        ``"k-means++"`` is scikit-learn's name for ``kmeans++``) or explicit
        initial centres.
    resolve : str, default="pg"
        Name of the ``resolve`` heuristic run every iteration ("none" leaves
        empty clusters empty).
    consolidate : str or None, default=None
        Name of a ``consolidate`` heuristic, or None.
    n_iter : int, default=15
        Lloyd iterations (the engine runs exactly this many unless ``tol`` or the
        resolver stops it).
    random_state : int, RandomState instance or None, default=None
        Seeds the engine: a non-negative int is used as the seed itself, anything
        else draws one with ``check_random_state(random_state).randint(2**31 - 1)``.
    device : str, default="cpu"
        "cpu", "cuda" or "cuda:N".
    backend : str or None, default=None
        Assignment backend, "torch" or "faiss"; None picks the faster for the device.
    dtype : str, default="float32"
        Precision of the computation, "float32" or "float64".
    tol : float or None, default=None
        Stop once the summed squared centre shift is <= tol; None never stops early.
    params : dict or None, default=None
        Heuristic parameters, passed to :func:`pgbench.kmeans` as ``**params``;
        each key is also a nested parameter ``params__NAME`` (``get_params`` /
        ``set_params``, ``GridSearchCV``).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        What ``predict``, ``transform`` and ``score`` measure against; may be
        replaced after fitting.
    labels_ : ndarray of shape (n_samples,), int64
    inertia_ : float
        Sum of weighted squared distances of the samples to their centres.
    n_iter_ : int
        Lloyd iterations actually run.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string feature names.
    result_ : KMeansResult
        The engine's full outcome: trace, ``status`` ("ok", "unresolved",
        "stopped", "diverged"), ``message``, timings.

    Notes
    -----
    A fit whose status is not "ok" (empty clusters left, or a fairseq-style stop)
    emits a ``ConvergenceWarning`` carrying the engine's message.
    """

    def __init__(self, n_clusters=8, init="pg", resolve="pg", consolidate=None, n_iter=15,
                 random_state=None, device="cpu", backend=None, dtype="float32", tol=None,
                 params=None):
        self.n_clusters = n_clusters
        self.init = init
        self.resolve = resolve
        self.consolidate = consolidate
        self.n_iter = n_iter
        self.random_state = random_state
        self.device = device
        self.backend = backend
        self.dtype = dtype
        self.tol = tol
        self.params = params

    def get_params(self, deep=True):
        """Estimator parameters; with ``deep``, also ``params__NAME`` for every key of ``params``."""
        out = super().get_params(deep=deep)
        if deep and isinstance(self.params, dict):   # anything else is refused by fit, not here
            out.update({_PARAMS + name: value for name, value in self.params.items()})
        return out

    def set_params(self, **params):
        """Set parameters; ``params__NAME=value`` sets one heuristic parameter in a copy of ``params``.

        Raises ValueError for a NAME that no registered heuristic declares.
        """
        nested = {key[len(_PARAMS):]: params.pop(key) for key in list(params) if key.startswith(_PARAMS)}
        if nested:
            declared = {name for stage in registry.STAGES for h in registry.names(stage)
                        for name in registry.get(stage, h).params}
            unknown = sorted(set(nested) - declared)
            if unknown:
                raise ValueError(f"Invalid parameter '{_PARAMS}{unknown[0]}' for estimator {self}: no registered "
                                 "heuristic declares it (python -m pgbench list).")
            base = params.get("params", self.params)
            if base is not None and not isinstance(base, dict):
                raise ValueError(f"params must be a dict or None to set {_PARAMS}NAME, got {type(base).__name__}.")
            params["params"] = {**(base or {}), **nested}
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self) -> int:
        """Number of ``transform`` output columns, one per centre."""
        return self.cluster_centers_.shape[0]

    def fit(self, X, y=None, sample_weight=None):
        """Cluster X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None
            Non-negative weights; None weighs every sample 1.

        Returns
        -------
        self : KMeans
        """
        X = _validated(self, X)
        k = check_positive_int(self.n_clusters, "n_clusters")
        if X.shape[0] < k:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={k}.")
        if self.params is not None and not isinstance(self.params, dict):
            raise ValueError(f"params must be a dict or None, got {type(self.params).__name__}.")
        clash = sorted(_ENGINE_ARGS.intersection(self.params or {}))
        if clash:
            raise ValueError(f"params must hold heuristic parameters only; set {', '.join(clash)} "
                             "through the estimator's own parameters.")
        dev = as_device(self.device)
        as_dtype(self.dtype)
        weights = None
        if sample_weight is not None:
            weights = torch.tensor(_weights(sample_weight, X))
        init = SKLEARN_INIT_NAMES.get(self.init, self.init) if isinstance(self.init, str) else self.init
        # X keeps its own precision here: the engine casts to dtype after its range checks
        result = kmeans(_as_tensor(X, _TORCH_DTYPES[X.dtype.type], dev), k, init=init,
                        resolve=self.resolve, consolidate=self.consolidate, n_iter=self.n_iter,
                        seed=_seed(self.random_state), device=self.device,
                        sample_weight=weights, backend=self.backend, dtype=self.dtype, tol=self.tol,
                        **(self.params or {}))
        if result.status != "ok":
            warnings.warn(f"pgbench k-means ended with status '{result.status}': {result.message}.",
                          ConvergenceWarning, stacklevel=2)
        self.result_ = result
        self.cluster_centers_ = result.centroids.detach().cpu().numpy().astype(X.dtype)
        self.labels_ = result.labels.detach().cpu().numpy().astype(np.int64)
        self.inertia_ = float(result.inertia)
        self.n_iter_ = int(result.n_iter)
        return self

    def _centers(self, dtype: torch.dtype) -> torch.Tensor:
        """The current ``cluster_centers_`` (k, d) as a tensor of ``dtype`` on the fit's device."""
        centers = np.asarray(self.cluster_centers_)
        if centers.ndim != 2 or centers.shape[0] < 1 or centers.shape[1] != self.n_features_in_:
            raise ValueError(f"cluster_centers_ must have shape (n_clusters, {self.n_features_in_}), "
                             f"got {centers.shape}.")
        return torch.as_tensor(centers, dtype=dtype, device=self.result_.centroids.device)

    def _assign(self, X: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest centre (n,) and squared distance (n,) with the fit's backend and precision."""
        centroids = self._centers(self.result_.centroids.dtype)
        Xt = _as_tensor(X, centroids.dtype, centroids.device)
        backend = self.result_.backend
        if backend == "faiss" and backends.faiss_module() is None:  # e.g. unpickled elsewhere
            backend = "torch"
        return backends.make_assign(backend, Xt)(Xt, centroids)

    def predict(self, X):
        """Index of the nearest centre for every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
        """
        check_is_fitted(self)
        X = _validated(self, X, reset=False)
        labels, _ = self._assign(X)
        return labels.cpu().numpy().astype(np.int64)

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit and return ``labels_``, shape (n_samples,)."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distance from every sample to every centre.

        Computed exactly as differences (no ``|x|^2 - 2 x.c + |c|^2`` cancellation)
        in float64, in row chunks so memory stays bounded, then returned in X's
        floating dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
        """
        check_is_fitted(self)
        X = _validated(self, X, reset=False)
        C = self._centers(torch.float64)                                    # (k, d)
        Xt = _as_tensor(X, torch.float64, C.device)                        # (n, d)
        k, d = C.shape
        rows = max(1, _TRANSFORM_CHUNK_BYTES // (8 * k * d))
        out = torch.empty(Xt.shape[0], k, dtype=torch.float64, device=C.device)
        for start in range(0, Xt.shape[0], rows):
            diff = Xt[start:start + rows, None, :] - C[None, :, :]         # (m, k, d)
            out[start:start + rows] = (diff * diff).sum(2).sqrt()
        return out.cpu().numpy().astype(X.dtype)

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit and return ``transform(X)``, shape (n_samples, n_clusters)."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the (weighted) inertia of X under the fitted centres.

        Larger is better, as scikit-learn's model selection expects.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,) or None

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        X = _validated(self, X, reset=False)
        sw = _weights(sample_weight, X)
        _, sq = self._assign(X)
        weights = torch.from_numpy(sw).to(dtype=sq.dtype, device=sq.device)
        return -float((sq * weights).sum())
