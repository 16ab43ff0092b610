"""The report's paper-checks views (pgbench.report.paper_views) on hand-made rows, numbers checked by hand."""

import math

import pytest
from report_rows import case, make_store

from pgbench.report import paper_views as pv
from pgbench.report.data import load
from pgbench.report.render import render_html


def _work(method, seed, assigned, evals, passes, seconds, status="ok", backend="torch"):
    return case(method, "layer", seed, status=status, backend=backend, n_empty_assigned_per_iter=assigned,
                resolve_distance_evals=evals, resolve_assign_passes=passes, seconds_resolve=seconds,
                n_empty_last_assignment=0)


def work_rows():
    # fairseq runs on another backend (the paper suite's "direct"): they still pair with the others
    return [_work("fairseq", 0, [5, 0, 2], 1000, 10, 0.4, backend="direct"),
            _work("fairseq", 1, [7], 2020, 101, 1.0, status="stopped", backend="direct"),
            _work("pg", 0, [3, 0, 0], 120, 2, 0.05), _work("pg", 1, [7, 2], 400, 4, 0.2),
            _work("sklearn", 0, [5, 1, 0], 0, 0, 0.002),
            _work("faiss", 0, [0, 0, 0], 0, 0, 0.0)]


def test_resolution_work_is_counted_per_event_and_paired_by_geometric_mean():
    table = {r["method"]: r for r in pv.resolution_work_table(work_rows())}
    f, p, s, z = table["fairseq + fairseq"], table["pg + pg"], table["kmeans++ + sklearn"], table["random + faiss"]
    # fairseq per event: seed 0: 1000/2, 10/2, 0.4/2; seed 1 (stopped, one event): 2020, 101, 1.0
    assert (f["n"], f["n_stopped"], f["n_events"]) == (2, 1, 3)
    assert f["resolve_distance_evals"] == 1260 and f["resolve_assign_passes"] == 53
    assert f["seconds_resolve"] == pytest.approx(0.6) and f["resolve_distance_evals_total"] == 3020
    assert f["n_pairs"] == 0 and f["resolve_assign_passes_fewer"] is None          # the baseline itself
    # pg per event: 120, 2, 0.05 and 200, 2, 0.1; ratios 500/120, 5/2, 4 and 2020/200, 101/2, 10
    assert (p["resolve_distance_evals"], p["resolve_assign_passes"]) == (160, 2)
    assert p["n_pairs"] == 2
    assert p["resolve_distance_evals_fewer"] == pytest.approx(math.sqrt(500 / 120 * 10.1))
    assert p["resolve_assign_passes_fewer"] == pytest.approx(math.sqrt(2.5 * 50.5))
    assert p["seconds_resolve_fewer"] == pytest.approx(math.sqrt(40))
    # sklearn does no extra work: infinitely fewer evaluations and passes; 0.2 / 0.001 s per event
    assert s["resolve_distance_evals_fewer"] == math.inf and s["resolve_assign_passes_fewer"] == math.inf
    assert s["seconds_resolve_fewer"] == pytest.approx(200)
    # a run that never met an empty cluster has no event: no per-event value, no pair
    assert z["n_events"] == 0 and z["resolve_distance_evals"] is None and z["n_pairs"] == 0


def test_paper_claim_restates_the_ratios_of_pg_against_fairseq():
    claim = pv.paper_claim(pv.resolution_work_table(work_rows()))
    assert claim["claimed_fewer_iterations"] == 8 and claim["claimed_speedup"] == 3.8
    assert claim["fewer_passes"] == pytest.approx(math.sqrt(2.5 * 50.5)) and claim["n_pairs"] == 2
    assert pv.paper_claim(pv.resolution_work_table([r for r in work_rows() if r["method"] != "fairseq"])) is None


def test_rows_from_before_the_work_columns_are_not_paired():
    old = [case("fairseq", "x", 0, n_empty_assigned_per_iter=[3]), case("pg", "x", 0, n_empty_assigned_per_iter=[3])]
    table = {r["method"]: r for r in pv.resolution_work_table(old)}
    assert table["pg + pg"]["resolve_assign_passes"] is None and table["pg + pg"]["resolve_assign_passes_fewer"] is None


def _full(seed, merged, groups, eps, inertia, ratio=1.0, weighting="single"):
    return case("pg-full", "layer", seed, n_points=100, n_consolidated_points=merged, n_groups=groups, eps_final=eps,
                inertia=inertia, params={"consolidate": {"dwc_eps_ratio": ratio, "dwc_weighting": weighting}})


def test_consolidation_fraction_beside_pg():
    rows = [case("pg", "layer", 0, inertia=10.0), case("pg", "layer", 1, inertia=20.0),
            _full(0, 30, 10, 0.5, 9.0), _full(1, 50, 20, 0.25, 22.0)]
    rows[-1]["n_empty_final"] = 2
    (row,) = pv.consolidation_table(rows)
    assert row["method"] == "pg + pg + dwc" and row["n"] == 2
    assert (row["fraction"], row["fraction_min"], row["fraction_max"]) == (0.4, 0.3, 0.5)
    assert (row["groups"], row["eps_final"], row["eps_ratio"], row["weighting"]) == (15, 0.375, 1.0, "single")
    assert row["inertia_vs_reference"] == pytest.approx(math.sqrt(0.9 * 1.1)) and row["n_pairs"] == 2
    assert row["n_with_empty"] == 1
    mixed = rows[:3] + [_full(1, 50, 20, 0.25, 22.0, weighting="sum")]
    assert pv.consolidation_table(mixed)[0]["weighting"] is None          # not shared by every run


def test_init_empties_per_init_not_per_method():
    rows = [case("pg", "a", 0, n_empty_initial=0), case("pg-full", "a", 0, n_empty_initial=3),
            case("fairseq", "a", 0, n_empty_initial=5), case("fairseq", "a", 1, n_empty_initial=7),
            case("sklearn", "a", 0, status="error")]
    table = {r["init"]: r for r in pv.init_empties_table(rows)}
    assert set(table) == {"pg", "fairseq"}                                  # failed runs are not counted
    assert (table["pg"]["n"], table["pg"]["n_with_empty"], table["pg"]["median"], table["pg"]["max"]) == (2, 1, 1.5, 3)
    assert table["fairseq"]["share_pct"] == 100.0 and table["fairseq"]["median"] == 6


def test_last_assignment_beside_the_final_one():
    rows = [case("fairseq", "a", 0, n_empty_final=4, n_empty_last_assignment=4),
            case("fairseq", "a", 1, n_empty_final=1, n_empty_last_assignment=3), case("pg", "a", 0)]
    (row,) = pv.last_assignment_table(rows)                                 # pg's row lacks the column
    assert (row["n"], row["mean_final"], row["mean_last"], row["n_differ"]) == (2, 2.5, 3.5, 1)


def test_the_section_renders_its_tables_and_the_claim(tmp_path):
    rows = work_rows() + [_full(0, 30, 10, 0.5, 0.9)]
    make_store(tmp_path / "res", rows)
    html = render_html(load(tmp_path / "res"))
    section = html[html.index('<section id="paper-checks">'):]
    section = section[:section.index("</section>")]
    for title in ("Resolution work per resolution event", "Dense weights consolidation beside PG",
                  "Empty clusters at the first assignment, per init",
                  "Empty clusters: final assignment and last in-loop assignment"):
        assert title in section
    assert "8× fewer iterations" in section and "11.2× fewer passes" in section
