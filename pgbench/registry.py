"""Registry of interchangeable k-means heuristics.

A heuristic is a plain function registered under a *stage* and a *name*, with its
parameters declared as data (a mapping of parameter name to default value).  The
declaration drives validation (unknown parameters and wrong types are rejected
before any work), ``python -m pgbench list`` and the result columns.

Stages and the function signature each one must have:

``init``
    ``fn(X, weights, k, rng, **params) -> InitOutcome``; ``X`` is (n, d),
    ``weights`` is (n,), ``rng`` a CPU ``torch.Generator``.
``resolve``
    ``fn(state, rng, **params) -> ResolveOutcome``; runs once per Lloyd iteration,
    either right after the assignment step (``when="before_update"``, the default)
    or right after the centroid update (``when="after_update"``, faiss-style).
``consolidate``
    ``fn(X, weights, k, rng, **params) -> Consolidation``; runs once before
    initialisation and maps groups of points onto single weighted points.

First-party heuristics live in ``pgbench.heuristics`` (the checkout's ``heuristics/``), one module
each; every public module there is imported on first use, so adding a heuristic is
adding one file.  Third parties can register through the ``pgbench.heuristics``
entry-point group (each entry point names a module to import).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

STAGES = ("init", "resolve", "consolidate")
#: arguments of ``pgbench.kmeans`` itself: a heuristic parameter with one of these
#: names could never be set, so registering one is refused
RESERVED_PARAMS = frozenset({"X", "k", "init", "resolve", "consolidate", "n_iter", "seed", "device",
                             "sample_weight", "backend", "dtype", "tol"})
RESOLVE_TIMINGS = ("before_update", "after_update")


@dataclass(frozen=True)
class Heuristic:
    """One registered heuristic: its stage, name, function and declared parameters."""

    stage: str
    name: str
    func: Callable[..., Any]
    params: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    when: str = "before_update"

    def bind(self, given: dict[str, Any]) -> dict[str, Any]:
        """Return the full parameter dict: declared defaults overridden by ``given``.

        Raises ``ValueError`` for an undeclared parameter or a value whose type does
        not match the declared default's type (``None`` defaults accept numbers).
        """
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise ValueError(
                f"{self.stage} heuristic '{self.name}' takes no parameter "
                f"{', '.join(repr(u) for u in unknown)} (it takes: {known})."
            )
        bound = dict(self.params)
        for key, value in given.items():
            bound[key] = _coerce(self, key, self.params[key], value)
        return bound


def _coerce(h: Heuristic, key: str, default: Any, value: Any) -> Any:
    """Check ``value`` against the declared default's type; ints widen to floats."""
    if default is None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"parameter '{key}' of {h.stage} heuristic '{h.name}' must be a number or None, got {value!r}.")
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ValueError(
            f"parameter '{key}' of {h.stage} heuristic '{h.name}' must be "
            f"{type(default).__name__}, got {value!r}."
        )
    return value


_REGISTRY: dict[str, dict[str, Heuristic]] = {stage: {} for stage in STAGES}
_loaded = False


def register(stage: str, name: str, params: dict[str, Any] | None = None,
             summary: str = "", when: str = "before_update") -> Callable:
    """Decorator registering ``func`` as heuristic ``name`` of ``stage``."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage '{stage}' (known: {', '.join(STAGES)}).")
    if when not in RESOLVE_TIMINGS:
        raise ValueError(f"unknown resolve timing '{when}' (known: {', '.join(RESOLVE_TIMINGS)}).")

    clash = sorted(RESERVED_PARAMS & set(params or {}))
    if clash:
        raise ValueError(f"{stage} heuristic '{name}' declares parameter(s) {clash} that pgbench.kmeans "
                         "takes itself; rename them.")

    def decorate(func: Callable) -> Callable:
        if name in _REGISTRY[stage] and _REGISTRY[stage][name].func is not func:
            raise ValueError(f"{stage} heuristic '{name}' is registered twice.")
        doc = (func.__doc__ or "").strip().splitlines()
        _REGISTRY[stage][name] = Heuristic(stage, name, func, dict(params or {}),
                                           summary or (doc[0] if doc else ""), when)
        return func

    return decorate


def load_all() -> None:
    """Import every first-party heuristic module and every entry-point module once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import pgbench.heuristics as heuristics

    for info in pkgutil.iter_modules(heuristics.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"pgbench.heuristics.{info.name}")
    for ep in importlib.metadata.entry_points(group="pgbench.heuristics"):
        try:
            importlib.import_module(ep.value)
        except Exception as exc:  # a broken plugin must not hide the others
            log.warning("could not load heuristic plugin %s (%s): %s", ep.name, ep.value, exc)


def get(stage: str, name: str) -> Heuristic:
    """Return the heuristic, or raise ``ValueError`` listing the known names."""
    load_all()
    if stage not in STAGES:
        raise ValueError(f"unknown stage '{stage}' (known: {', '.join(STAGES)}).")
    try:
        return _REGISTRY[stage][name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY[stage]))
        raise ValueError(f"unknown {stage} heuristic '{name}' (known: {known}).") from None


def names(stage: str) -> list[str]:
    """Sorted names of the heuristics registered for ``stage``."""
    load_all()
    return sorted(_REGISTRY[stage])


def catalogue() -> dict[str, list[str]]:
    """``{"init": [...], "resolve": [...], "consolidate": [...]}``."""
    return {stage: names(stage) for stage in STAGES}
