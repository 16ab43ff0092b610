"""The named checks of the battery.

A check is a function of a :class:`~pgbench.testing.subject.Subject` that returns
when the heuristic passes and raises :class:`CheckFailure` (naming the data set)
or :class:`CheckSkip` otherwise.  :data:`CHECKS` lists them in the order they run;
each applies to the stages it names.  The time limit is not a check of its own:
the process running any check kills a heuristic call that outlives it
(:mod:`pgbench.testing.isolation`).

Tolerances, where a comparison cannot be exact: the weights check accepts
centroids equal up to relabelling (each centroid within ``1e-5`` of the data's
scale of a distinct partner), or else an inertia within a relative ``1e-4``
(:data:`INERTIA_RTOL`; tie order may differ between a weighted point and its
adjacent copies); the CUDA check compares floats with a relative ``1e-4``
(:data:`CUDA_RTOL`, plus ``1e-6`` of the data's largest magnitude) and integers exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..backends import segment_sums
from ..registry import STAGES
from . import compare
from .data import CASES, case, duplicated, start_centroids
from .subject import Call, CheckFailure, CheckSkip, Subject

INERTIA_RTOL = 1e-4
CUDA_RTOL = 1e-4
#: data sets of the CUDA check: no exact distance ties, which rounding could flip between devices
CUDA_CASES = ["blobs", "weighted", "far_outlier"]


@dataclass(frozen=True)
class Check:
    """One named check: the stages it applies to, its function and a one-line summary."""

    name: str
    stages: tuple[str, ...]
    func: Callable[[Subject], None]
    summary: str


CHECKS: dict[str, Check] = {}


def _check(name: str, stages: tuple[str, ...] = STAGES) -> Callable:
    def add(func: Callable[[Subject], None]) -> Callable:
        CHECKS[name] = Check(name, stages, func, (func.__doc__ or "").strip().splitlines()[0])
        return func
    return add


def checks_for(stage: str) -> list[str]:
    """Names of the checks that apply to ``stage``, in running order."""
    return [c.name for c in CHECKS.values() if stage in c.stages]


# --------------------------------------------------------------------------- what a call produced

def outputs(subject: Subject, call: Call) -> dict[str, Any]:
    """The tensors a call produced, by name (what the finite, determinism and CUDA checks look at)."""
    out = call.outcome
    if subject.stage == "init":
        return {"centroids": out.centroids}
    if subject.stage == "resolve":
        return {"centroids": call.state.centroids, "labels": call.state.labels}
    return {"X": out.X, "weights": out.weights, "members": out.members}


def fingerprint(subject: Subject, call: Call) -> dict[str, Any]:
    """Everything a call reports: its output tensors, the outcome's counts and its info."""
    out = call.outcome
    found = dict(outputs(subject, call))
    if subject.stage == "resolve":
        found.update({f: getattr(out, f) for f in (*compare.COUNT_FIELDS, *compare.FLAG_FIELDS)})
    info = out.info if isinstance(out.info, dict) else {"": out.info}
    found.update({f"info[{key}]": value for key, value in info.items()})
    return found


# --------------------------------------------------------------------------- the checks

@_check("bounded")
def bounded(subject: Subject) -> None:
    """returns, within the time limit and without raising, on every data set (degenerate ones included)"""
    for _ in subject.calls():
        pass


@_check("finite")
def finite(subject: Subject) -> None:
    """its centroids (consolidated points and weights) are finite on every data set"""
    for call in subject.calls():
        for what, t in outputs(subject, call).items():
            if what in ("labels", "members"):
                continue
            problem = compare.tensor_problem(t, what) or compare.nonfinite_problem(t, what)
            if problem:
                raise CheckFailure(call.label, problem)


@_check("labels_in_range", ("resolve", "consolidate"))
def labels_in_range(subject: Subject) -> None:
    """labels (resolve) and members (consolidate) are int64, one per point, in [0, k) / [0, m)"""
    for call in subject.calls():
        problem = _index_problem(subject, call)
        if problem:
            raise CheckFailure(call.label, problem)


def _index_problem(subject: Subject, call: Call) -> str | None:
    n = call.data.X.shape[0]
    if subject.stage == "resolve":
        return compare.index_problem(call.state.labels, "state.labels", n, call.state.k, "k")
    out = call.outcome
    bound = out.X.shape[0] if isinstance(out.X, torch.Tensor) else 0
    return compare.index_problem(out.members, "members", n, bound, "m")


