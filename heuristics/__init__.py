"""First-party k-means heuristics, one module each, registered with ``pgbench.registry``.

Modules whose name starts with ``_`` are shared helpers, not heuristics.
"""
