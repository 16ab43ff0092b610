"""What runs inside a worker: one case -> one result row (and its per-iteration trace).

:func:`run_case` loads the case's data set (through the per-process cache of
:mod:`pgbench.case`), runs :func:`pgbench.kmeans`, and measures the outcome into
a row with the columns of :data:`pgbench.store.COLUMNS`.  It never raises for a
failing case: the exception becomes a row with status ``error`` and the one-line
error text.

Timing repeats: a case with ``repeats = R`` runs k-means R times on the same
data with the same seed (one data load, one warm-up).  Every ``seconds_*`` column
is its minimum over the repeats (the least disturbed measurement of that phase),
``seconds_spread`` is max - min of ``seconds_total`` (``seconds_assign_spread``,
``seconds_resolve_spread`` likewise; 0 for one repeat), and the trace is the fastest
repeat's.  Everything else must be identical across the repeats, labels and
centroids included: a run that is not (a heuristic drawing randomness from
somewhere else than the generator it is given, or a non-deterministic kernel, such
as some CUDA reductions) is stored with status ``error`` and a message naming what
differed, since its exact metrics could not be compared across runs.

:func:`worker_main` is the loop of a local worker process
(:mod:`pgbench.executors`): it receives cases over a pipe and sends rows back; it
never touches the store.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import time
from datetime import datetime, timezone
from typing import Any

import torch

from . import pq, sysinfo
from .case import Case, Status, dataset_for
from .engine import kmeans
from .metrics import centroid_index
from .result import KMeansResult
from .sources import Dataset
from .validation import error_text

log = logging.getLogger(__name__)

def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {error_text(exc)}" if str(exc).strip() else type(exc).__name__


def base_row(case: Case) -> dict[str, Any]:
    """The columns known before the case runs (identity, settings, provenance)."""
    return {
        "suite": case.suite, "case_id": case.case_id, "method": case.method, "source": case.source,
        "source_params": case.source_params, "dataset": case.dataset, "n": case.n, "d": case.d, "k": case.k,
        "init": case.init, "resolve": case.resolve, "consolidate": case.consolidate, "params": case.params,
        "seed": case.seed, "data_seed": case.data_seed, "device": case.device, "backend": case.backend,
        "dtype": case.dtype, "threads": torch.get_num_threads(), "versions": sysinfo.versions(),
        "git_commit": sysinfo.git_commit(), "n_iter_max": case.n_iter, "timeout": case.timeout,
        "max_points_per_centroid": case.max_points_per_centroid, "tol": case.tol, "repeats": case.repeats,
        "primary_metric": case.primary_metric, "work_key": case.work_key,
        "host": socket.gethostname(), "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def failed_row(case: Case, status: Status, error: str, seconds: float | None = None) -> dict[str, Any]:
    """A row for a case that produced no result (``error`` or ``timeout``)."""
    return {**base_row(case), "status": status, "error": error, "seconds_total": seconds}


def _rel_error(result: KMeansResult, ds: Dataset) -> float:
    W = pq.subvectors_to_weight(ds.X, ds.weight_shape)                      # the original weight
    W_hat = pq.reconstruct_weight(result.centroids.cpu(), result.labels.cpu(), ds.weight_shape)
    return pq.relative_error(W, W_hat)


def _centroid_index(result: KMeansResult, ds: Dataset) -> int:
    return centroid_index(result.centroids.cpu().float(), ds.true_centroids.float())


def measure(result: KMeansResult, ds: Dataset) -> dict[str, Any]:
    """The outcome columns of a finished run."""
    trace = result.trace
    sizes = result.cluster_sizes.double().cpu()                              # (k,)
    weight_source = ds.weight_shape is not None
    return {
        "layer": ds.name if weight_source or ds.layer_type else None,
        "layer_type": ds.layer_type, "backend": result.backend, "params": result.params,
        "status": result.status, "error": result.message or None,
        "n_empty_initial": result.n_empty_initial,
        "n_empty_per_iter": [s.n_empty_resolved for s in trace],
        "n_empty_assigned_per_iter": [s.n_empty_assigned for s in trace],
        "n_empty_final": result.n_empty_final, "n_empty_last_assignment": result.n_empty_last_assignment,
        "rounds_total": result.rounds_total, "rounds_per_iter": [s.rounds for s in trace],
        "resolve_distance_evals": result.resolve_distance_evals,
        "resolve_assign_passes": result.resolve_assign_passes, "n_iter": result.n_iter,
        "n_train": result.n_train, "n_points": int(result.labels.shape[0]),
        "n_consolidated_points": result.n_consolidated_points, "n_groups": result.n_groups,
        "eps_final": result.consolidate_info.get("eps_final"),
        "seconds_total": result.seconds_total,
        "seconds_assign": sum(s.seconds_assign for s in trace),
        "seconds_resolve": sum(s.seconds_resolve for s in trace),
        "seconds_update": sum(s.seconds_update for s in trace),
        "seconds_init": result.seconds_init, "seconds_consolidate": result.seconds_consolidate,
        "inertia": result.inertia,
        "rel_error": _rel_error(result, ds) if weight_source else None,
        "size_min": int(sizes.min()), "size_max": int(sizes.max()),
        "size_cv": float(sizes.std(unbiased=False) / sizes.mean()),
        "centroid_index": _centroid_index(result, ds) if ds.true_centroids is not None else None,
    }


#: the seconds_* columns that get a ``*_spread`` column beside their minimum
SPREAD = ("seconds_total", "seconds_assign", "seconds_resolve")


def _spread_column(name: str) -> str:
    return "seconds_spread" if name == "seconds_total" else f"{name}_spread"


def timing(runs: list[tuple[KMeansResult, dict[str, Any]]]) -> dict[str, Any]:
    """The seconds_* columns over timing repeats: each its minimum, and max - min for :data:`SPREAD`."""
    rows = [row for _, row in runs]
    out: dict[str, Any] = {n: min(r[n] for r in rows) for n in rows[0] if n.startswith("seconds_")}
    out.update({_spread_column(n): max(r[n] for r in rows) - out[n] for n in SPREAD})
    return out


def _same(a: Any, b: Any) -> bool:
    return a == b or (a != a and b != b)          # NaN equals NaN here


def nondeterminism(runs: list[tuple[KMeansResult, dict[str, Any]]]) -> str | None:
    """What differs between the first repeat and a later one (labels, centroids, a measured column
    other than seconds_*), or None when every repeat gave the same result."""
    first, first_row = runs[0]
    for i, (result, row) in enumerate(runs[1:], 2):
        if not torch.equal(result.labels, first.labels):
            return f"labels differ between repeat 1 and repeat {i}"
        if not torch.equal(result.centroids, first.centroids):
            return f"centroids differ between repeat 1 and repeat {i}"
        for name, value in first_row.items():
            if not name.startswith("seconds_") and not _same(value, row[name]):
                return f"{name} differs between repeat 1 ({value!r}) and repeat {i} ({row[name]!r})"
    return None


_warm: set[tuple] = set()


def _warm_up(case: Case) -> None:
    """One tiny run per (device, backend, dtype) and process, so no case pays first-call costs."""
    key = (case.device, case.backend, case.dtype)
    if key not in _warm:
        X = torch.rand(64, 2, generator=torch.Generator().manual_seed(0))
        kmeans(X, 4, init="random", resolve="none", n_iter=2, device=case.device, backend=case.backend,
               dtype=case.dtype)
        _warm.add(key)


def run_case(case: Case) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run one case; returns (row, trace rows).  Failures become an ``error`` row.

    The case's timeout (enforced by the executor) covers loading its data and a
    first-use warm-up; ``seconds_*`` cover only the k-means run.
    """
    started = time.perf_counter()
    try:
        for module in case.imports:
            importlib.import_module(module)
        _warm_up(case)
        ds = dataset_for(case)
        runs = []
        for _ in range(case.repeats):
            result = kmeans(ds.X, case.k, init=case.init, resolve=case.resolve, consolidate=case.consolidate,
                            n_iter=case.n_iter, seed=case.seed, device=case.device, backend=case.backend,
                            dtype=case.dtype, tol=case.tol, max_points_per_centroid=case.max_points_per_centroid,
                            **case.engine_params)
            runs.append((result, measure(result, ds)))
        differs = nondeterminism(runs)
        if differs:
            return failed_row(case, Status.ERROR, f"nondeterministic across {case.repeats} timing repeats "
                                                  f"with seed {case.seed}: {differs}"), []
        fastest, row = min(runs, key=lambda run: run[1]["seconds_total"])
        return {**base_row(case), **row, **timing(runs)}, fastest.trace_dicts()
    except Exception as exc:  # noqa: BLE001 - a failing case is a result, not a crash
        log.info("case %s failed: %s", case.case_id[:12], one_line(exc))
        return failed_row(case, Status.ERROR, one_line(exc), time.perf_counter() - started), []


def worker_main(conn: Any, threads: int | None, gpu: int | None = None) -> None:
    """Loop of a local worker process: receive a Case (None: stop), send back ("done", (row, trace)).

    ``gpu``: the only GPU this worker may see (set before CUDA initialises).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's business
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    if threads:
        torch.set_num_threads(threads)
    from . import registry, sources

    registry.load_all()
    sources.source_names()
    sysinfo.versions()
    sysinfo.git_commit()                           # warm caches: not part of any case's time
    try:
        conn.send(("ready", None))
    except (BrokenPipeError, OSError):             # the parent went away while this worker started (Ctrl-C)
        return
    while True:
        try:
            case = conn.recv()
        except (EOFError, OSError):                # the parent is gone
            return
        if case is None:
            return
        outcome = run_case(case)
        try:
            conn.send(("done", outcome))
        except (BrokenPipeError, OSError):
            return
