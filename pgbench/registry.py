"""Registry of interchangeable k-means heuristics.

A heuristic is a plain function registered under a *stage* and a *name*, with
each parameter declared once (:mod:`pgbench.params`): its default, the values it
allows and a one-line help.  The declaration drives everything else: ``bind``
rejects unknown parameters and out-of-range values (one-line ``ValueError``)
when a suite loads, in ``validate`` and in ``pgbench.kmeans``, before any work;
``python -m pgbench list`` shows it; the defaults fill the result's ``params``.

Adding a heuristic (or a parameter to one)::

    from pgbench import register
    from pgbench.params import Choice, Int, Real
    from pgbench.state import ResolveOutcome

    @register("resolve", "mine", params=[
        Int("max_rounds", 10, low=1, help="resolution rounds per iteration"),
        Real("jitter", 1e-6, low=0, help="noise scale, in the units of X"),
        Choice("order", "size", ("size", "index"), help="which empty cluster goes first"),
    ], summary="one line for `pgbench list`")
    def resolve_mine(state, rng, *, max_rounds, jitter, order):
        ...
        return ResolveOutcome(...)

Rules, checked when the decorator runs (a plugin that breaks one fails to load):

* the parameters are keyword-only (after ``*``) and have NO default in the
  signature: the declaration holds the default, so it is never written twice;
* their names are exactly the declared names, and none is an argument of
  ``pgbench.kmeans`` itself (``RESERVED_PARAMS``);
* every default passes its own constraint.

Range checks belong in the declaration, not in the hook: the hook may assume
its parameters are valid.  Checks that involve several parameters or the data
(``k``, ``n``) stay in the hook, with a one-line ``ValueError``.  A plain
``params={"name": default}`` dict is still accepted (the type comes from the
default, floats must be finite, no range), which is what data sources use.

Stages and the function signature each one must have:

``init``
    ``fn(X, weights, k, rng, *, <params>) -> InitOutcome``; ``X`` is (n, d),
    ``weights`` is (n,), ``rng`` a CPU ``torch.Generator``.
``resolve``
    ``fn(state, rng, *, <params>) -> ResolveOutcome``; runs once per Lloyd iteration,
    either right after the assignment step (``when="before_update"``, the default)
    or right after the centroid update (``when="after_update"``, faiss-style).
``consolidate``
    ``fn(X, weights, k, rng, *, <params>) -> Consolidation``; runs once before
    initialisation and maps groups of points onto single weighted points.

First-party heuristics live in ``pgbench.heuristics`` (the checkout's ``heuristics/``), one module
each; every public module there is imported on first use, so adding a heuristic is
adding one file.  Third parties can register through the ``pgbench.heuristics``
entry-point group (each entry point names a module to import).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

from .params import Param, declare

log = logging.getLogger(__name__)

STAGES = ("init", "resolve", "consolidate")
#: arguments of ``pgbench.kmeans`` itself: a heuristic parameter with one of these
#: names could never be set, so registering one is refused
RESERVED_PARAMS = frozenset({"X", "k", "init", "resolve", "consolidate", "n_iter", "seed", "device",
                             "sample_weight", "backend", "dtype", "tol", "max_points_per_centroid"})
RESOLVE_TIMINGS = ("before_update", "after_update")
#: positional arguments every hook of a stage takes before its keyword-only parameters
POSITIONAL = {"init": 4, "resolve": 2, "consolidate": 4}


@dataclass(frozen=True)
class Heuristic:
    """One registered heuristic: its stage, name, function and declared parameters.

    ``params`` maps each parameter name to its :class:`~pgbench.params.Param`
    (a ``{name: default}`` dict given here is turned into declarations).
    """

    stage: str
    name: str
    func: Callable[..., Any]
    params: dict[str, Param] = field(default_factory=dict)
    summary: str = ""
    when: str = "before_update"

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", declare(self.params))

    @property
    def defaults(self) -> dict[str, Any]:
        """``{name: default}`` of every declared parameter."""
        return {name: p.default for name, p in self.params.items()}

    def __call__(self, *args: Any, **params: Any) -> Any:
        """Run the hook with ``params`` bound (checked, defaults filled): ``h(state, rng, eps=0.1)``."""
        return self.func(*args, **self.bind(params))

    def bind(self, given: dict[str, Any]) -> dict[str, Any]:
        """Return the full parameter dict: declared defaults overridden by ``given``.

        Raises a one-line ``ValueError`` naming the heuristic, the parameter, the
        value and what is allowed, for an undeclared parameter or a value outside
        its declaration (wrong type, out of range, NaN/inf, unknown option).
        """
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise ValueError(
                f"{self.stage} heuristic '{self.name}' takes no parameter "
                f"{', '.join(repr(u) for u in unknown)} (it takes: {known})."
            )
        bound = self.defaults
        for key, value in given.items():
            try:
                bound[key] = self.params[key].check(value)
            except ValueError as exc:
                raise ValueError(f"parameter '{key}' of {self.stage} heuristic '{self.name}' {exc}.") from None
        return bound


def check_signature(stage: str, name: str, func: Callable, params: dict[str, Param]) -> None:
    """Raise ``ValueError`` unless ``func`` takes the stage's positional arguments, then
    exactly the declared parameters as keyword-only arguments without defaults."""
    where = f"{stage} heuristic '{name}'"
    sig = inspect.signature(func)
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keyword = {p.name: p for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY}
    if len(positional) != POSITIONAL[stage] or any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                                                   for p in sig.parameters.values()):
        raise ValueError(f"{where}: the function must take {POSITIONAL[stage]} positional arguments, then "
                         f"its parameters after '*', got {sig}.")
    if set(keyword) != set(params):
        raise ValueError(f"{where}: keyword-only arguments {sorted(keyword)} differ from the declared "
                         f"parameters {sorted(params)}.")
    defaulted = sorted(n for n, p in keyword.items() if p.default is not p.empty)
    if defaulted:
        raise ValueError(f"{where}: parameter(s) {defaulted} have a default in the signature; "
                         "the declaration holds the default.")


_REGISTRY: dict[str, dict[str, Heuristic]] = {stage: {} for stage in STAGES}
_loaded = False


def register(stage: str, name: str, params: Any = None,
             summary: str = "", when: str = "before_update") -> Callable:
    """Decorator registering ``func`` as heuristic ``name`` of ``stage``.

    ``params`` is a list of :mod:`pgbench.params` declarations (or a plain
    ``{name: default}`` dict); see the module docstring for the rules.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage '{stage}' (known: {', '.join(STAGES)}).")
    if when not in RESOLVE_TIMINGS:
        raise ValueError(f"unknown resolve timing '{when}' (known: {', '.join(RESOLVE_TIMINGS)}).")
    declared = declare(params)
    clash = sorted(RESERVED_PARAMS & set(declared))
    if clash:
        raise ValueError(f"{stage} heuristic '{name}' declares parameter(s) {clash} that pgbench.kmeans "
                         "takes itself; rename them.")

    def decorate(func: Callable) -> Callable:
        if name in _REGISTRY[stage] and _REGISTRY[stage][name].func is not func:
            raise ValueError(f"{stage} heuristic '{name}' is registered twice.")
        check_signature(stage, name, func, declared)
        doc = (func.__doc__ or "").strip().splitlines()
        _REGISTRY[stage][name] = Heuristic(stage, name, func, declared, summary or (doc[0] if doc else ""), when)
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


def declarations() -> dict[str, list[dict[str, Any]]]:
    """Per stage, every heuristic with its summary, timing and declared parameters (JSON-able)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for stage in STAGES:
        out[stage] = [{"name": h.name, "summary": h.summary, "when": h.when,
                       "params": [p.describe() for p in h.params.values()]}
                      for h in (get(stage, name) for name in names(stage))]
    return out
