"""A suite's ``[[methods]]`` tables, parsed and bound: heuristic names, stage parameters, engine settings.

What: :func:`methods` turns the raw ``[[methods]]`` list of a suite file into
:class:`Method` s, one per combination of the listed init / resolve /
consolidate names, each with its parameters bound by the registry (defaults
filled, ranges checked, so a bad value fails at load) and named by
:func:`pgbench.naming.method_name` unless the entry gives a label.

Why apart from :mod:`pgbench.suite`: binding a method touches the registry and
the engine's signature, a concept of its own; the suite module keeps the suite
table, the sources and the assembly.
"""

from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass
from typing import Any

from . import backends, naming, registry
from .suite_values import Parser, SuiteError, resolved

STAGES = registry.STAGES
_METHOD_KEYS = ("label", "init", "resolve", "consolidate", "init_params", "resolve_params",
                "consolidate_params", "backend", "max_points_per_centroid")


@dataclass(frozen=True)
class Method:
    """One heuristic combination: names, bound per-stage params and the engine's flat params."""

    label: str
    entry: str                      # the [[methods]] entry's label, for [[cases]]
    init: str
    resolve: str
    consolidate: str | None
    params: dict[str, dict[str, Any]]   # stage -> every declared parameter (defaults filled)
    engine_params: dict[str, Any]       # only the given ones, flat, as kmeans(**params) takes them
    backend: str | None = None          # this method's assignment backend (wins over [suite] backend)
    max_points_per_centroid: int | None = None   # faiss's training subsample (None: every point)



def _reserved() -> set[str]:
    from .engine import kmeans

    return set(inspect.signature(kmeans).parameters) - {"params"}


def _stage_names(p: Parser, entry: dict, stage: str, where: str) -> list[str | None]:
    if stage == "consolidate":
        value = entry.get("consolidate", "none")
        if value == "*":
            return [None, *registry.names("consolidate")]
        return [None if n == "none" else n for n in p.names(value, f"{where} consolidate")]
    if stage not in entry:
        raise p.fail(f"{where} needs '{stage}' (a heuristic name, a list of names or \"*\")")
    value = entry[stage]
    return registry.names(stage) if value == "*" else p.names(value, f"{where} {stage}")


def _method(p: Parser, where: str, entry_label: str, names: dict[str, str | None],
            given: dict[str, dict[str, Any]], explicit_label: str | None, several: bool,
            engine: dict[str, Any]) -> Method:
    bound, flat = {}, {}
    selected = {s: registry.get(s, n) for s, n in names.items() if n is not None}
    for stage, params in given.items():
        if params and stage not in selected:
            raise p.fail(f"{where} gives {stage}_params but selects no {stage} heuristic")
    reserved = _reserved()
    for stage, h in selected.items():
        params = given.get(stage, {})
        clash = sorted(set(params) & reserved)
        if clash:
            raise p.fail(f"{where}: {stage} parameter '{clash[0]}' of '{h.name}' cannot be set from a suite "
                         f"(the engine's own argument '{clash[0]}' would take it)")
        try:
            bound[stage] = h.bind(params)
        except ValueError as exc:
            raise p.fail(f"{where}: {exc}") from None
        for key, value in params.items():
            for other, h2 in selected.items():
                if other != stage and key in h2.params and given.get(other, {}).get(key, _UNSET) != value:
                    raise p.fail(f"{where}: parameter '{key}' is declared by {stage} '{h.name}' and {other} "
                                 f"'{h2.name}'; the engine passes it to both, so give both the same value")
            flat[key] = value
    auto = naming.method_name(names["init"], names["resolve"], names["consolidate"], flat)
    label = auto if explicit_label is None else (f"{explicit_label}:{auto}" if several else explicit_label)
    return Method(label, entry_label, names["init"], names["resolve"], names["consolidate"], bound, flat, **engine)


def _engine_settings(p: Parser, entry: dict, where: str) -> dict[str, Any]:
    """A method's own engine arguments: ``backend`` and ``max_points_per_centroid``."""
    settings: dict[str, Any] = {}
    if "backend" in entry:
        backend = entry["backend"]
        if backend not in backends.BACKENDS:
            raise p.fail(f"{where} backend must be one of {', '.join(backends.BACKENDS)}, got {backend!r}")
        settings["backend"] = backend
    if "max_points_per_centroid" in entry:
        settings["max_points_per_centroid"] = p.integer(entry["max_points_per_centroid"],
                                                        f"{where} max_points_per_centroid", 1)
    return settings


_UNSET = object()


def methods(p: Parser, raw: Any, values: dict[str, str | None]) -> list[Method]:
    """The [[methods]] tables as bound :class:`Method` s: every combination of the listed stage names."""
    if not isinstance(raw, list) or not raw:
        raise p.fail("the suite needs at least one [[methods]] table")
    methods: list[Method] = []
    for i, entry in enumerate(raw, 1):
        where = f"[[methods]] #{i}"
        entry = resolved(p, p.table(entry, where, _METHOD_KEYS), values, where)
        label = p.string(entry["label"], f"{where} label") if "label" in entry else None
        where = f"[[methods]] '{label}'" if label else where
        try:
            choices = {s: _stage_names(p, entry, s, where) for s in STAGES}
            given = {s: dict(p.table(entry.get(f"{s}_params", {}), f"{where} {s}_params")) for s in STAGES}
            engine = _engine_settings(p, entry, where)
            combos = list(itertools.product(choices["init"], choices["resolve"], choices["consolidate"]))
            for init, resolve, consolidate in combos:
                names = {"init": init, "resolve": resolve, "consolidate": consolidate}
                methods.append(_method(p, where, label or f"#{i}", names, given, label, len(combos) > 1, engine))
        except ValueError as exc:  # unknown heuristic names from the registry
            raise exc if isinstance(exc, SuiteError) else p.fail(f"{where}: {exc}") from None
    labels = [m.label for m in methods]
    for m in methods:
        if labels.count(m.label) > 1:
            raise p.fail(f"two methods are both labelled '{m.label}': give the [[methods]] entries distinct labels")
    return methods
