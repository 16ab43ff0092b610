"""Cases that compute the same thing share one run (pgbench.reuse): the plan, the copies, their soundness."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from benchmarks import paper_scale as ps
from pgbench import reuse, worker
from pgbench.cases import expand
from pgbench.cli import main
from pgbench.runner import run_suite
from pgbench.store import Store
from pgbench.suite import load_suite

# fc1 is cut with b = 4 at paper-11.81 and b = 16 at paper-15.90; attention projections with b = 4 at both
SUITE = """
[suite]
name = "share"
seeds = [0]
n_iter = 4
timeout = 600

[[methods]]
label = "pg"
init = "pg"
resolve = "pg"

[[methods]]
label = "faiss"
init = "random"
resolve = "faiss"

[[sources]]
name = "checkpoint"
params = { path = "PATH", layers = "layer.0.(attention.output.dense|intermediate.dense)" }
grid = { preset = ["paper-11.81", "paper-15.90"] }
"""


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return ps.write_checkpoint(tmp_path_factory.mktemp("ckpt"), "tiny", seed=1)


def _expansion(tmp_path, ckpt, text=SUITE):
    path = tmp_path / "suite.toml"
    path.write_text(text.replace("PATH", str(ckpt)))
    return expand(load_suite(path, device="cpu"))


def _preset(row):
    params = row["source_params"]
    return (params if isinstance(params, dict) else json.loads(params))["preset"]


#: columns a copy need not share with the case that ran
OWN = set(reuse.OWN_FIELDS) | {"reused_from", "source_params"}


def _same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def test_plan_groups_what_only_the_preset_tells_apart(tmp_path, ckpt):
    cases = _expansion(tmp_path, ckpt).cases
    assert len(cases) == 2 * 2 * 2                                       # layers x presets x methods
    groups = reuse.plan(cases)
    sizes = sorted(("intermediate" in g[0].dataset, g[0].d, len(g)) for g in groups.values())
    # attention.output.dense: b = 4 at both presets, one run per method; intermediate: b = 4 and b = 16
    assert sizes == [(False, 4, 2), (False, 4, 2), (True, 4, 1), (True, 4, 1), (True, 16, 1), (True, 16, 1)]
    costs = [reuse.cost(g[0]) for g in groups.values()]
    assert costs == sorted(costs, reverse=True)                          # the largest runs first
    for group in groups.values():                                        # the first in suite order runs
        assert group == sorted(group, key=cases.index)


def test_every_id_field_but_the_source_parameters_changes_the_work_key(tmp_path, ckpt):
    case = _expansion(tmp_path, ckpt).cases[0]
    changes = {"suite": "other", "dataset": "x", "k": case.k + 1, "init": "kmeans++", "resolve": "none",
               "consolidate": "dwc", "params": {"init": {"x": 1}}, "seed": 9, "data_seed": 9, "device": "cuda",
               "backend": "torch", "dtype": "float64", "n_iter": 99, "tol": 1e-3, "max_points_per_centroid": 7,
               "n": case.n + 1, "d": case.d * 2, "timeout": 1.0, "repeats": 3}
    for name, value in changes.items():
        other = dataclasses.replace(case, case_id="", **{name: value})
        assert other.work_key != case.work_key, name
    for name, value in {"method": "renamed", "primary_metric": "rel_error_ratio",
                        "source_params": {**case.source_params, "preset": "paper-14.05"}}.items():
        other = dataclasses.replace(case, case_id="", **{name: value})
        assert other.work_key == case.work_key, name
    assert dataclasses.replace(case, case_id="", source_params={**case.source_params, "preset": "paper-14.05"}
                               ).case_id != case.case_id


def test_sources_that_do_not_say_what_decides_their_points_never_share(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[suite]\nname = "s"\nseeds = [0, 1]\n[[methods]]\ninit = "random"\nresolve = "none"\n'
                    '[[sources]]\nname = "gaussian_mixture"\nparams = { n = 60, d = 2, n_centers = 3 }\n')
    cases = expand(load_suite(path)).cases
    assert all(c.work_key == c.case_id for c in cases)
    assert len(reuse.plan(cases)) == len(cases)


def test_copies_are_what_running_them_gives(tmp_path, ckpt):
    expansion = _expansion(tmp_path, ckpt)
    summary = run_suite(expansion, tmp_path / "r", executor="inline")
    assert (summary.ran, summary.reused) == (8, 2)
    with Store(tmp_path / "r") as store:
        rows = {r["case_id"]: r for r in store.rows()}
        copies = [r for r in rows.values() if r["reused_from"]]
        assert sorted((r["method"], _preset(r)) for r in copies) == [("faiss", "paper-15.90"),
                                                                     ("pg", "paper-15.90")]
        by_id = {c.case_id: c for c in expansion.cases}
        for copy in copies:
            ran = rows[copy["reused_from"]]
            assert ran["reused_from"] is None and ran["work_key"] == copy["work_key"]
            assert (ran["method"], ran["dataset"], _preset(ran)) == (copy["method"], copy["dataset"], "paper-11.81")
            for name, value in ran.items():
                if name not in OWN and name != "case_id":
                    assert _same(copy[name], value), name
            assert [dict(t, case_id=None) for t in store.trace(copy["case_id"])] == \
                   [dict(t, case_id=None) for t in store.trace(ran["case_id"])]
            # soundness: running the copied case itself gives the copy's results
            row, _ = worker.run_case(by_id[copy["case_id"]])
            for name in ("status", "inertia", "rel_error", "n_empty_final", "rounds_total", "n_iter", "size_min",
                         "size_max", "n_empty_per_iter", "layer_type", "n", "d", "k"):
                stored = copy[name]
                stored = json.loads(stored) if isinstance(stored, str) and stored[:1] == "[" else stored
                assert _same(row[name], stored), name


def test_a_later_run_copies_stored_work_without_running_it(tmp_path, ckpt):
    one = SUITE.replace('"paper-11.81", "paper-15.90"', '"paper-11.81"')
    assert run_suite(_expansion(tmp_path, ckpt, one), tmp_path / "r", executor="inline").reused == 0
    summary = run_suite(_expansion(tmp_path, ckpt), tmp_path / "r", executor="inline")
    assert (summary.already, summary.ran, summary.reused) == (4, 4, 2)      # fc1 at b = 16 ran, attention copied
    assert sum(summary.counts.values()) == 8 and "error" not in summary.counts


def test_retried_statuses_are_not_reused(tmp_path, ckpt):
    expansion = _expansion(tmp_path, ckpt)
    run_suite(expansion, tmp_path / "r", executor="inline")
    with Store(tmp_path / "r") as store:
        rows = store.rows()
        keys = [r["work_key"] for r in rows]
        ran = {r["work_key"]: (r["case_id"], r["status"]) for r in rows if r["reused_from"] is None}
        assert store.computed(keys) == ran and len(ran) == 6
        statuses = {status for _, status in ran.values()}
        assert store.computed(keys, except_status=statuses) == {}


def test_copy_case_checks_its_columns_and_copies_once(tmp_path, ckpt):
    run_suite(_expansion(tmp_path, ckpt), tmp_path / "r", executor="inline")
    with Store(tmp_path / "r") as store:
        first = store.rows()[0]["case_id"]
        with pytest.raises(ValueError, match="case_id missing"):
            store.copy_case(first, {"method": "x"})
        with pytest.raises(ValueError, match="nope"):
            store.copy_case(first, {"case_id": "c", "nope": 1})
        assert store.copy_case(first, {"case_id": "c", "reused_from": first}) is True
        assert store.copy_case(first, {"case_id": "c", "reused_from": first}) is False
        assert store.copy_case("absent", {"case_id": "d"}) is False


def test_every_case_field_is_in_the_work_key_or_a_copys_own():
    from pgbench import schema
    from pgbench.case import Case

    in_key = set(schema.ID_FIELDS) | set(schema.OPTIONAL_ID_FIELDS) | {"n", "d", "timeout", "repeats"}
    not_stored = {"source_label", "imports"}          # neither hashed into the case id nor a column
    derived = {"engine_params"}                       # the given part of ``params`` (in the key), flat
    fields = {f.name for f in dataclasses.fields(Case)}
    assert fields - in_key - set(reuse.OWN_FIELDS) - not_stored - derived == set()


def test_the_report_says_how_many_cases_are_copies(tmp_path, ckpt):
    from pgbench.report.summary import reused_count

    run_suite(_expansion(tmp_path, ckpt), tmp_path / "r", executor="inline")
    with Store(tmp_path / "r") as store:
        assert reused_count(store.rows()) == 2
    out = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "r"), "-o", str(out)]) == 0
    html = out.read_text()
    assert 'id="reused"' in html and "2 of them are copies of a run that computed the same thing" in html
