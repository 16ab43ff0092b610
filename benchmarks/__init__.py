"""asv benchmarks for pgbench (run with ``asv run -E existing:same``; see docs/benchmarking.md).

The suite must import against every commit that ``python -m pgbench asv-history``
records, so it only uses the public engine API plus the registry, and a missing
heuristic or data set skips its grid point (``NotImplementedError`` in ``setup``).
"""
