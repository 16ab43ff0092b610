"""pgbench: a benchmark and testing harness for k-means empty-cluster heuristics.

Public API: :func:`kmeans` (the instrumented engine), :class:`KMeansResult`,
:class:`KMeans` (a scikit-learn estimator) and the heuristic registry in
:mod:`pgbench.registry`.
"""

import logging

from .engine import kmeans
from .result import IterationStats, KMeansResult

__version__ = "0.1.0"
__all__ = ["kmeans", "KMeansResult", "IterationStats", "KMeans", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name):
    if name == "KMeans":  # imported lazily: scikit-learn is slow to import
        from .estimator import KMeans

        return KMeans
    raise AttributeError(f"module 'pgbench' has no attribute {name!r}")
