"""pgbench: a benchmark and testing harness for k-means empty-cluster heuristics.

Public API: :func:`kmeans` (the instrumented engine), :class:`KMeansResult`,
:class:`KMeans` (a scikit-learn estimator), and for heuristic authors
:func:`register` with the records a heuristic returns (:class:`InitOutcome`,
:class:`ResolveOutcome`, :class:`Consolidation`) and the state a resolver gets
(:class:`KMeansState`).
"""

import importlib.util
import logging
import sys

from . import paths


def _adopt_checkout_heuristics() -> None:
    """Make a checkout's top-level ``heuristics/`` importable as ``pgbench.heuristics``.

    An installed wheel has ``pgbench/heuristics`` inside the package.  In a source
    checkout the folder sits beside ``pgbench/``; an editable install maps it too,
    but only for the checkout that was installed.  Binding it here from *this*
    package's location keeps a checkout (or another worktree, as ``asv-history``
    uses) on its own heuristics.
    """
    if "pgbench.heuristics" in sys.modules or (paths.PACKAGE / "heuristics").is_dir():
        return
    root = paths.checkout_root()
    if root is None:
        return
    init = root / "heuristics" / "__init__.py"
    spec = importlib.util.spec_from_file_location("pgbench.heuristics", init,
                                                  submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    setattr(sys.modules[__name__], "heuristics", module)   # what the import system does for a submodule


_adopt_checkout_heuristics()

__version__ = "0.1.0"
#: the public API, imported on first use: ``import pgbench`` stays light (no torch), so ``python -m pgbench``
#: imports torch inside its Ctrl-C handling (pgbench.__main__), not before it
_PUBLIC = {"kmeans": "engine", "KMeansResult": "result", "IterationStats": "result", "KMeans": "estimator",
           "register": "registry", "InitOutcome": "state", "ResolveOutcome": "state", "Consolidation": "state",
           "KMeansState": "state"}
__all__ = [*_PUBLIC, "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pgbench' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC])