@_check("honest_counts")
def honest_counts(subject: Subject) -> None:
    """what its outcome reports matches a recount from what it returned (and, for a resolver, the state)"""
    recount = {"init": _recount_init, "resolve": _recount_resolve, "consolidate": _recount_consolidate}
    for call in subject.calls():
        problem = recount[subject.stage](subject, call) or compare.info_problem(call.outcome.info)
        if problem:
            raise CheckFailure(call.label, problem)


def _recount_init(subject: Subject, call: Call) -> str | None:
    C, X = call.outcome.centroids, call.data.X
    want = (call.data.k, X.shape[1])
    problem = compare.tensor_problem(C, "centroids")
    if problem:
        return problem
    if tuple(C.shape) != want:
        return f"centroids have shape {tuple(C.shape)}, not (k, d) = {want}"
    if C.dtype != X.dtype or C.device != X.device:
        return f"centroids are {C.dtype} on {C.device}, not {X.dtype} on {X.device} like X"
    return None


def _recount_resolve(subject: Subject, call: Call) -> str | None:
    state, out, before = call.state, call.outcome, call.before
    problem = _index_problem(subject, call) or compare.outcome_field_problem(out)
    if problem:
        return problem
    counts = torch.bincount(state.labels, minlength=state.k)
    sizes = segment_sums(state.labels, state.weights[:, None], state.k)[:, 0]
    if not torch.equal(state.counts, counts) or not torch.allclose(state.sizes, sizes, rtol=1e-5):
        return ("state.counts / state.sizes do not match state.labels: labels were changed without "
                "state.relabel(), state.reassign() or state.recount()")
    empty_before = torch.bincount(before.labels, minlength=state.k) == 0              # (k,)
    reassigned = state.n_assignments - before.n_assignments
    if out.n_found != int(empty_before.sum()):
        return f"n_found={out.n_found} but the state it got had {int(empty_before.sum())} empty clusters"
    if reassigned > 0 and out.rounds != reassigned:
        return f"rounds={out.rounds} but it ran {reassigned} full re-assignments (state.reassign())"
    # reading (a), from the assignment: resolved = was empty and now holds points; left = empty now
    readings = [("state.labels", int((empty_before & (counts > 0)).sum()), int((counts == 0).sum()))]
    if reassigned == 0 and torch.equal(state.labels, before.labels):
        # reading (b), for a resolver that leaves the assignment alone (faiss, none): resolved =
        # was empty and got a new centroid position; left = was empty and its centroid did not move
        moved = (state.centroids != before.centroids).any(1)                              # (k,)
        readings.append(("the centroid moves", int((empty_before & moved).sum()),
                         int((empty_before & ~moved).sum())))
    if not any((out.n_resolved, out.n_left) == (resolved, left) for _, resolved, left in readings):
        found = " and ".join(f"from {source} n_resolved={resolved}, n_left={left}"
                             for source, resolved, left in readings)
        return (f"reports n_resolved={out.n_resolved}, n_left={out.n_left} of n_found={out.n_found}, "
                f"but a recount finds {found}")
    return None


def _recount_consolidate(subject: Subject, call: Call) -> str | None:
    out, X, w, k = call.outcome, call.data.X, call.data.weights, call.data.k
    n, d = X.shape
    for t, what in ((out.X, "X"), (out.weights, "weights")):
        problem = compare.tensor_problem(t, what)
        if problem:
            return problem
    m = out.X.shape[0]
    if out.X.ndim != 2 or out.X.shape[1] != d or not k <= m <= n:
        return f"consolidated X has shape {tuple(out.X.shape)}: need (m, {d}) with k={k} <= m <= n={n}"
    if tuple(out.weights.shape) != (m,):
        return f"weights have shape {tuple(out.weights.shape)}, not (m,) = ({m},)"
    problem = _index_problem(subject, call)
    if problem:
        return problem
    sizes = torch.bincount(out.members, minlength=m)                                      # (m,)
    if bool((sizes == 0).any()):
        return f"{int((sizes == 0).sum())} consolidated points have no member"
    mass = segment_sums(out.members, w[:, None].double(), m)[:, 0]                        # (m,)
    weighting = getattr(out, "weighting", "sum")
    if weighting not in ("sum", "single"):
        return f"weighting={weighting!r}: a Consolidation's weighting is 'sum' or 'single'"
    want = mass if weighting == "sum" else mass / sizes.double()
    if not torch.allclose(out.weights.double(), want, rtol=1e-5, atol=0.0):
        what = "summed" if weighting == "sum" else "mean"
        return (f"weights are not the {what} member weights its weighting={weighting!r} says (total "
                f"{float(out.weights.sum()):.6g}, a recount gives {float(want.sum()):.6g})")
    problem = compare.representatives_problem(X, out.X, out.members)
    if problem:
        return problem
    groups = {"n_consolidated": m, "n_points": n, "n_dense_groups": int((sizes > 1).sum()),
              "n_independent": int((sizes == 1).sum()), "n_points_merged": int(sizes[sizes > 1].sum())}
    for key, true in groups.items():
        if key in out.info and out.info[key] != true:
            return f"info[{key!r}]={out.info[key]!r} but a recount from members finds {true}"
    return None


