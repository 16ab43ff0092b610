"""``python -m pgbench check``: the conformance battery of :mod:`pgbench.testing` from the command line.

A heuristic is named as

``NAME``
    every stage that registers NAME (``pg`` is an init and a resolve heuristic: both are checked);
``STAGE:NAME``
    one stage: ``init``, ``resolve`` or ``consolidate`` (``resolve:pg``);
``MODULE:NAME`` / ``MODULE:STAGE:NAME``
    import MODULE first (a plugin that registers NAME; it must be importable, e.g. on
    ``PYTHONPATH``), then as above.

``--stage STAGE`` restricts a name given without one.  One line per check
(PASS, FAIL, XFAIL, XPASS, SKIP), then a count.  Exit status 0 when nothing
failed, 1 when a check failed (or an expected failure passed), 2 for bad input
(an unknown name, module, parameter or check), reported before any check runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any

from .. import registry
from ..suite_cli import _pairs
from ..validation import error_text
from . import CHECKS, DEFAULT_TIME_LIMIT, CheckResult, Target, prepare, run_target


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _split(text: str) -> tuple[str | None, str | None, str]:
    """``[MODULE:][STAGE:]NAME`` -> (module, stage, name)."""
    parts = text.split(":")
    if len(parts) == 1:
        return None, None, parts[0]
    if len(parts) == 2:
        return (None, *parts) if parts[0] in registry.STAGES else (parts[0], None, parts[1])
    if len(parts) == 3 and parts[1] in registry.STAGES:
        return parts[0], parts[1], parts[2]
    raise ValueError(f"cannot read {text!r}: give NAME, STAGE:NAME, MODULE:NAME or MODULE:STAGE:NAME.")


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"cannot import module '{module}' ({error_text(exc)}).") from None


def targets(names: list[str], stage: str | None, every: bool, checks: list[str] | None,
            params: dict[str, Any]) -> list[Target]:
    """Every heuristic to check, validated (imports done) before any check runs."""
    if every and names:
        raise ValueError("give heuristic names or --all, not both.")
    if every:
        names = [f"{s}:{n}" for s in registry.STAGES if stage in (None, s) for n in registry.names(s)]
    if not names:
        raise ValueError("name at least one heuristic, or --all.")
    found: list[Target] = []
    for text in names:
        module, own_stage, name = _split(text)
        if module:
            _import(module)
        if own_stage and stage and own_stage != stage:
            raise ValueError(f"{text!r} names stage {own_stage} but --stage is {stage}.")
        chosen = own_stage or stage
        stages = [chosen] if chosen else [s for s in registry.STAGES if name in registry.names(s)]
        if not stages:
            known = ", ".join(f"{s}:{n}" for s in registry.STAGES for n in registry.names(s))
            raise ValueError(f"no heuristic named '{name}' (known: {known}).")
        modules = (module,) if module else ()
        found.extend(prepare(s, name, checks, modules, **params) for s in stages)
    return found


def line(result: CheckResult) -> str:
    """One line for a check: STATUS, heuristic, check and what happened."""
    head = f"{result.status.upper():6s} {result.target}  {result.check}"
    if result.status == "fail":
        detail = result.detail.splitlines()[0] if result.detail else ""
        return f"{head}  on data set '{result.dataset}': {detail}"
    if result.status == "xpass":
        return f"{head}  passed, but is declared an expected failure ({result.reason}): remove the declaration"
    if result.status in ("xfail", "skip"):
        return f"{head}  ({result.reason or result.detail})"
    return head


def summary(results: list[CheckResult]) -> str:
    words = [("pass", "passed"), ("fail", "failed"), ("xfail", "expected failures"),
             ("xpass", "unexpected passes"), ("skip", "skipped")]
    counts = [f"{n} {word}" for status, word in words if (n := sum(r.status == status for r in results))]
    return f"{len(results)} check{'' if len(results) == 1 else 's'}: " + ", ".join(counts)


def setup_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="[MODULE:][STAGE:]NAME",
                   help="heuristics to check (see docs/heuristics.md)")
    p.add_argument("--stage", choices=registry.STAGES, help="the stage of names given without one")
    p.add_argument("--all", action="store_true", help="every registered heuristic (of --stage)")
    p.add_argument("--check", action="append", metavar="CHECK",
                   help=f"run only this check (repeatable): {', '.join(CHECKS)}")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a heuristic parameter; VALUE is read as JSON (3, 0.5, true, null), else as a string")
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT, metavar="SECONDS",
                   help=f"seconds one heuristic call may take before it fails as never returning "
                        f"(default {DEFAULT_TIME_LIMIT:g})")
    p.add_argument("--in-process", action="store_true",
                   help="run the checks in this process, without the time limit (for a debugger)")


def run_command(args: argparse.Namespace) -> int:
    if not args.time_limit > 0:
        raise ValueError(f"--time-limit must be positive, got {args.time_limit:g}.")
    params = {key: _parse_value(value) for key, value in _pairs(args.param, "--param").items()}
    results: list[CheckResult] = []
    for target in targets(args.names, args.stage, args.all, args.check, params):
        for result in run_target(target, args.time_limit, isolate=not args.in_process):
            print(line(result), flush=True)
            for extra in result.detail.splitlines()[1:] if result.status == "fail" else []:
                print(f"       {extra}")
            results.append(result)
    print(summary(results))
    return 1 if any(r.failed for r in results) else 0


COMMANDS = {"check": (setup_parser, run_command,
                      "run the conformance battery on heuristics (pgbench.testing; docs/heuristics.md)")}
