"""The instrumented Lloyd loop with three hook points: consolidate, init, resolve.

One iteration is::

    assignment (labels, squared distances)        -> n_empty_assigned
    resolve, if it runs before the update         -> n_resolved, rounds
    centroid update (weighted means; a cluster with no points keeps its centroid)
    resolve, if it runs after the update (faiss)
    trace record (seconds per phase, inertia at the assignment, and the
    resolver's work: resolve_distance_evals and resolve_assign_passes, the
    growth of the state's counters during the resolver call)

Overflow: the inputs are checked at the boundary so that no squared distance
can overflow the dtype (:func:`pgbench.validation.check_scale`), and heuristic
parameters are range-checked when they are bound.  As a backstop, every
assignment and every iteration's centroids are checked for NaN/inf; if a
heuristic pushes them out of range the run ends there with status ``diverged``,
keeping the last centroids an assignment succeeded with (so the returned
centroids, labels and inertia are finite) and a message saying what overflowed.

There is no convergence test by default: like fairseq's EM the loop runs exactly
``n_iter`` iterations unless a resolver stops it (fairseq's
EmptyClusterResolveError, recorded as status ``stopped``) or ``tol`` is given.
After the loop a last assignment gives the final labels and the final empty
count (the empties of the loop's own last assignment, which fairseq returns,
are kept as ``n_empty_last_assignment``).  With a consolidation, k-means runs on
the consolidated weighted points and the labels are mapped back to the original
points at the end, so every member of a dense group shares its representative's
centroid.  With ``max_points_per_centroid`` it iterates on faiss's random
subsample of those points, and the last assignment covers them all.
"""

from __future__ import annotations

import logging
import numbers
import time
from typing import Any

import torch

from . import backends, registry
from .params import Int, Real
from .result import IterationStats, KMeansResult
from .state import Consolidation, KMeansState, NonFiniteError, ResolveOutcome
from .validation import (as_device, as_dtype, as_points, as_seed, as_weights, check_k,
                         check_positive_int, check_scale)

log = logging.getLogger(__name__)


def _route_params(selected: dict[str, registry.Heuristic], params: dict[str, Any]) -> dict[str, dict]:
    """Give each flat parameter to every selected heuristic that declares it."""
    routed: dict[str, dict] = {stage: {} for stage in selected}
    for key, value in params.items():
        takers = [stage for stage, h in selected.items() if key in h.params]
        if not takers:
            names = ", ".join(f"{s} '{h.name}'" for s, h in selected.items())
            raise ValueError(f"parameter '{key}' is not taken by any selected heuristic ({names}).")
        for stage in takers:
            routed[stage][key] = value
    return {stage: selected[stage].bind(routed[stage]) for stage in selected}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _update(state: KMeansState) -> None:
    """Centroid update: weighted mean of each cluster; zero-mass clusters keep theirs.

    The masses are ``state.sizes``, which every assignment and relabel keeps current,
    so only the weighted coordinate sums are accumulated here.
    """
    X = state.X
    values = X if state.unit_weights else X * state.weights[:, None]      # (n, d)
    sums = backends.segment_sums(state.labels, values, state.k)           # (k, d)
    mass = state.sizes                                                     # (k,)
    filled = mass > 0
    state.centroids[filled] = sums[filled] / mass[filled, None]


def _iteration(state: KMeansState, it: int, resolver: registry.Heuristic, params: dict[str, Any],
               rng: torch.Generator) -> tuple[IterationStats, ResolveOutcome]:
    """One Lloyd iteration (assignment, resolve, update); returns its trace record and the resolve outcome.

    Raises ``NonFiniteError`` when an assignment overflows or the centroids end non-finite.
    """
    dev = state.X.device
    t0 = time.perf_counter()
    state.reassign()
    n_empty = state.n_empty
    # x * 1 == x exactly, so the unit-weight sum is the same number without the (n,) product
    inertia = float(state.sq_dists.sum() if state.unit_weights else (state.sq_dists * state.weights).sum())
    _sync(dev)
    t1 = time.perf_counter()
    seconds_resolve = 0.0
    res = None
    passes, evals = state.n_assignments, state.n_distance_evals      # the resolver's work is the difference
    if resolver.when == "before_update":
        res = resolver.func(state, rng, **params)
        _sync(dev)
        seconds_resolve = time.perf_counter() - t1
    t2 = time.perf_counter()
    if res is None or not res.stop:
        _update(state)
    _sync(dev)
    seconds_update = time.perf_counter() - t2
    if resolver.when == "after_update":
        t3 = time.perf_counter()
        res = resolver.func(state, rng, **params)
        _sync(dev)
        seconds_resolve = time.perf_counter() - t3
    bad = state.non_finite_centroids()
    if bad:
        raise NonFiniteError(f"{bad} of {state.k} centroids became non-finite after resolver '{resolver.name}' "
                             "and the update")
    return IterationStats(it, n_empty, res.n_left, res.n_resolved, res.rounds, res.gave_up,
                          t1 - t0, seconds_resolve, seconds_update, inertia,
                          state.n_distance_evals - evals, state.n_assignments - passes), res


