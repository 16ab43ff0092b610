"""pgbench.testing: a conformance battery for k-means heuristics (built-in or plugin).

::

    from pgbench.testing import check_heuristic
    check_heuristic("resolve", "mine", min_size=2)      # raises HeuristicCheckError, or returns

    # one pytest test per (heuristic, check), as scikit-learn's helper of that name:
    from pgbench.testing import parametrize_with_checks

    @parametrize_with_checks(["resolve:mine", ("init", "mine", {"m": 3})])
    def test_mine(heuristic, check):
        check(heuristic)

    # or from the command line (exit status 1 on a failure, 2 on bad input):
    #   python -m pgbench check mypackage.mine:resolve:mine

The checks (:data:`CHECKS`, each on tiny, mostly degenerate data sets listed in
:mod:`pgbench.testing.data`): ``bounded``, ``finite``, ``labels_in_range``,
``honest_counts``, ``deterministic``, ``own_generator``, ``input_untouched``,
``weights_as_duplicates``, ``same_on_cuda``.  Each runs in its own process with a
time limit per heuristic call (:mod:`pgbench.testing.isolation`).

A heuristic that fails a check by design declares it, with the reason, as
scikit-learn's estimators do through tags::

    @expected_failures(weights_as_duplicates="samples without replacement, by weight")
    @register("init", "mine")
    def init_mine(X, weights, k, rng): ...

An expected failure that fails is reported ``xfail``; one that passes is an
error (``xpass``: remove the declaration), so a declaration never goes stale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Iterator

from .. import registry
from .checks import CHECKS, checks_for
from .isolation import Task, Verdict, run_here, run_isolated

__all__ = ["check_heuristic", "parametrize_with_checks", "expected_failures", "HeuristicCheckError",
           "CHECKS", "checks_for", "builtin_heuristics", "Target", "CheckResult", "prepare", "run_target",
           "DEFAULT_TIME_LIMIT"]

#: seconds one heuristic call may take on the battery's tiny data sets before it counts as never returning
DEFAULT_TIME_LIMIT = 20.0
_DECLARED = "pgbench_expected_failures"      # the function attribute expected_failures sets


class HeuristicCheckError(AssertionError):
    """A check failed; the first line of the message names the check and the data set."""

    def __init__(self, message: str, result: "CheckResult | None" = None):
        super().__init__(message)
        self.result = result


def expected_failures(**reasons: str) -> Callable:
    """Decorator declaring checks a heuristic fails by design: ``check_name="why"``.

    Put it above or below ``@register``; it only sets an attribute on the function.
    """
    unknown = sorted(set(reasons) - set(CHECKS))
    if unknown:
        raise ValueError(f"expected_failures names unknown check(s) {', '.join(unknown)} "
                         f"(known: {', '.join(CHECKS)}).")
    empty = [name for name, why in reasons.items() if not isinstance(why, str) or not why.strip()]
    if empty:
        raise ValueError(f"expected_failures needs a reason for {', '.join(empty)}.")

    def declare(func: Callable) -> Callable:
        setattr(func, _DECLARED, {**getattr(func, _DECLARED, {}), **reasons})
        return func
    return declare


@dataclass(frozen=True)
class Target:
    """A heuristic to check: stage, name, bound parameters, the checks to run and its declared failures."""

    stage: str
    name: str
    params: dict[str, Any]
    given: dict[str, Any]
    checks: tuple[str, ...]
    expected: dict[str, str]
    modules: tuple[str, ...]

    def __str__(self) -> str:
        shown = ",".join(f"{k}={v!r}" for k, v in self.given.items())
        return f"{self.stage}:{self.name}" + (f"[{shown}]" if shown else "")


@dataclass
class CheckResult:
    """One check's result: status pass / fail / xfail / xpass / skip."""

    target: Target
    check: str
    status: str
    dataset: str = ""
    detail: str = ""
    reason: str = ""          # the declared reason (xfail, xpass)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "xpass")

    def message(self) -> str:
        """A message whose first line names the check and the data set."""
        who = f"{self.target.stage} heuristic '{self.target.name}'"
        if self.status == "xpass":
            return (f"check '{self.check}' passed on every data set for {who}, which declares it an expected "
                    f"failure ({self.reason}): remove the declaration")
        return f"check '{self.check}' failed on data set '{self.dataset}' for {who}: {self.detail}"


def prepare(stage: str, name: str, checks: Iterable[str] | None = None, modules: Iterable[str] = (),
            **params: Any) -> Target:
    """Validate everything about one heuristic to check, before any work.

    Raises ``ValueError`` for an unknown stage, name, parameter or check name.
    ``checks`` that do not apply to the stage are left out; none left is an error.
    """
    h = registry.get(stage, name)
    bound = h.bind(params)
    wanted = list(CHECKS) if checks is None else list(checks)
    unknown = sorted(set(wanted) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)} (known: {', '.join(CHECKS)}).")
    chosen = tuple(c for c in checks_for(stage) if c in wanted)
    if not chosen:
        raise ValueError(f"none of the checks {', '.join(wanted)} applies to {stage} heuristics "
                         f"(they get: {', '.join(checks_for(stage))}).")
    expected = dict(getattr(h.func, _DECLARED, {}))
    module = getattr(h.func, "__module__", "") or ""
    own = () if module.startswith("pgbench.") or module in ("__main__", "__mp_main__") else (module,)
    return Target(stage, name, bound, dict(params), chosen, expected, tuple(dict.fromkeys((*modules, *own))))


