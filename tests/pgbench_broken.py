"""Deliberately broken heuristics that ``pgbench.testing`` must catch (tests/test_testing.py).

A plugin written as a third party would: only the public API (``pgbench.register``,
the outcome records, the documented ``KMeansState``).  Each one has one bug, named
after the check that must catch it.  Imported by the tests (this folder is on
``sys.path``), and by the check processes through the functions' module name.
"""

import os
import random

import torch

from pgbench import Consolidation, InitOutcome, ResolveOutcome, register
from pgbench.testing import expected_failures

NAMES = {"init": ["broken_global_rng", "broken_nan", "broken_exit"],
         "resolve": ["broken_random_choice", "broken_dishonest", "broken_forever", "broken_out_of_range",
                     "broken_stale_counts", "broken_declared"],
         "consolidate": ["broken_mutates", "broken_mass", "broken_weighting"]}


@register("init", "broken_global_rng", summary="test only: k random points from the GLOBAL torch generator")
def init_global_rng(X, weights, k, rng):
    idx = torch.randperm(X.shape[0])[:k]                     # bug: no generator=rng
    return InitOutcome(X[idx].clone())


@register("init", "broken_nan", summary="test only: standardises its first k points (0/0 on identical points)")
def init_nan(X, weights, k, rng):
    C = X[:k]
    C = (C - X.mean(0)) / X.std(0) * X.std(0) + X.mean(0)   # bug: std 0 on identical points -> NaN
    return InitOutcome(C)


@register("init", "broken_exit", summary="test only: kills the process running it")
def init_exit(X, weights, k, rng):
    os._exit(3)


@register("resolve", "broken_random_choice", summary="test only: fairseq's original random.choice")
def resolve_random_choice(state, rng):
    empty = state.empty_ids().tolist()
    if empty:
        target = random.choice(empty)                        # bug: the global `random` generator
        far = int(state.sq_dists.argmax())
        state.relabel(torch.tensor([far], device=state.labels.device),
                      torch.tensor([target], device=state.labels.device))
    n_found, n_left = len(empty), state.n_empty
    return ResolveOutcome(n_found, n_found - n_left, n_left, rounds=1)


@register("resolve", "broken_dishonest", summary="test only: claims to resolve every empty cluster, does nothing")
def resolve_dishonest(state, rng):
    n = state.n_empty
    return ResolveOutcome(n_found=n, n_resolved=n, n_left=0, rounds=1)   # bug: nothing was done


@register("resolve", "broken_forever", summary="test only: a pure-Python loop that never ends")
def resolve_forever(state, rng):
    spins = 0
    while True:                                               # bug: holds the GIL, never returns
        spins += 1


@register("resolve", "broken_out_of_range", summary="test only: moves the farthest point to cluster k")
def resolve_out_of_range(state, rng):
    n = state.n_empty
    if n:
        far = int(state.sq_dists.argmax())
        state.labels[far] = state.k                           # bug: off by one (and no recount)
    return ResolveOutcome(n_found=n, n_resolved=0, n_left=n)


@register("resolve", "broken_stale_counts", summary="test only: relabels without recounting")
def resolve_stale_counts(state, rng):
    empty = state.empty_ids()
    n = int(empty.numel())
    if n:
        far = torch.topk(state.sq_dists, n).indices
        state.labels[far] = empty                             # bug: state.relabel() recounts, this does not
    return ResolveOutcome(n_found=n, n_resolved=n, n_left=0, rounds=1)


@expected_failures(honest_counts="test only: declared, but its counts are honest")
@register("resolve", "broken_declared", summary="test only: a stale expected-failure declaration")
def resolve_declared(state, rng):
    n = state.n_empty
    return ResolveOutcome(n_found=n, n_resolved=0, n_left=n)


@register("consolidate", "broken_mutates", summary="test only: clips outliers in place")
def consolidate_mutates(X, weights, k, rng):
    X.clamp_(-1e3, 1e3)                                       # bug: modifies the caller's points
    return Consolidation(X.clone(), weights.clone(), torch.arange(X.shape[0], device=X.device))


@register("consolidate", "broken_mass", summary="test only: merges exact duplicates into weight 1")
def consolidate_mass(X, weights, k, rng):
    points, members = torch.unique(X, dim=0, return_inverse=True)
    if points.shape[0] < k:
        return Consolidation(X.clone(), weights.clone(), torch.arange(X.shape[0], device=X.device))
    ones = torch.ones(points.shape[0], dtype=weights.dtype, device=X.device)   # bug: mass lost
    return Consolidation(points, ones, members)


@register("consolidate", "broken_weighting", summary="test only: summed weights declared as 'single'")
def consolidate_weighting(X, weights, k, rng):
    _, members = torch.unique(X.round(), dim=0, return_inverse=True)     # points in one unit cell merge
    m = int(members.max()) + 1
    if m < k:
        return Consolidation(X.clone(), weights.clone(), torch.arange(X.shape[0], device=X.device))
    mass = torch.zeros(m, dtype=weights.dtype, device=X.device).index_add_(0, members, weights)
    size = torch.bincount(members, minlength=m).to(X.dtype)
    points = torch.zeros(m, X.shape[1], dtype=X.dtype, device=X.device).index_add_(0, members, X) / size[:, None]
    return Consolidation(points, mass, members, weighting="single")     # bug: these are summed weights


def unregister() -> None:
    """Undo this module's registrations (the tests' fixture calls it, so other tests never see them)."""
    import sys

    from pgbench import registry

    for stage, names in NAMES.items():
        for name in names:
            registry._REGISTRY[stage].pop(name, None)
    sys.modules.pop(__name__, None)
