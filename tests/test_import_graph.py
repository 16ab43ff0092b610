"""Data flows one way: the modules that run cases never import the suite side (TOML parser, GLUE code)."""

from __future__ import annotations

import json
import subprocess
import sys

#: what running one case must not pull in: the suite parser and expansion, TOML, the downstream GLUE code
SUITE_SIDE = ("pgbench.suite", "pgbench.suite_values", "pgbench.suite_methods", "pgbench.suite_downstream",
              "pgbench.suite_cli", "pgbench.cases", "pgbench.glue", "pgbench.report", "tomllib", "transformers")


def imported_by(module: str) -> list[str]:
    """The SUITE_SIDE modules a fresh interpreter has loaded after importing ``module``."""
    code = (f"import sys, json, {module}\n"
            f"print(json.dumps(sorted(m for m in {SUITE_SIDE!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_running_cases_needs_no_suite_side():
    # the runner imports the executors, claims, worker and case modules: its import closure covers theirs
    assert imported_by("pgbench.runner") == []


def test_the_check_can_fail():
    assert "tomllib" in imported_by("pgbench.cases") and "pgbench.suite" in imported_by("pgbench.cases")