def run_target(target: Target, time_limit: float = DEFAULT_TIME_LIMIT, isolate: bool = True,
               device: str = "cpu") -> Iterator[CheckResult]:
    """Run the target's checks one by one, yielding each result (expected failures applied).

    Once a check hits the time limit, the target's remaining checks are skipped.
    """
    if not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}.")
    hung = ""
    for check in target.checks:
        if hung:   # the heuristic never returned once: each further check would only wait as long
            yield CheckResult(target, check, "skip", detail=f"not run: check '{hung}' hit the time limit")
            continue
        task = Task(target.stage, target.name, check, target.params, target.modules, device)
        verdict: Verdict = run_isolated(task, time_limit) if isolate else run_here(task)
        hung = check if verdict.timed_out else ""
        status, reason = verdict.status, target.expected.get(check, "")
        if reason and status in ("pass", "fail"):
            status = "xpass" if status == "pass" else "xfail"
        yield CheckResult(target, check, status, verdict.dataset, verdict.detail, reason, verdict.seconds)


def check_heuristic(stage: str, name: str, *, checks: Iterable[str] | None = None,
                    time_limit: float = DEFAULT_TIME_LIMIT, isolate: bool = True, **params: Any) -> None:
    """Run the battery on a registered heuristic; raise :class:`HeuristicCheckError` on the first failure.

    ``params`` are the heuristic's parameters (validated like ``pgbench.kmeans``
    does).  ``checks`` limits the battery to those names; ``time_limit`` is the
    seconds one heuristic call may take; ``isolate=False`` runs in this process
    without a time limit (for a debugger).  Returns normally when every check
    passes, fails as declared, or is skipped.  (A heuristic parameter named
    ``checks``, ``time_limit`` or ``isolate`` cannot be passed here; use
    :func:`prepare` and :func:`run_target`.)
    """
    target = prepare(stage, name, checks, **params)
    for result in run_target(target, time_limit, isolate):
        if result.failed:
            raise HeuristicCheckError(result.message(), result)


def builtin_heuristics() -> list[tuple[str, str]]:
    """``(stage, name)`` of every first-party heuristic (those in ``pgbench.heuristics``)."""
    return [(stage, name) for stage in registry.STAGES for name in registry.names(stage)
            if registry.get(stage, name).func.__module__.startswith("pgbench.heuristics.")]


def _as_target_args(item: Any) -> tuple[str, str, dict[str, Any]]:
    if isinstance(item, str):
        stage, sep, name = item.partition(":")
        if not sep:
            raise ValueError(f"give a heuristic as 'stage:name' or (stage, name[, params]), got {item!r}.")
        return stage, name, {}
    stage, name, *rest = item
    return stage, name, dict(rest[0]) if rest else {}


@dataclass
class _PytestCheck:
    """The ``check`` argument of a parametrized test: ``check(heuristic)`` runs one check."""

    name: str
    time_limit: float
    isolate: bool = True

    def __call__(self, target: Target) -> None:
        import pytest

        (result,) = run_target(replace(target, checks=(self.name,)), self.time_limit, self.isolate)
        if result.status == "skip":
            pytest.skip(result.detail)
        if result.status == "xfail":
            pytest.xfail(f"{result.reason} [{result.message().splitlines()[0]}]")
        if result.failed:
            raise HeuristicCheckError(result.message(), result)

    def __repr__(self) -> str:
        return self.name


def parametrize_with_checks(heuristics: Iterable[Any], *, checks: Iterable[str] | None = None,
                            time_limit: float = DEFAULT_TIME_LIMIT, isolate: bool = True):
    """A ``pytest.mark.parametrize`` giving one test per (heuristic, check).

    ``heuristics``: ``"stage:name"`` strings or ``(stage, name)`` /
    ``(stage, name, params)`` tuples.  The test receives ``heuristic`` (a
    :class:`Target`) and ``check`` (call ``check(heuristic)``); a declared expected
    failure is reported as xfail, a skip (no GPU) as skipped.  Everything is
    validated at collection.  Imports pytest, so use it only in tests.
    """
    import pytest

    wanted = None if checks is None else list(checks)
    values = []
    for item in heuristics:
        stage, name, params = _as_target_args(item)
        target = prepare(stage, name, wanted, **params)
        for check in target.checks:
            values.append(pytest.param(target, _PytestCheck(check, time_limit, isolate), id=f"{target}-{check}"))
    return pytest.mark.parametrize("heuristic, check", values)
