"""Checked values of a suite file: TOML types, ``${name}`` / ``${package:NAME}`` / ``${data:NAME}`` substitution.

``${package:NAME}`` is the folder of the installed Python package NAME (found
without importing it); ``${data:NAME}`` is ``NAME`` under the data root
(:func:`pgbench.paths.data_root`).  Either may also appear in a ``[vars]``
default.  When one cannot be resolved, the value stays unresolved and the reason
is collected, so an ``optional`` source or entry is skipped with that reason and
any other part of the suite fails with it.

The type checks and variable handling that :mod:`pgbench.suite` applies to every
table of a suite file; each failure is a :class:`SuiteError` whose text is one
line, ``SUITE_FILE: problem``.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from . import paths

_VAR = re.compile(r"\$\{([^}]*)\}")
#: the largest integer a suite may give: the store's INTEGER columns (seeds, n_iter, k) are signed 64-bit,
#: and torch's generators take seeds below 2**64
MAX_INT = 2**63 - 1
#: the longest per-case timeout, in seconds (30 days; the OS cannot wait more than ~24.8 days at once)
MAX_TIMEOUT_S = 30 * 24 * 3600.0


class SuiteError(ValueError):
    """A problem with a suite file; ``str()`` is the one line ``SUITE_FILE: problem``."""


class Parser:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, problem: str) -> SuiteError:
        return SuiteError(f"{self.path}: {' '.join(str(problem).split())}")

    def table(self, value: Any, where: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a table, got {_tname(value)}")
        if allowed is not None:
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                raise self.fail(f"unknown key '{unknown[0]}' in {where} (allowed: {', '.join(allowed)})")
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where} must be a non-empty string, got {value!r}")
        return value

    def integer(self, value: Any, where: str, minimum: int, maximum: int = MAX_INT) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"{where} must be an integer >= {minimum}, got {value!r}")
        if value > maximum:
            raise self.fail(f"{where} must be at most {maximum} (2**63 - 1, the store's largest integer), "
                            f"got {value!r}")
        return value

    def number(self, value: Any, where: str, positive: bool, maximum: float = float("inf"),
               what: str = "number") -> float:
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or value != value
        if bad or value < 0 or (positive and value == 0) or value > maximum:
            kind = "positive" if positive else "non-negative"
            raise self.fail(f"{where} must be a {kind} {what}, got {value!r}")
        return float(value)

    def timeout(self, value: Any, where: str) -> float:
        """Seconds per case: positive and finite, at most :data:`MAX_TIMEOUT_S`."""
        return self.number(value, where, True, MAX_TIMEOUT_S,
                           f"number of seconds up to {MAX_TIMEOUT_S:.0f} ({MAX_TIMEOUT_S / 86400:.0f} days)")

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"{where} must be true or false, got {value!r}")
        return value

    def seeds(self, value: Any, where: str) -> tuple[int, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(f"{where} must be a non-empty list of integers, got {value!r}")
        seeds = tuple(self.integer(s, where, 0) for s in value)
        if len(set(seeds)) != len(seeds):
            raise self.fail(f"{where} repeats a seed: {list(seeds)}")
        return seeds

    def names(self, value: Any, where: str) -> list[str]:
        if isinstance(value, str):
            return [self.string(value, where)]
        if isinstance(value, list) and value:
            return [self.string(v, where) for v in value]
        raise self.fail(f"{where} must be a name or a non-empty list of names, got {value!r}")


def _tname(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------- variables

def package_dir(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return str(list(spec.submodule_search_locations)[0])
    return str(Path(spec.origin).parent) if spec.origin else None


def resolve_variables(p: Parser, raw: Any, given: dict[str, str]) -> dict[str, str | None]:
    declared = p.table(raw, "[vars]")
    values: dict[str, str | None] = {}
    pending: set[str] = set()   # builtins that cannot resolve stay as ${...}; substitute() reports them
    for name, spec in declared.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise p.fail(f"[vars] name '{name}' must be an identifier")
        if isinstance(spec, str):
            default = spec
        else:
            spec = p.table(spec, f"[vars] {name}", ("default", "help"))
            default = spec.get("default")
            if default is not None and not isinstance(default, str):
                raise p.fail(f"[vars] {name}.default must be a string, got {default!r}")
            if not isinstance(spec.get("help", ""), str):
                raise p.fail(f"[vars] {name}.help must be a string")
        value = given.get(name, os.environ.get(f"PGBENCH_SET_{name.upper()}", default))
        values[name] = None if value is None else _VAR.sub(lambda m: _builtin(m, pending), value)
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise p.fail(f"--set {unknown[0]}: the suite declares no such variable (its [vars]: {known})")
    return values


def substitute(p: Parser, value: Any, values: dict[str, str | None], missing: set[str]) -> Any:
    """Replace ${name} / ${package:NAME} in every string; unresolvable packages go into ``missing``."""
    if isinstance(value, dict):
        return {k: substitute(p, v, values, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(p, v, values, missing) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        ref = match.group(1)
        if ref.startswith(BUILTINS):
            return _builtin(match, missing)
        if ref not in values:
            raise p.fail(f"${{{ref}}} is not declared in [vars]")
        if values[ref] is None:
            env = f"PGBENCH_SET_{ref.upper()}"
            raise p.fail(f"variable '{ref}' has no value: pass --set {ref}=VALUE (or set {env})")
        return _VAR.sub(lambda m: _builtin(m, missing), values[ref])   # a default's unresolved builtin

    return _VAR.sub(one, value)


def resolved(p: Parser, table: dict[str, Any], values: dict[str, str | None], where: str) -> dict[str, Any]:
    """``table`` with ``${...}`` replaced in every string; a reference that cannot resolve fails here
    (for the parts of a suite that cannot be optional)."""
    missing: set[str] = set()
    table = substitute(p, table, values, missing)
    if missing:
        raise p.fail(f"{where}: {sorted(missing)[0]}")
    return table


BUILTINS = ("package:", "data:")


def _builtin(match: re.Match, missing: set[str]) -> str:
    """The value of ``${package:NAME}`` / ``${data:NAME}``; other references are left as they are."""
    ref = match.group(1)
    kind, _, name = ref.partition(":")
    if kind == "package":
        folder = package_dir(name)
        if folder is None:
            missing.add(f"Python package '{name}' is not installed")
            return match.group(0)
        return folder
    if kind == "data":
        try:
            return str(paths.data_dir(name))
        except ValueError as exc:
            missing.add(str(exc))
            return match.group(0)
    return match.group(0)
