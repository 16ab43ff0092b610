"""A tiny data source and a few misbehaving init heuristics for the suite/store/runner tests.

Imported by test suites through ``[suite] imports = ["pgbench_testplugin"]`` (the
tests put this folder on ``sys.path`` / ``PYTHONPATH``), so spawned workers and
``python -m pgbench`` subprocesses register them too.

``test_count`` notes every computation in the file ``$PGBENCH_TEST_COUNT`` (one line
``RUN DATA``: ``$PGBENCH_TEST_RUN`` and the data's sum, which tells the cases of a
one-method suite apart), so tests count computations, not stored rows.  With
``$PGBENCH_TEST_PEERS`` = n it then waits until n runs have noted one (so
concurrent runs overlap).

Gates hold a process at one point while a test signals it: where the variable
names a file, the code there creates ``FILE.reached`` and waits while ``FILE``
exists (60 s at most): ``$PGBENCH_TEST_GATE`` in ``test_count`` (a case running),
``$PGBENCH_TEST_LOAD_GATE`` in the ``tiny`` source (the suite loading, or a case
loading its data), ``$PGBENCH_TEST_EXIT_GATE`` in an exit handler of the process
that imported this module (interpreter shut-down).
"""

import atexit
import os
import time

import torch

from pgbench.params import Real
from pgbench.registry import register
from pgbench.sources import Dataset, register_source
from pgbench.state import InitOutcome


def gate(variable: str) -> None:
    """Hold here while the file named by ``$variable`` exists (see the module docstring)."""
    path = os.environ.get(variable)
    if not path:
        return
    open(f"{path}.reached", "a").close()
    deadline = time.monotonic() + 60
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)


if os.environ.get("PGBENCH_TEST_EXIT_GATE"):
    atexit.register(gate, "PGBENCH_TEST_EXIT_GATE")


@register_source("tiny", params={"n": 60, "d": 2, "k": 3, "n_sets": 1, "weights": False, "truth": True})
def tiny(seed, n, d, k, n_sets, weights, truth):
    """``n_sets`` small blob sets named set0, set1, ...; optionally shaped like a PQ layer."""
    gate("PGBENCH_TEST_LOAD_GATE")
    g = torch.Generator().manual_seed(seed)
    for i in range(n_sets):
        centres = torch.rand(k, d, generator=g) * 10
        X = centres[torch.arange(n) % k] + 0.1 * torch.randn(n, d, generator=g)
        if weights:
            yield Dataset(f"set{i}", X, k, layer_type="fc1", weight_shape=(n, d), block_size=d)
        else:
            yield Dataset(f"set{i}", X, k, true_centroids=centres if truth else None)


@register("init", "test_sleep", params=[Real("seconds", 0.0, low=0, help="how long to sleep")],
          summary="test only: sleep, then the first k points")
def init_sleep(X, weights, k, rng, *, seconds):
    time.sleep(seconds)
    return InitOutcome(X[:k].clone())


@register("init", "test_count", summary="test only: note the computation (see the module docstring)")
def init_count(X, weights, k, rng):
    log_path = os.environ.get("PGBENCH_TEST_COUNT")
    if log_path:
        with open(log_path, "a", encoding="utf-8") as fh:       # one short O_APPEND write per computation
            fh.write(f"{os.environ.get('PGBENCH_TEST_RUN', '-')} {float(X.double().sum()):.6f}\n")
        deadline = time.monotonic() + 60
        peers = int(os.environ.get("PGBENCH_TEST_PEERS", "0"))
        while time.monotonic() < deadline and len(computations(log_path)) < peers:
            time.sleep(0.05)
    gate("PGBENCH_TEST_GATE")
    return InitOutcome(X[:k].clone())


def computations(log_path) -> dict[str, list[str]]:
    """{run: [data marker, ...]} from a ``test_count`` log."""
    runs: dict[str, list[str]] = {}
    if os.path.exists(log_path):
        with open(log_path, encoding="utf-8") as fh:
            for line in fh:
                run, _, marker = line.strip().partition(" ")
                runs.setdefault(run, []).append(marker)
    return runs


@register("init", "test_die", summary="test only: kill the process running it")
def init_die(X, weights, k, rng):
    import os

    os._exit(3)


@register("init", "test_boom", summary="test only: raise")
def init_boom(X, weights, k, rng):
    raise RuntimeError("boom:\n  the test heuristic always fails")


@register("resolve", "test_sleep", params=[Real("seconds", 0.0, low=0, help="how long to sleep")],
          summary="test only: sleep, resolve nothing")
def resolve_sleep(state, rng, *, seconds):
    from pgbench.state import ResolveOutcome

    time.sleep(seconds)
    n_empty = state.n_empty
    return ResolveOutcome(n_found=n_empty, n_resolved=0, n_left=n_empty, rounds=0)


def unregister() -> None:
    """Undo this module's registrations (the tests' fixture calls it, so other tests never see them)."""
    import sys

    from pgbench import registry, sources

    for stage, names in (("init", ("test_sleep", "test_die", "test_boom", "test_count")), ("resolve", ("test_sleep",))):
        for name in names:
            registry._REGISTRY[stage].pop(name, None)
    sources._SOURCES.pop("tiny", None)
    sys.modules.pop(__name__, None)
