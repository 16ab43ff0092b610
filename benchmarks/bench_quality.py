"""Quality tracked across commits, read from ONE seeded fit per (dataset, method).

asv treats lower as better for every benchmark, so only lower-is-better
quantities are tracked: empty clusters left, resolution rounds spent, inertia
relative to plain Lloyd, and GLUE error (100 - accuracy).
"""

from __future__ import annotations

import math
import os

from . import common


class Quality:
    """``track_*`` readers over one fit per grid point, all fitted once in ``setup_cache``.

    ``setup_cache`` is not parametrised in asv, so it walks the whole grid itself and
    returns ``{(dataset, method): outcome}``; a data set that cannot be loaded is left
    out (its points are skipped), and a fit that raises is stored as its error
    message (its points fail, the others still run).
    """

    params = (list(common.DATASETS), common.methods())
    param_names = ["dataset", "method"]
    timeout = 1200

    def setup_cache(self):
        outcomes = {}
        for dataset in common.DATASETS:
            try:
                common.dataset(dataset)
            except NotImplementedError:
                continue
            plain = common.fit(dataset, common.PLAIN_LLOYD).inertia
            for method in common.methods():
                try:
                    r = common.fit(dataset, method)
                except Exception as exc:  # noqa: BLE001  recorded as this point's failure
                    outcomes[dataset, method] = f"{type(exc).__name__}: {exc}"
                    continue
                outcomes[dataset, method] = {
                    "n_empty_final": r.n_empty_final,
                    "rounds": r.rounds_total,
                    "inertia_ratio": r.inertia / plain if plain > 0 else math.nan,
                    "status": r.status,
                }
        return outcomes

    setup_cache.timeout = 1200

    def setup(self, outcomes, dataset, method):
        common.require_method(method)
        if (dataset, method) not in outcomes:
            raise NotImplementedError(f"data set '{dataset}' is not available")
        outcome = outcomes[dataset, method]
        if isinstance(outcome, str):
            raise RuntimeError(f"fit of {method} on {dataset} failed: {outcome}")
        self.outcome = outcome

    def track_empty_clusters(self, outcomes, dataset, method):
        """Empty clusters after the final assignment."""
        return self.outcome["n_empty_final"]

    track_empty_clusters.unit = "clusters"

    def track_resolution_rounds(self, outcomes, dataset, method):
        """Resolution rounds (full re-assignments or resolver passes) over all iterations."""
        return self.outcome["rounds"]

    track_resolution_rounds.unit = "rounds"

    def track_inertia_vs_lloyd(self, outcomes, dataset, method):
        """Final inertia / inertia of plain Lloyd (random init, no resolution) on the same data."""
        return self.outcome["inertia_ratio"]

    track_inertia_vs_lloyd.unit = "ratio"


class GlueError:
    """``track_glue_error``: GLUE dev error (100 - the task metric, %) after PQ with ``method``.

    Reads the ``downstream`` table of the result store named by ``PGBENCH_GLUE_RESULTS``
    (a results folder written by ``python -m pgbench run suites/glue.toml`` or
    ``python -m pgbench glue``), averaging over tasks and seeds for one method and
    preset.  Skipped (``NotImplementedError``) when the variable is unset or the
    store has no row for that combination.  Rows quantized with iPQ stages are left
    out: they measure the staged fine-tuning as much as the heuristic.
    """

    params = [common.methods(), ["paper-11.81", "paper-14.05", "paper-15.29", "paper-15.90", "fairseq"]]
    param_names = ["method", "preset"]
    unit = "percent"

    def setup(self, method, preset):
        path = os.environ.get("PGBENCH_GLUE_RESULTS", "")
        if not path or not os.path.exists(path):
            raise NotImplementedError("no downstream GLUE results (set PGBENCH_GLUE_RESULTS to a results folder)")
        from pgbench.glue.results import DownstreamStore

        init, resolve, consolidate = common.parse_method(method)
        with DownstreamStore(path) as store:
            metrics = [r["metric"] for r in store.rows()
                       if r["status"] in ("ok", "unresolved", "stopped") and r["preset"] == preset
                       and not r["ipq_stages"]
                       and (r["init"], r["resolve"], r["consolidate"] or None) == (init, resolve, consolidate)
                       and r["metric"] is not None]
        if not metrics:
            raise NotImplementedError(f"no GLUE result for {method} at {preset}")
        self.error = 100.0 - sum(metrics) / len(metrics)

    def track_glue_error(self, method, preset):
        return self.error
