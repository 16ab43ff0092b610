"""Reports from a result store: one self-contained HTML page, and a regression check between two stores.

Data flows one way, store -> report; nothing here runs k-means.

* :mod:`~pgbench.report.data`: read case rows, traces and downstream results;
* :mod:`~pgbench.report.stats`: method names, case pairing, intervals across seeds;
* :mod:`~pgbench.report.summary`: counts by status, failed cases, provenance;
* :mod:`~pgbench.report.tables`: the leaderboard and the paper's views, as plain functions;
* :mod:`~pgbench.report.figures`: the figures (matplotlib + seaborn, base64 PNG);
* :mod:`~pgbench.report.render`: the jinja2 page (``reports/templates/report.html.j2``);
* :mod:`~pgbench.report.compare`: per-metric changes between two stores;
* :mod:`~pgbench.report.cli`: the ``report`` and ``compare`` commands.

Importing this package is cheap: matplotlib, seaborn and jinja2 load with
:mod:`~pgbench.report.figures` and :mod:`~pgbench.report.render` only.
"""
