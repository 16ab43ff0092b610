"""Expanding a suite into cases: the suite side's last step, above the runner's centre.

:func:`expand` crosses a :class:`~pgbench.suite.Suite`'s sources, seeds and
methods (or follows its ``[[cases]]`` list) and loads each source once per data
seed to learn which data sets it yields (a checkpoint yields one per layer), their
shape and their ``k``.  No k-means runs here, but data is loaded, so every source
problem (a missing file, a regex that matches nothing, ``k > n``) is reported as a
:class:`~pgbench.suite.SuiteError` before the first case starts.

The cases themselves, their ids and the data cache live in :mod:`pgbench.case`,
which the runner, executors and workers import without this module (nor the suite
parser it needs).
"""

from __future__ import annotations

import logging
from typing import Iterable

from .case import Case, Expansion, load_datasets
from .suite import Source, Suite, SuiteError
from .validation import error_text

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------- expansion

def _shapes(suite: Suite, source: Source, data_seed: int) -> list[tuple[str, int, int, int | None]] | str:
    """(name, n, d, k) per data set, or the reason an optional source is skipped."""
    if source.unavailable:
        return source.unavailable
    try:
        loaded = load_datasets(source.name, source.params, data_seed)
    except Exception as exc:  # noqa: BLE001 - any source failure is a suite problem, reported in one line
        if source.optional:
            return error_text(exc)
        raise SuiteError(f"{suite.path}: [[sources]] '{source.label}': {error_text(exc)}") from None
    if not loaded:
        raise SuiteError(f"{suite.path}: [[sources]] '{source.label}' yields no data set")
    return [(name, int(ds.X.shape[0]), int(ds.X.shape[1]), ds.k) for name, ds in loaded.items()]


def _combinations(suite: Suite) -> Iterable[tuple[Source, int, list]]:
    """(source, seed, [methods]) in source-major order, so data loads once per seed."""
    methods = {m.label: m for m in suite.methods}
    if suite.pairs is None:
        for source in suite.sources:
            for seed in source.seeds or suite.seeds:
                yield source, seed, list(suite.methods)
        return
    by_source: dict[str, dict[int, list]] = {}
    for m_label, s_label, seeds in suite.pairs:
        source = next(s for s in suite.sources if s.label == s_label)
        for seed in seeds or source.seeds or suite.seeds:
            chosen = by_source.setdefault(s_label, {}).setdefault(seed, [])
            if methods[m_label] not in chosen:
                chosen.append(methods[m_label])
    for source in suite.sources:
        for seed, chosen in by_source.get(source.label, {}).items():
            yield source, seed, chosen


def expand(suite: Suite) -> Expansion:
    """All cases of a suite, in data-grouped order; raises SuiteError before anything runs."""
    cases: list[Case] = []
    skipped: dict[str, str] = {}
    seen: dict[str, Case] = {}
    for source, seed, methods in _combinations(suite):
        if source.label in skipped:
            continue
        data_seed = source.data_seed if source.data_seed is not None else seed
        shapes = _shapes(suite, source, data_seed)
        if isinstance(shapes, str):
            skipped[source.label] = shapes
            log.warning("%s: skipping optional source '%s': %s", suite.path, source.label, shapes)
            continue
        for name, n, d, own_k in shapes:
            k = source.k or suite.k or own_k
            if k is None:
                raise SuiteError(f"{suite.path}: [[sources]] '{source.label}': data set '{name}' has no k; "
                                 "set k in the source entry or in [suite]")
            if k > n:
                raise SuiteError(f"{suite.path}: [[sources]] '{source.label}': data set '{name}' has n={n} points, "
                                 f"fewer than k={k}")
            for m in methods:
                case = Case(suite=suite.name, method=m.label, source=source.name, source_label=source.label,
                            source_params=source.params, dataset=name, data_seed=data_seed, seed=seed,
                            init=m.init, resolve=m.resolve, consolidate=m.consolidate, params=m.params,
                            engine_params=m.engine_params, n_iter=suite.n_iter, device=suite.device,
                            backend=m.backend or suite.backend, dtype=suite.dtype, tol=suite.tol, k=k,
                            timeout=source.timeout or suite.timeout, n=n, d=d, imports=suite.imports,
                            max_points_per_centroid=m.max_points_per_centroid, repeats=suite.repeats,
                            primary_metric=suite.primary_metric)
                if case.case_id in seen:
                    other = seen[case.case_id]
                    raise SuiteError(f"{suite.path}: method '{m.label}' on '{source.label}' data set '{name}' "
                                     f"seed {seed} duplicates method '{other.method}' on '{other.source_label}'")
                seen[case.case_id] = case
                cases.append(case)
    return Expansion(cases, sorted(skipped.items()))
