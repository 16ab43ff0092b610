"""The runner's centre: a case (one k-means run on one data set), its id, its data and its status set.

Everything that runs cases (:mod:`pgbench.runner`, :mod:`pgbench.executors`,
:mod:`pgbench.worker`, :mod:`pgbench.claims`) imports this module and nothing of
the suite side: the suite parser (:mod:`pgbench.suite`) and the expansion that
builds cases from a suite (:mod:`pgbench.cases`) sit above it and import it, never
the other way round.  So running one case needs neither the TOML parser nor the
downstream (GLUE) code.

A case's id is the sha256 of the canonical JSON (sorted keys, no spaces) of
everything that decides its outcome: suite name, source and its bound parameters,
data set, data seed and seed, heuristic names with every bound parameter, n_iter,
device, backend, dtype, tol and k (and max_points_per_centroid, when a method sets
it): :data:`ID_FIELDS`, derived from the one declaration of the stored columns
(:mod:`pgbench.schema`), where every one of them has a column.  A source may name what of its parameters identifies its data
(:func:`pgbench.sources.id_params`: a checkpoint hashes its file's content, not its
path).  Labels, timeouts, timing ``repeats`` and library versions are not part of it, so
re-running a suite skips what is already stored (a re-run with more ``repeats``
keeps the stored cases and their timings; run into another results folder to time
them again).

:class:`Status` is declared once, in :mod:`pgbench.result` (the engine ends a run
with one of them; the runner adds ``error`` / ``timeout``), and re-exported here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from . import schema, sources
from .result import Status

__all__ = ["Case", "Expansion", "ID_FIELDS", "OPTIONAL_ID_FIELDS", "Status", "canonical_json", "clear_cache", "dataset_for",
           "load_datasets"]

#: the fields hashed into the id, always / only when set (declared with the store's columns, pgbench.schema)
ID_FIELDS = schema.ID_FIELDS
OPTIONAL_ID_FIELDS = schema.OPTIONAL_ID_FIELDS


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
    repeats: int = 1                # timing repeats (pgbench.worker); not part of the id
    primary_metric: str | None = None   # the suite's lead metric for the report; not part of the id
    case_id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.case_id:
            digest = hashlib.sha256(canonical_json(self.definition()).encode()).hexdigest()
            object.__setattr__(self, "case_id", digest)

    def definition(self) -> dict[str, Any]:
        """The fields hashed into the id (``source_params`` as :func:`pgbench.sources.id_params` gives them)."""
        fields = {name: getattr(self, name) for name in ID_FIELDS}
        fields["source_params"] = sources.id_params(self.source, self.source_params)
        for name in OPTIONAL_ID_FIELDS:     # only when set: cases without them kept their ids when they came
            if getattr(self, name) is not None:
                fields[name] = getattr(self, name)
        return fields

    @property
    def work_key(self) -> str:
        """Cases with equal work keys compute the same thing and may share one run (:mod:`pgbench.reuse`).

        The sha256 of the id's fields with the source's parameters replaced by what
        decides this data set's points (:func:`pgbench.sources.data_params`, plus its
        name and n, d), and with ``timeout`` and ``repeats`` added (they decide
        whether a run ends in ``timeout`` and what its timings are).  For a source
        that does not say what decides its points, it is the case id: the case
        shares its run with no other.  Labels still do not count: two methods of
        one suite with the same settings compute the same thing.
        """
        data = sources.data_params(self.source, self.source_params)
        if data is None:
            return self.case_id
        fields = self.definition()
        fields["source_params"] = {"data": data, "n": self.n, "d": self.d}
        fields.update(timeout=self.timeout, repeats=self.repeats)
        return hashlib.sha256(canonical_json(fields).encode()).hexdigest()

    @property
    def data_key(self) -> tuple[str, str, int]:
        """Cases sharing this key share their loaded data (one source load)."""
        return self.source, canonical_json(self.source_params), self.data_seed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Expansion:
    """The cases of a suite, in data-grouped order, and the optional sources left out."""

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