_TOL = Real("tol", None, low=0, none=True)
_MAX_POINTS = Int("max_points_per_centroid", None, low=1, none=True)


def _subsample(points: torch.Tensor, weights: torch.Tensor, k: int, max_points_per_centroid: int | None,
               rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """faiss's training subsample: at most k * max_points_per_centroid of the (m, d) points.

    As ``faiss/impl/ClusteringHelpers.cpp::subsample_training_set``: when there are
    more, a random permutation of all points (from the run's generator) and its
    first k * max_points_per_centroid entries, in permutation order, weights with
    them.  Otherwise the points themselves (and nothing is drawn).
    """
    m = points.shape[0]
    if max_points_per_centroid is None or m <= k * max_points_per_centroid:
        return points, weights
    keep = torch.randperm(m, generator=rng)[:k * max_points_per_centroid].to(points.device)
    return points[keep], weights[keep]


def kmeans(X: Any, k: int, init: Any = "pg", resolve: str = "pg",
           consolidate: str | None = None, n_iter: int = 15, seed: int = 0,
           device: str = "cpu", sample_weight: Any = None, backend: str | None = None,
           dtype: Any = "float32", tol: float | None = None, max_points_per_centroid: int | None = None,
           **params: Any) -> KMeansResult:
    """Run instrumented k-means with the named heuristics.

    Parameters
    ----------
    X : array-like of shape (n, d)
    k : number of clusters, 1 <= k <= n
    init : name of an ``init`` heuristic, or an array (k, d) of initial centroids
        (default "pg": PG k-means, like :class:`pgbench.KMeans`; ``init="fairseq",
        resolve="fairseq", max_tentatives=100`` is fairseq's iPQ k-means)
    resolve : name of a ``resolve`` heuristic ("none" to leave empty clusters; default "pg")
    consolidate : name of a ``consolidate`` heuristic, or None
    n_iter : Lloyd iterations (fairseq's iPQ default is 15)
    seed : seeds the one CPU ``torch.Generator`` every heuristic draws from, so the
        same seed on the same device gives identical output
    device : "cpu", "cuda" or "cuda:N"
    sample_weight : array-like (n,) of non-negative weights, or None
    backend : "torch", "faiss" or "direct" assignment (:mod:`pgbench.backends`);
        None picks the faster of torch and faiss for the device
    dtype : "float32" (default) or "float64"
    tol : stop early once the summed squared centroid shift is <= tol (None: never)
    max_points_per_centroid : None (default) iterates on all points; an integer
        m makes k-means train, as faiss's ``Clustering`` does, on a random
        subsample of at most k * m points (drawn once, after any consolidation
        and before the init); the final labels, empties and inertia are then
        computed on every point.  faiss's own default is 256.
    **params : heuristic parameters, each routed to the selected heuristics that
        declare it (see ``python -m pgbench list``)

    Returns
    -------
    KMeansResult
    """
    started = time.perf_counter()
    dev = as_device(device)
    dt = as_dtype(dtype)
    Xt = as_points(X, "X", dt, dev)
    n, d = Xt.shape
    k = check_k(k, n)
    n_iter = check_positive_int(n_iter, "n_iter")
    seed = as_seed(seed)
    weights = as_weights(sample_weight, n, dt, dev)
    try:
        tol = _TOL.check(tol)
    except ValueError as exc:
        raise ValueError(f"tol {exc}.") from None
    try:
        max_points_per_centroid = _MAX_POINTS.check(max_points_per_centroid)
    except ValueError as exc:
        raise ValueError(f"max_points_per_centroid {exc}.") from None
    backend = backend or backends.default_backend(dev, dt)
    backends.check_backend(backend, dev, dt)

    explicit_init = None
    if init is None or isinstance(init, numbers.Number):
        raise ValueError(f"init must be a heuristic name or initial centroids of shape ({k}, {d}), got {init!r}.")
    if not isinstance(init, str):
        explicit_init = as_points(init, "init", dt, dev)
        if explicit_init.shape != (k, d):
            raise ValueError(f"init centroids must have shape ({k}, {d}), got {tuple(explicit_init.shape)}.")
    check_scale([Xt] if explicit_init is None else [Xt, explicit_init], weights)
    if not isinstance(resolve, str):
        raise ValueError(f"resolve must be a heuristic name, got {resolve!r}.")
    selected = {"resolve": registry.get("resolve", resolve)}
    if explicit_init is None:
        selected["init"] = registry.get("init", init)
    if consolidate is not None:
        selected["consolidate"] = registry.get("consolidate", consolidate)
    bound = _route_params(selected, params)

    rng = torch.Generator(device="cpu").manual_seed(seed)
    resolver = selected["resolve"]

    # consolidation: k-means then runs on (m, d) weighted points
    members = None
    consolidate_info: dict[str, Any] = {}
    n_groups = n_consolidated_points = 0
    t0 = time.perf_counter()
    points, point_weights = Xt, weights
    if consolidate is not None:
        merged: Consolidation = selected["consolidate"].func(Xt, weights, k, rng, **bound["consolidate"])
        points, point_weights, members = merged.X, merged.weights, merged.members
        consolidate_info = merged.info
        group_sizes = torch.bincount(members)
        n_groups = int((group_sizes > 1).sum())
        n_consolidated_points = int(group_sizes[group_sizes > 1].sum())
        if points.shape[0] < k:
            raise RuntimeError(f"consolidation '{consolidate}' left {points.shape[0]} points for k={k}.")
        if not bool(torch.isfinite(points).all()):
            raise RuntimeError(f"consolidation '{consolidate}' returned non-finite points.")
    _sync(dev)
    seconds_consolidate = time.perf_counter() - t0

    train, train_weights = _subsample(points, point_weights, k, max_points_per_centroid, rng)

    t0 = time.perf_counter()
    if explicit_init is not None:
        centroids, init_name, init_info = explicit_init.clone(), "explicit", {}
    else:
        outcome = selected["init"].func(train, train_weights, k, rng, **bound["init"])
        centroids, init_name, init_info = outcome.centroids.to(dev, dt).contiguous(), init, outcome.info
        if not bool(torch.isfinite(centroids).all()):
            raise RuntimeError(f"init heuristic '{init}' returned non-finite centroids.")
    _sync(dev)
    seconds_init = time.perf_counter() - t0

    assign = backends.make_assign(backend, train)
    state = KMeansState(train, train_weights, centroids, assign)
    trace: list[IterationStats] = []
    stopped, diverged = False, ""
    good = None                      # centroids an iteration's first assignment succeeded with
    for it in range(n_iter):
        start, assigned = state.centroids.clone(), state.n_assignments
        try:
            stats, res = _iteration(state, it, resolver, bound["resolve"], rng)
        except NonFiniteError as exc:
            began = state.n_assignments > assigned        # this iteration's first assignment worked
            good = start if began else good
            if good is None:
                raise RuntimeError(f"the initial centroids of init '{init_name}' cannot be assigned: {exc}.") from None
            state.centroids = good
            diverged = (f"iteration {it}, {f'resolver {resolve!r}' if began else 'assignment'}: {exc}; the run "
                        "ended there, with the last centroids an assignment succeeded with")
            log.warning("k-means diverged at %s", diverged)
            break
        good = start
        trace.append(stats)
        log.debug("iteration %d: %d empty after assignment, %d after %s (%d rounds), inertia %.6g",
                  it, stats.n_empty_assigned, res.n_left, resolve, res.rounds, stats.inertia)
        if res.stop:
            stopped = True
            break
        if tol is not None and float(((state.centroids - start) ** 2).sum()) <= tol:
            break

    last_in_loop = state.n_empty_at_assignment if trace else None
    # final assignment of the (consolidated) points with the final centroids
    if train is points:
        state.reassign()
        labels, sq = state.labels, state.sq_dists
    else:
        labels, sq = backends.make_assign(backend, points)(points, state.centroids)
    if members is not None:
        labels = labels[members]
        sq = ((Xt - state.centroids[labels]) ** 2).sum(1)
    counts = torch.bincount(labels, minlength=k)
    n_empty_final = int((counts == 0).sum())
    inertia = float((sq * weights).sum())

    last = trace[-1] if trace else None
    if diverged:
        status, message = "diverged", diverged
    elif stopped:
        status = "stopped"
        message = (f"resolver '{resolve}' stopped the iterations at iteration {last.iteration} "
                   f"with {last.n_empty_resolved} empty clusters left")
    elif n_empty_final > 0 or (last is not None and last.gave_up):
        status = "unresolved"
        message = f"{n_empty_final} empty clusters after the final assignment"
        if int(torch.unique(Xt, dim=0).shape[0]) < k:
            message += " (the data has fewer distinct points than k)"
    else:
        status, message = "ok", ""
    _sync(dev)
    return KMeansResult(
        centroids=state.centroids, labels=labels, trace=trace, n_empty_final=n_empty_final,
        inertia=inertia, status=status, message=message, n_iter=len(trace), k=k,
        init=init_name, resolve=resolve, consolidate=consolidate,
        params={stage: dict(p) for stage, p in bound.items()}, seed=seed, device=str(dev),
        backend=backend, seconds_consolidate=seconds_consolidate, seconds_init=seconds_init,
        seconds_total=time.perf_counter() - started, init_info=init_info,
        consolidate_info=consolidate_info, n_empty_last_assignment=last_in_loop, n_train=int(train.shape[0]),
        n_consolidated_points=n_consolidated_points, n_groups=n_groups)
