"""Data sources: registered, parameterised producers of data sets to cluster.

A source is a function registered with :func:`register_source` under a name, with
its parameters declared as data (name -> default).  Called as
``fn(seed=..., **params)`` it yields :class:`Dataset` objects, one per thing to
cluster (a synthetic set, a benchmark file, one layer of a checkpoint).  Sources
are discovered like heuristics: every public module of this package is imported
on first use, so adding a source is adding one file here.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch

from ..registry import Heuristic
from ..validation import as_seed


@dataclass
class Dataset:
    """One set of points to cluster, with what the metrics need.

    name : short identifier, unique within its source (a file stem, a layer name)
    X : Tensor (n, d) float32, the points (PQ sub-vectors for weight sources)
    k : the number of centroids this set calls for (ground-truth count for
        benchmark files, the preset's count for layers), or None
    layer_type : "embedding", "attn_q", "attn_k", "attn_v", "attn_out", "fc1",
        "fc2" for weight sources, else None
    true_centroids : Tensor (k_true, d) for sets with ground truth, else None
    weight_shape : the original weight's shape for weight sources (to rebuild
        W_hat and compute ||W - W_hat|| / ||W||), else None
    block_size : PQ block size for weight sources, else None
    meta : anything else worth storing (source file, model name, ...)
    """

    name: str
    X: torch.Tensor
    k: int | None = None
    layer_type: str | None = None
    true_centroids: torch.Tensor | None = None
    weight_shape: tuple[int, ...] | None = None
    block_size: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


_SOURCES: dict[str, Heuristic] = {}
_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {}
_ID_PARAMS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
_DATA_PARAMS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
_loaded = False


def register_source(name: str, params: dict[str, Any] | None = None, summary: str = "",
                    check: Callable[[dict[str, Any]], None] | None = None,
                    id_params: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                    data_params: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Callable:
    """Decorator registering ``fn(seed, **params) -> Iterator[Dataset]`` as source ``name``.

    ``check(bound_params)`` raises ValueError (one line) for values a type check
    cannot catch; suites call it when they are loaded (:func:`check_params`).
    ``id_params(bound_params)`` gives what a case id hashes instead of the bound
    parameters (:func:`id_params`), so a source can add a parameter without changing
    older ids, or replace a machine-specific value by a portable one.
    ``data_params(bound_params)`` gives what, beside a data set's name and shape
    (n, d), decides its points (:func:`data_params`): a source whose parameters
    also choose things that do not change the points (a checkpoint's preset
    changes only the block size and k) lets cases that differ only there share one
    computation (:mod:`pgbench.reuse`).
    """

    def decorate(func: Callable) -> Callable:
        if name in _SOURCES and _SOURCES[name].func is not func:
            raise ValueError(f"data source '{name}' is registered twice.")
        doc = (func.__doc__ or "").strip().splitlines()
        _SOURCES[name] = Heuristic("source", name, func, dict(params or {}), summary or (doc[0] if doc else ""))
        for hooks, hook in ((_CHECKS, check), (_ID_PARAMS, id_params), (_DATA_PARAMS, data_params)):
            if hook is not None:
                hooks[name] = hook
        return func

    return decorate


def check_params(name: str, bound: dict[str, Any]) -> None:
    """Run source ``name``'s own check on its bound parameters (ValueError, one line)."""
    get_source(name)
    if name in _CHECKS:
        _CHECKS[name](bound)


def id_params(name: str, bound: dict[str, Any]) -> dict[str, Any]:
    """The parameters of source ``name`` that a case id hashes (the bound ones unless it says otherwise)."""
    get_source(name)
    return _ID_PARAMS[name](bound) if name in _ID_PARAMS else bound


def data_params(name: str, bound: dict[str, Any]) -> dict[str, Any] | None:
    """What of source ``name``'s bound parameters decides a data set's points, given its name and (n, d);
    None when the source does not say (then only identical parameters mean identical data)."""
    get_source(name)
    return _DATA_PARAMS[name](bound) if name in _DATA_PARAMS else None


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def get_source(name: str) -> Heuristic:
    """The registered source, or ValueError listing the known ones."""
    _load()
    try:
        return _SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown data source '{name}' (known: {', '.join(sorted(_SOURCES))}).") from None


def source_names() -> list[str]:
    _load()
    return sorted(_SOURCES)


def load(name: str, seed: int = 0, **params: Any) -> Iterator[Dataset]:
    """Validate ``params`` against the source's declaration and yield its data sets."""
    source = get_source(name)
    bound = source.bind(params)
    try:
        seed = as_seed(seed)
    except ValueError as exc:
        raise ValueError(f"data source '{name}': {exc}") from None
    return iter(source.func(seed=seed, **bound))
