"""The conformance battery (pgbench.testing) over every built-in heuristic: one test per (heuristic, check).

A built-in that fails a check by design declares it with ``@expected_failures`` in its
own module (reported as xfail; a declaration that no longer fails is an error).  The
CUDA check is skipped without a GPU.  Each test runs its check in a fresh process on
data sets of at most 60 points (pgbench/testing/data.py).
"""

from pgbench.testing import builtin_heuristics, parametrize_with_checks


@parametrize_with_checks(builtin_heuristics())
def test_builtin_heuristic(heuristic, check):
    check(heuristic)
