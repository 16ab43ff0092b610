"""Hand-made result rows and stores for the report tests (tests/test_report*.py)."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

from pgbench.store import Store

_ids = itertools.count()

METHODS = {  # label -> (init, resolve, consolidate)
    "fairseq": ("fairseq", "fairseq", None),
    "pg": ("pg", "pg", None),
    "pg-full": ("pg", "pg", "dwc"),
    "sklearn": ("kmeans++", "sklearn", None),
    "faiss": ("random", "faiss", None),
}


def case(method: str = "pg", dataset: str = "d1", seed: int = 0, status: str = "ok", **extra: Any) -> dict:
    """One case row: identity columns filled in, metrics from ``extra``."""
    init, resolve, consolidate = METHODS[method]
    row = {"suite": "t", "case_id": f"{method}-{dataset}-{seed}-{next(_ids)}", "method": method,
           "source": "synthetic", "source_params": {"n": 100}, "dataset": dataset, "n": 100, "d": 2, "k": 10,
           "init": init, "resolve": resolve, "consolidate": consolidate, "seed": seed, "data_seed": seed,
           "device": "cpu", "backend": "torch", "dtype": "float32", "n_iter_max": 5, "status": status,
           "versions": {"torch": "2.13.0", "numpy": "2.4"}, "git_commit": "abc123", "host": "box",
           "created_at": "2026-01-01T00:00:00+00:00", "threads": 2}
    if status in ("ok", "unresolved", "stopped"):
        row.update({"n_empty_initial": 0, "n_empty_final": 0, "rounds_total": 0, "seconds_total": 1.0,
                    "seconds_resolve": 0.1, "inertia": 1.0, "size_min": 5, "size_max": 15, "size_cv": 0.3,
                    "n_iter": 5, "n_empty_per_iter": [0] * 5, "n_empty_assigned_per_iter": [0] * 5,
                    "rounds_per_iter": [0] * 5})
    row.update(extra)
    return row


def trace_for(row: dict, n_iter: int = 5) -> list[dict]:
    """A per-iteration trace consistent with the row's per-iteration columns, inertia halving towards the final."""
    assigned = row.get("n_empty_assigned_per_iter") or [0] * n_iter
    resolved = row.get("n_empty_per_iter") or [0] * n_iter
    rounds = row.get("rounds_per_iter") or [0] * n_iter
    final = row.get("inertia") or 1.0
    return [{"iteration": i, "n_empty_assigned": a, "n_empty_resolved": s, "n_resolved": a - s, "rounds": r,
             "gave_up": False, "seconds_assign": 0.01, "seconds_resolve": 0.01, "seconds_update": 0.01,
             "inertia": final * (1 + 2.0 ** -i)} for i, (a, s, r) in enumerate(zip(assigned, resolved, rounds))]


def sample_rows() -> list[dict]:
    """Five methods, two data sets (one with ground truth, one weight layer), two seeds, one failure."""
    rows = []
    for seed in (0, 1):
        for label, empties, rounds, inertia in (("fairseq", 3, 40, 1.3), ("pg", 0, 5, 1.0), ("pg-full", 0, 4, 0.98),
                                                ("sklearn", 0, 3, 1.02), ("faiss", 1, 8, 1.1)):
            rows.append(case(label, "gauss", seed, n_empty_final=empties, rounds_total=rounds + seed,
                             inertia=inertia + 0.01 * seed, centroid_index=1 if empties else 0,
                             seconds_total=0.5 + 0.1 * rounds, seconds_resolve=0.01 * rounds,
                             n_empty_initial=empties + 2, n_empty_assigned_per_iter=[empties + 2, 4, 3, 2, empties],
                             n_empty_per_iter=[empties + 1, 2, 1, 1, empties], rounds_per_iter=[rounds, 0, 0, 0, 0],
                             size_min=0 if empties else 3, size_max=20, size_cv=0.4 + 0.05 * empties))
            rows.append(case(label, "layer.0.attention.self.query", seed, layer="layer.0.attention.self.query",
                             layer_type="attn_q", source="checkpoint",
                             source_params={"path": "/ckpt/model.pt", "preset": "paper-11.81"},
                             n_empty_final=2 * empties, rel_error=0.2 + 0.01 * empties, inertia=2.0 + empties))
    rows.append(case("faiss", "gauss", 2, status="error", error="RuntimeError: out of memory"))
    return rows


def make_store(path: Path, rows: list[dict], traces: bool = True) -> Path:
    with Store(path) as st:
        for r in rows:
            st.add(r, trace_for(r) if traces and r["status"] == "ok" else ())
    return path


#: the columns of the GLUE stage's ``downstream`` table that the report reads (pgbench/glue/results.py)
DOWNSTREAM_COLUMNS = ("row_id", "task", "metric_name", "metric", "accuracy", "method", "preset", "compression_ratio",
                      "size_mb", "init", "resolve", "consolidate", "seed", "status", "error")


def _d(task, ratio, size, method, acc, status="ok", error=""):
    init, resolve, consolidate = METHODS[method] if method != "float" else (None, None, None)
    preset = "none" if method == "float" else f"paper-{ratio:.2f}"
    return (f"{task}-{method}-{ratio}", task, "accuracy", acc, acc, method, preset, ratio, size, init, resolve,
            consolidate, 0, status, error)


DOWNSTREAM_ROWS = [  # in the form of the paper's Table 2 (MNLI, RTE; two compression ratios), one failure
    _d("MNLI", 1.0, 477.94, "float", 87.8), _d("RTE", 1.0, 477.94, "float", 76.7),
    _d("MNLI", 11.81, 40.47, "fairseq", 83.1), _d("MNLI", 15.9, 30.05, "fairseq", 79.0),
    _d("RTE", 11.81, 40.47, "fairseq", 58.8), _d("RTE", 15.9, 30.05, "fairseq", 55.6),
    _d("MNLI", 11.81, 40.47, "pg-full", 83.9), _d("MNLI", 15.9, 30.05, "pg-full", 81.4),
    _d("RTE", 11.81, 40.47, "pg-full", 70.8), _d("RTE", 15.9, 30.05, "pg-full", None, "error", "CUDA <oom>"),
]


def add_downstream(path: Path, rows: list[tuple] = DOWNSTREAM_ROWS) -> None:
    """Create a ``downstream`` table like the GLUE stage's, with ``rows``."""
    with sqlite3.connect(Path(path) / "results.sqlite") as conn:
        conn.execute(f"CREATE TABLE downstream ({', '.join(DOWNSTREAM_COLUMNS)})")
        conn.executemany(f"INSERT INTO downstream VALUES ({', '.join('?' * len(DOWNSTREAM_COLUMNS))})", rows)
    conn.close()
