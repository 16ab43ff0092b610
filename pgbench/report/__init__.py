"""Reports from a result store: one self-contained HTML page, and a regression check between two stores.

Data flows one way, store -> report; nothing here runs k-means.

* :mod:`~pgbench.report.data`: read case rows, traces and downstream results;
* :mod:`~pgbench.report.stats`: method names, case pairing, intervals across seeds;
* :mod:`~pgbench.report.evidence`: per-(method, data set x seed) values, per-data-set winners, win / tie / loss;
* :mod:`~pgbench.report.aggregates`: geometric means / means with paired bootstrap intervals, the Pareto front;
* :mod:`~pgbench.report.ledger`: the paper's published numbers (``paper_claims.toml``) beside measured ones;
* :mod:`~pgbench.report.verdicts`: all of the findings computed once, the headline, the ``--json`` data;
* :mod:`~pgbench.report.verdict_views`: the verdict, per-data-set and paper-claims sections of the page;
* :mod:`~pgbench.report.summary`: counts by status, failed cases, provenance, sources, method parameters;
* :mod:`~pgbench.report.tables`: the paper's views, as plain functions;
* :mod:`~pgbench.report.figures`: the figures (matplotlib + seaborn, base64 PNG);
* :mod:`~pgbench.report.render`: the jinja2 page (``reports/templates/report.html.j2``);
* :mod:`~pgbench.report.compare`: per-metric changes between two stores;
* :mod:`~pgbench.report.cli`: the ``report`` and ``compare`` commands.

Importing this package is cheap: matplotlib, seaborn and jinja2 load with
:mod:`~pgbench.report.figures` and :mod:`~pgbench.report.render` only.
"""