@_check("deterministic")
def deterministic(subject: Subject) -> None:
    """two calls with the same seed give identical output, counts and info"""
    for a, b in zip(subject.calls(seed=7), subject.calls(seed=7)):
        differ = compare.differences(fingerprint(subject, a), fingerprint(subject, b))
        if differ:
            raise CheckFailure(a.label, f"two calls with seed 7 differ in {', '.join(differ)}")


def _global_states() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "random": random.getstate()}


@_check("own_generator")
def own_generator(subject: Subject) -> None:
    """draws only from the generator it is given: the global torch, numpy and random states are untouched"""
    saved = _global_states()              # put back afterwards: a check run in-process leaves no trace
    random.seed(14)
    np.random.seed(14)
    torch.manual_seed(14)
    start = _global_states()
    try:
        for call in subject.calls():
            now = _global_states()
            changed = [name for name in start if compare.differences({"s": start[name]}, {"s": now[name]})]
            if changed:
                raise CheckFailure(call.label, f"the global {', '.join(changed)} random state changed: "
                                               "draw only from the rng argument")
    finally:
        torch.set_rng_state(saved["torch"])
        np.random.set_state(saved["numpy"])
        random.setstate(saved["random"])


@_check("input_untouched")
def input_untouched(subject: Subject) -> None:
    """leaves its input points and weights (state.X, state.weights) unmodified"""
    for call in subject.calls():
        X, w = (call.state.X, call.state.weights) if call.state is not None else (call.data.X, call.data.weights)
        for now, then, what in ((X, call.before.X, "X"), (w, call.before.weights, "weights")):
            if not torch.equal(now, then):
                changed = int((now != then).sum())
                raise CheckFailure(call.label, f"{what} was modified in place ({changed} of {then.numel()} values)")


@_check("weights_as_duplicates")
def weights_as_duplicates(subject: Subject) -> None:
    """integer sample weights give the result of duplicated points (up to relabelling, or the same inertia)"""
    weighted = case("weighted")
    dup = duplicated(weighted)
    timings = [None] if subject.stage != "resolve" else ["before_update", "after_update"]
    for timing in timings:
        start = start_centroids(weighted) if timing else None
        a = subject.call(weighted, seed=3, timing=timing, centroids=start)
        b = subject.call(dup, seed=3, timing=timing, centroids=start)
        problem = compare.same_result(subject.stage, a, b, INERTIA_RTOL)
        if problem:
            raise CheckFailure(a.label, f"weights 1..4 and the same points duplicated differ: {problem}")


@_check("same_on_cuda")
def same_on_cuda(subject: Subject) -> None:
    """the same result on CUDA as on the CPU, same seed (skipped without a GPU)"""
    if not torch.cuda.is_available():
        raise CheckSkip("no CUDA device")
    compare_devices(subject, "cuda")


def compare_devices(subject: Subject, device: str) -> None:
    """Raise CheckFailure unless ``subject`` gives the same result on ``device`` as on its own.

    The CUDA check's body; its CPU twin in the tests compares the CPU with itself.
    """
    other = subject.on(device)
    timings = [None] if subject.stage != "resolve" else ["before_update", "after_update"]
    for name in CUDA_CASES:
        for timing in timings:
            a = subject.call(CASES[name], seed=5, timing=timing)
            b = other.call(CASES[name], seed=5, timing=timing)
            atol = 1e-6 * float(a.data.X.abs().max())
            differ = compare.differences(fingerprint(subject, a), fingerprint(other, b), rtol=CUDA_RTOL, atol=atol)
            if differ:
                raise CheckFailure(a.label, f"{subject.device} and {device} differ in {', '.join(differ)}")
