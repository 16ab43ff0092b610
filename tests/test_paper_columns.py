"""The result row's issue-10 columns, filled by the worker from a real run of the ci suite's cases."""

import pytest

from pgbench.cases import expand
from pgbench.store import COLUMN_NAMES, TRACE_NAMES
from pgbench.suite import load_suite
from pgbench.worker import run_case


@pytest.fixture(scope="module")
def rows():
    cases = [c for c in expand(load_suite("ci")).cases if c.source == "duplicates"]
    return {c.method: run_case(c) for c in cases}


def test_work_columns_sum_the_trace(rows):
    for method, (row, trace) in rows.items():
        assert row["status"] in ("ok", "unresolved", "stopped"), (method, row["error"])
        assert set(row) <= set(COLUMN_NAMES) and all(set(t) >= set(TRACE_NAMES[2:]) for t in trace)
        assert row["resolve_distance_evals"] == sum(t["resolve_distance_evals"] for t in trace)
        assert row["resolve_assign_passes"] == sum(t["resolve_assign_passes"] for t in trace)
    fairseq, _ = rows["fairseq"]
    assert fairseq["resolve_distance_evals"] == fairseq["rounds_total"] * fairseq["n"] * fairseq["k"] > 0
    for method in ("sklearn", "faiss"):
        assert rows[method][0]["resolve_distance_evals"] == 0 and rows[method][0]["resolve_assign_passes"] == 0


def test_consolidation_columns(rows):
    full, _ = rows["pg-full"]
    assert full["n_points"] == full["n"] == 1000
    assert full["n_groups"] > 0 and full["n_groups"] * 2 <= full["n_consolidated_points"] <= full["n"]
    assert full["eps_final"] is not None and full["eps_final"] > 0
    assert full["n_train"] == full["n"] - full["n_consolidated_points"] + full["n_groups"]
    plain, _ = rows["pg"]
    consolidation = (plain["n_points"], plain["n_consolidated_points"], plain["n_groups"], plain["eps_final"])
    assert consolidation == (1000, 0, 0, None)


def test_subsample_and_last_assignment_columns(rows):
    faiss, _ = rows["faiss"]
    assert faiss["max_points_per_centroid"] == 256 and faiss["n_train"] == 1000     # 1000 <= 32 * 256
    assert rows["pg"][0]["max_points_per_centroid"] is None
    for row, trace in rows.values():
        assert row["n_empty_last_assignment"] is not None and row["n_empty_last_assignment"] >= 0
