"""The benchmark gate's exact half: quality values in ``extra_info`` must not change at all.

A benchmark's ``extra_info`` holds what the run produced (empty clusters, rounds,
inertia, status, distance evaluations) and what it ran on (n, d, k, device,
backend, heuristics): deterministic for the same code and seed, so two runs of the
same code agree bit for bit whatever the machine's load.  Keys that hold timings
(their name contains ``seconds`` or ``ratio``) are left to the timing gate.

``conftest.py`` calls :func:`mismatches` at the end of a ``--benchmark-compare``
run, against the baseline pytest-benchmark compared with, and fails the session
(exit status 1) when anything differs; the same check runs as a script::

    python tests/benchmarks/quality_gate.py BASELINE.json NEW.json
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Mapping

#: substrings of extra_info keys that hold timings (not compared exactly)
TIMING_MARKS = ("seconds", "ratio")


def is_timing(key: str) -> bool:
    return any(mark in key for mark in TIMING_MARKS)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def mismatches(baseline: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per difference between two ``{benchmark fullname: extra_info}`` maps.

    A quality key added, removed or changed is a difference.  Benchmarks in only one
    of the two are not compared (a benchmark that failed fails the pytest run itself,
    and ``-k`` / ``-m`` may select part of a baseline).
    """
    out = []
    for name, old in baseline.items():
        if name not in new:
            continue
        now = new[name]
        for key in sorted(set(old) | set(now)):
            if is_timing(key):
                continue
            if key not in now or key not in old:
                out.append(f"{name}: extra_info '{key}' only in {'the baseline' if key in old else 'this run'}")
            elif not _same(old[key], now[key]):
                out.append(f"{name}: extra_info '{key}' changed from {old[key]!r} to {now[key]!r}")
    return out


def extra_infos(saved: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{fullname: extra_info}`` of a pytest-benchmark JSON document."""
    return {b["fullname"]: dict(b.get("extra_info") or {}) for b in saved["benchmarks"]}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python tests/benchmarks/quality_gate.py BASELINE.json NEW.json", file=sys.stderr)
        return 2
    docs = [json.loads(open(path, encoding="utf-8").read()) for path in argv]
    found = mismatches(extra_infos(docs[0]), extra_infos(docs[1]))
    for line in found:
        print(line)
    print(f"quality gate: {len(found)} difference(s) in extra_info over {len(docs[0]['benchmarks'])} benchmark(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
