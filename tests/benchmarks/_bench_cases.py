"""Cases shared by the pytest-benchmark modules: small seeded data sets and the method grid.

The small sets keep ``pytest --benchmark-disable`` (one untimed call per
benchmark, quality asserts included) to seconds on 2 cores; they are scaled-down
versions of the asv suite's sets (``benchmarks/common.py``).
"""

from __future__ import annotations

import functools

import torch

from pgbench import registry, synthetic
from pgbench.naming import method_name

SMALL_SETS = ("layer", "duplicates", "overestimated_k")


@functools.lru_cache(maxsize=None)
def small_set(name: str) -> tuple[torch.Tensor, int]:
    """(X (n, 4) float32, k) for a name of SMALL_SETS."""
    if name == "layer":             # heavy-tailed layer sub-vectors, std 0.04
        return synthetic.layer_subvectors(4_096, 4, std=0.04, seed=0), 128
    if name == "duplicates":        # 60 % exact copies of 20 points
        return synthetic.with_duplicates(2_000, 4, 0.6, 20, seed=0), 64
    if name == "overestimated_k":   # 8 tight clusters, 16x too many centroids
        return synthetic.gaussian_mixture(2_000, 4, 8, std=0.01, seed=0), 128
    raise ValueError(f"unknown small set '{name}'")


def first_party(stage: str) -> list[str]:
    """Heuristics shipped in the ``heuristics`` package (test plugins excluded)."""
    return [n for n in registry.names(stage) if registry.get(stage, n).func.__module__.startswith("pgbench.heuristics.")]


def methods() -> list[tuple[str, str, str | None]]:
    """(init, resolve, consolidate) for every first-party pair, plus PG full when ``dwc`` exists."""
    grid = [(i, r, None) for i in first_party("init") for r in first_party("resolve")]
    if "dwc" in registry.names("consolidate"):
        grid.append(("pg", "pg", "dwc"))
    return grid


def method_id(method: tuple[str, str, str | None]) -> str:
    """The test id: the method's name (:func:`pgbench.naming.method_name`)."""
    return method_name(*method)
