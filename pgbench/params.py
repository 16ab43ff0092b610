"""Parameter declarations: each parameter declared once, with its default, allowed values and help.

A heuristic (or data source) lists its parameters as declarations; the registry
checks every value given against them when parameters are bound (suite loading,
``validate``, ``pgbench.kmeans``), before any work, and ``python -m pgbench list``
shows them.  In the spirit of scikit-learn's ``Interval`` / ``StrOptions``::

    Int("max_passes", 15, low=0, help="passes of Algorithm 2 per iteration")
    Real("c_sd", 0.8, low=0, high=1, closed="neither", help="eps shrink factor of Eq. 2")
    Real("dwc_eps", None, low=0, none=True, help="initial eps; None: automatic")
    Choice("dwc_weighting", "single", ("single", "sum"), help="weight of a dense group's representative")
    Flag("truth", True, help="yield the true centres")

* ``Int`` takes Python / numpy integers (never ``bool``) and always fits in a
  signed 64-bit integer (torch, faiss and SQLite all take int64).
* ``Real`` takes ints and floats (never ``bool``), returns a ``float``, and is
  always finite: NaN and infinities are rejected whatever the bounds.
  ``closed`` says which bounds are included: "both" (default), "left", "right",
  "neither".
* ``none=True`` also accepts ``None`` (the default may then be ``None``).
* :func:`infer` turns a bare default into a declaration from its type (the
  simple ``{name: default}`` form that data sources use): bool -> Flag,
  int -> Int, float -> finite Real, None -> int or float or None, anything else
  -> an instance of that type.

:meth:`Param.check` returns the value as the heuristic will get it, or raises
``ValueError("must be <allowed>, got <value>")``; the registry prefixes the
parameter and its owner.  :meth:`Param.allowed` is the same text ``list`` shows.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import KW_ONLY, dataclass
from typing import Any

INT64_MAX = 2**63 - 1
CLOSED = ("both", "left", "right", "neither")


@dataclass(frozen=True)
class Param:
    """A declared parameter: ``name``, ``default``, one-line ``help``, whether ``None`` is allowed."""

    name: str
    default: Any
    _: KW_ONLY
    help: str = ""
    none: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"parameter name {self.name!r} is not a Python identifier.")
        try:
            self.check(self.default)
        except ValueError as exc:
            raise ValueError(f"the default of parameter '{self.name}' {exc}.") from None

    def check(self, value: Any) -> Any:
        """``value`` as the heuristic gets it, or ``ValueError("must be ..., got ...")``."""
        if value is None and self.none:
            return None
        ok, out = self._accept(value)
        if not ok:
            raise ValueError(f"must be {self.allowed()}, got {value!r}")
        return out

    def allowed(self) -> str:
        """What the parameter accepts, e.g. ``int >= 1 or None``."""
        return self._kind() + (" or None" if self.none else "")

    def describe(self) -> dict[str, Any]:
        """A JSON-able record: name, default, allowed, help."""
        return {"name": self.name, "default": self.default, "allowed": self.allowed(), "help": self.help}

    def _accept(self, value: Any) -> tuple[bool, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _kind(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounds(low: Any, high: Any, closed: str) -> str:
    """`` >= 0``, `` in (0, 1)``, `` <= 5`` or ``""``."""
    if low is not None and high is not None:
        left = "[" if closed in ("both", "left") else "("
        right = "]" if closed in ("both", "right") else ")"
        return f" in {left}{low}, {high}{right}"
    if low is not None:
        return f" {'>=' if closed in ('both', 'left') else '>'} {low}"
    if high is not None:
        return f" {'<=' if closed in ('both', 'right') else '<'} {high}"
    return ""


def _within(value: float, low: Any, high: Any, closed: str) -> bool:
    if low is not None and (value < low or (value == low and closed in ("right", "neither"))):
        return False
    return not (high is not None and (value > high or (value == high and closed in ("left", "neither"))))


@dataclass(frozen=True)
class Int(Param):
    """An integer in [low, high] (either bound may be None), always within int64."""

    _: KW_ONLY
    low: int | None = None
    high: int | None = None

    def check(self, value: Any) -> Any:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(int(value)) > INT64_MAX:
            raise ValueError(f"must be {self.allowed()} and fit in 64 bits, got {value!r}")
        return super().check(value)

    def _accept(self, value: Any) -> tuple[bool, Any]:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            return False, value
        value = int(value)
        return _within(value, self.low, self.high, "both"), value

    def _kind(self) -> str:
        return "int" + _bounds(self.low, self.high, "both")


@dataclass(frozen=True)
class Real(Param):
    """A finite float between ``low`` and ``high``; ``closed`` says which bounds are included."""

    _: KW_ONLY
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def __post_init__(self) -> None:
        if self.closed not in CLOSED:
            raise ValueError(f"closed must be one of {', '.join(CLOSED)}, got {self.closed!r}.")
        super().__post_init__()

    def _accept(self, value: Any) -> tuple[bool, Any]:
        if not _is_number(value):
            return False, value
        value = float(value)
        return math.isfinite(value) and _within(value, self.low, self.high, self.closed), value

    def _kind(self) -> str:
        return "finite float" + _bounds(self.low, self.high, self.closed)


@dataclass(frozen=True)
class Choice(Param):
    """One of a fixed set of strings."""

    options: tuple[str, ...] = ()

    def _accept(self, value: Any) -> tuple[bool, Any]:
        return isinstance(value, str) and value in self.options, value

    def _kind(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


@dataclass(frozen=True)
class Flag(Param):
    """``True`` or ``False`` (never a number)."""

    def _accept(self, value: Any) -> tuple[bool, Any]:
        return isinstance(value, bool), value

    def _kind(self) -> str:
        return "bool"


@dataclass(frozen=True)
class Typed(Param):
    """Any instance of ``types`` (``bool`` only when listed): strings, lists, tables."""

    _: KW_ONLY
    types: tuple[type, ...] = (str,)

    def _accept(self, value: Any) -> tuple[bool, Any]:
        if isinstance(value, bool) and bool not in self.types:
            return False, value
        return isinstance(value, self.types), value

    def _kind(self) -> str:
        return " or ".join(t.__name__ for t in self.types)


def infer(name: str, default: Any) -> Param:
    """The declaration a bare ``{name: default}`` entry stands for (see the module docstring)."""
    if isinstance(default, bool):
        return Flag(name, default)
    if isinstance(default, int):
        return Int(name, default)
    if isinstance(default, float):
        return Real(name, default)
    if default is None:
        return Typed(name, None, types=(int, float), none=True)
    return Typed(name, default, types=(type(default),))


def declare(params: Any) -> dict[str, Param]:
    """``{name: Param}`` from a sequence of declarations or a ``{name: default}`` dict (None: none).

    A dict that already maps names to their declarations is returned as it is.
    """
    if params is None:
        return {}
    if isinstance(params, dict):
        return {name: value if isinstance(value, Param) and value.name == name else infer(name, value)
                for name, value in params.items()}
    out: dict[str, Param] = {}
    for p in params:
        if not isinstance(p, Param):
            raise ValueError(f"a parameter declaration must be Int, Real, Choice, Flag or Typed, got {p!r}.")
        if p.name in out:
            raise ValueError(f"parameter '{p.name}' is declared twice.")
        out[p.name] = p
    return out
