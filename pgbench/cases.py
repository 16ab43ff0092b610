"""Cases: one k-means run on one data set, expanded from a suite, with a content-hash id.

:func:`expand` crosses a :class:`~pgbench.suite.Suite`'s sources, seeds and
methods (or follows its ``[[cases]]`` list) and loads each source once per data
seed to learn which data sets it yields (a checkpoint yields one per layer), their
shape and their ``k``.  No k-means runs here, but data is loaded, so every source
problem (a missing file, a regex that matches nothing, ``k > n``) is reported as a
:class:`~pgbench.suite.SuiteError` before the first case starts.

A case's id is the sha256 of the canonical JSON (sorted keys, no spaces) of
everything that decides its outcome: suite name, source and its bound parameters,
data set, data seed and seed, heuristic names with every bound parameter, n_iter,
device, backend, dtype, tol and k (and max_points_per_centroid, when a method sets
it).  Labels, timeouts and library versions are not part of it, so re-running a
suite skips what is already stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from . import sources
from .suite import Source, Suite, SuiteError
from .validation import error_text

log = logging.getLogger(__name__)

ID_FIELDS = ("suite", "source", "source_params", "dataset", "data_seed", "seed", "init", "resolve",
             "consolidate", "params", "n_iter", "device", "backend", "dtype", "tol", "k")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


@dataclass(frozen=True, eq=False)
class Case:
    """Everything one run needs; plain data, picklable, trusted (validated by the suite)."""

    suite: str
    method: str
    source: str
    source_label: str
    source_params: dict[str, Any]
    dataset: str
    data_seed: int
    seed: int
    init: str
    resolve: str
    consolidate: str | None
    params: dict[str, dict[str, Any]]
    engine_params: dict[str, Any]
    n_iter: int
    device: str
    backend: str | None
    dtype: str
    tol: float | None
    k: int
    timeout: float
    n: int
    d: int
    imports: tuple[str, ...] = ()
    max_points_per_centroid: int | None = None
    case_id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.case_id:
            digest = hashlib.sha256(canonical_json(self.definition()).encode()).hexdigest()
            object.__setattr__(self, "case_id", digest)

    def definition(self) -> dict[str, Any]:
        """The fields hashed into the id (``source_params`` as :func:`pgbench.sources.id_params` gives them)."""
        fields = {name: getattr(self, name) for name in ID_FIELDS}
        fields["source_params"] = sources.id_params(self.source, self.source_params)
        if self.max_points_per_centroid is not None:   # only when set: every other case keeps its id
            fields["max_points_per_centroid"] = self.max_points_per_centroid
        return fields

    @property
    def data_key(self) -> tuple[str, str, int]:
        """Cases sharing this key share their loaded data (one source load)."""
        return self.source, canonical_json(self.source_params), self.data_seed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Expansion:
    cases: list[Case]
    skipped: list[tuple[str, str]]     # (source label, why) for optional sources left out


# --------------------------------------------------------------------- data cache

_cache: dict[tuple, dict[str, sources.Dataset]] = {}


def load_datasets(source: str, params: dict[str, Any], data_seed: int) -> dict[str, sources.Dataset]:
    """The data sets a source yields, by name; the last load is kept (one per process)."""
    key = (source, canonical_json(params), data_seed)
    if key not in _cache:
        _cache.clear()   # free the previous source's data first
        loaded: dict[str, sources.Dataset] = {}
        for ds in sources.load(source, seed=data_seed, **params):
            if ds.name in loaded:
                raise ValueError(f"data source '{source}' yields two data sets named '{ds.name}'.")
            loaded[ds.name] = ds
        _cache[key] = loaded
    return _cache[key]


def dataset_for(case: Case) -> sources.Dataset:
    """The data set a case clusters (loaded through the per-process cache)."""
    loaded = load_datasets(case.source, case.source_params, case.data_seed)
    try:
        return loaded[case.dataset]
    except KeyError:
        raise ValueError(f"data source '{case.source}' no longer yields a data set named '{case.dataset}'.") from None


def clear_cache() -> None:
    _cache.clear()


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
                            max_points_per_centroid=m.max_points_per_centroid)
                if case.case_id in seen:
                    other = seen[case.case_id]
                    raise SuiteError(f"{suite.path}: method '{m.label}' on '{source.label}' data set '{name}' "
                                     f"seed {seed} duplicates method '{other.method}' on '{other.source_label}'")
                seen[case.case_id] = case
                cases.append(case)
    return Expansion(cases, sorted(skipped.items()))
