"""pgbench.testing: the battery catches deliberately broken heuristics, and its pieces do what they say.

The broken heuristics live in tests/pgbench_broken.py (a plugin module, public API only).
tests/test_conformance.py runs the battery over every built-in heuristic.
"""

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pgbench import registry
from pgbench.state import KMeansState
from pgbench.testing import (CHECKS, HeuristicCheckError, check_heuristic, checks_for, expected_failures,
                             parametrize_with_checks, prepare, run_target)
from pgbench.testing import data as datasets
from pgbench.testing.compare import rows_match
from pgbench.validation import check_scale

TESTS = Path(__file__).parent


@pytest.fixture
def broken():
    import pgbench_broken

    yield pgbench_broken
    pgbench_broken.unregister()


def _first_line(exc_info) -> str:
    return str(exc_info.value).splitlines()[0]


# ---------------------------------------------------------------- hand-checked pieces

def test_duplicated_repeats_each_point_by_its_weight_in_place():
    case = datasets.DataCase("w", torch.tensor([[0.0, 0.0], [1.0, 2.0]]), torch.tensor([2.0, 3.0]), 2)
    dup = datasets.duplicated(case)
    assert dup.X.tolist() == [[0.0, 0.0]] * 2 + [[1.0, 2.0]] * 3
    assert dup.weights.tolist() == [1.0] * 5


@pytest.mark.parametrize("timing", datasets.RESOLVE_TIMINGS)
def test_resolver_states_have_empty_clusters_where_k_allows(timing):
    # centroid j copies centroid j mod ceil(k/2): the copies tie with a lower index and start empty
    for case in datasets.CASES.values():
        state = datasets.resolver_state(case, timing)
        assert isinstance(state, KMeansState)
        assert state.n_empty >= (case.k - (case.k + 1) // 2), case.name
        assert torch.equal(state.counts, torch.bincount(state.labels, minlength=case.k))
    blobs = datasets.resolver_state(datasets.case("blobs"), timing)
    assert blobs.empty_ids().tolist() == [2, 3]            # k=4: centroids a, b, a, b


def test_after_update_state_moved_the_filled_centroids_and_kept_the_empty_ones():
    case = datasets.case("blobs")
    before = datasets.resolver_state(case, "before_update")
    after = datasets.resolver_state(case, "after_update")
    assert torch.equal(before.labels, after.labels)
    assert torch.equal(after.centroids[2:], before.centroids[2:])          # empty: stale copies
    assert not torch.equal(after.centroids[:2], before.centroids[:2])      # filled: their means


def test_every_data_set_is_one_the_engine_admits():
    # the battery tests heuristics on what pgbench.kmeans can hand them, nothing beyond
    for case in [*datasets.CASES.values(), datasets.duplicated(datasets.case("weighted"))]:
        check_scale([case.X], case.weights, case.name)


def test_float_extremes_sit_at_the_engines_bounds():
    huge, tiny = datasets.case("huge"), datasets.case("tiny")
    assert huge.X.dtype == tiny.X.dtype == torch.float32
    assert 5e17 < float(huge.X.abs().max()) < 1e19
    assert 1e-19 < float(tiny.X.abs().max()) < 1e-18
    with pytest.raises(ValueError, match="too large for float32"):
        check_scale([huge.X * 4], huge.weights)                             # a factor 4 beyond: refused
    with pytest.raises(ValueError, match="too small for float32"):
        check_scale([tiny.X / 4], tiny.weights)
    d2 = torch.cdist(tiny.X, tiny.X).pow(2)                               # in float32
    assert float(d2[d2 > 0].min()) < torch.finfo(torch.float32).tiny     # within a blob: subnormal


def test_rows_match_pairs_rows_one_to_one():
    A = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    assert rows_match(A, A.flip(0), 1e-6)
    assert not rows_match(A, torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]), 1e-6)   # multiplicity counts


def test_checks_per_stage():
    assert checks_for("init") == [c for c in CHECKS if c != "labels_in_range"]
    assert "labels_in_range" in checks_for("resolve") and "labels_in_range" in checks_for("consolidate")
    assert checks_for("resolve")[0] == "bounded"


# ---------------------------------------------------------------- bad input, before any work

@pytest.mark.parametrize("call, message", [
    (lambda: prepare("resolve", "nope"), "unknown resolve heuristic 'nope'"),
    (lambda: prepare("stage", "pg"), "unknown stage 'stage'"),
    (lambda: prepare("resolve", "fairseq", bogus=1), "takes no parameter 'bogus'"),
    (lambda: prepare("resolve", "pg", checks=["nope"]), "unknown check(s) nope"),
    (lambda: prepare("init", "pg", checks=["labels_in_range"]), "none of the checks labels_in_range applies"),
    (lambda: expected_failures(nope="x"), "unknown check(s) nope"),
    (lambda: expected_failures(finite=""), "needs a reason for finite"),
])
def test_bad_input_is_one_line_value_error(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_params_are_bound_and_shown():
    target = prepare("resolve", "fairseq", max_tentatives=3)
    assert target.params == {"eps": 1e-6, "max_tentatives": 3}
    assert str(target) == "resolve:fairseq[max_tentatives=3]"


# ---------------------------------------------------------------- the broken heuristics are caught

@pytest.mark.parametrize("stage, name, check, dataset", [
    ("init", "broken_global_rng", "own_generator", "blobs"),
    ("resolve", "broken_random_choice", "own_generator", "blobs/before_update"),
    ("resolve", "broken_dishonest", "honest_counts", "blobs/before_update"),
    ("init", "broken_nan", "finite", "identical"),
    ("consolidate", "broken_mutates", "input_untouched", "far_outlier"),
    ("resolve", "broken_out_of_range", "labels_in_range", "blobs/before_update"),
    ("resolve", "broken_stale_counts", "honest_counts", "blobs/before_update"),
    ("consolidate", "broken_mass", "honest_counts", "weighted"),
    ("consolidate", "broken_weighting", "honest_counts", "blobs"),
])
def test_battery_catches_broken_heuristic(broken, stage, name, check, dataset):
    with pytest.raises(HeuristicCheckError) as info:
        check_heuristic(stage, name, checks=[check])
    first = _first_line(info)
    assert f"check '{check}' failed on data set '{dataset}'" in first
    assert f"{stage} heuristic '{name}'" in first
    assert info.value.result.check == check and isinstance(info.value, AssertionError)


def test_whole_battery_stops_at_the_first_failure_and_names_it(broken):
    with pytest.raises(HeuristicCheckError) as info:
        check_heuristic("resolve", "broken_dishonest")
    assert _first_line(info).startswith("check 'honest_counts' failed on data set 'blobs/before_update'")
    assert "n_resolved=2, n_left=0 of n_found=2" in _first_line(info)
    assert "from state.labels n_resolved=0, n_left=2" in _first_line(info)


def test_never_ending_heuristic_fails_within_its_time_limit_and_is_killed(broken):
    # a pure-Python loop that holds the GIL: only killing its process stops it
    with pytest.raises(HeuristicCheckError) as info:
        check_heuristic("resolve", "broken_forever", checks=["bounded", "finite"], time_limit=1.0)
    assert _first_line(info).startswith("check 'bounded' failed on data set 'blobs/before_update'")
    assert "did not return within the 1 s time limit" in _first_line(info)
    assert multiprocessing.active_children() == []


def test_a_dying_process_fails_its_check(broken):
    with pytest.raises(HeuristicCheckError, match=r"data set 'blobs'.*died \(exit code 3\)"):
        check_heuristic("init", "broken_exit", checks=["bounded"])


def test_stale_expected_failure_is_an_error(broken):
    with pytest.raises(HeuristicCheckError, match="passed on every data set .* remove the declaration"):
        check_heuristic("resolve", "broken_declared", checks=["honest_counts"])


def test_in_process_run_reports_the_same(broken):
    (result,) = run_target(prepare("resolve", "broken_dishonest", checks=["honest_counts"]), isolate=False)
    assert (result.status, result.dataset) == ("fail", "blobs/before_update")


def test_expected_failure_is_reported_as_xfail():
    (result,) = run_target(prepare("init", "fairseq", checks=["weights_as_duplicates"]))
    assert result.status == "xfail" and "random by design" in result.reason
    assert not result.failed


def test_a_heuristic_that_passes_returns_normally():
    assert check_heuristic("resolve", "none", checks=["bounded", "honest_counts", "own_generator"]) is None


# ---------------------------------------------------------------- the pytest helper

def test_parametrize_with_checks_gives_one_param_per_heuristic_and_check(broken):
    mark = parametrize_with_checks(["resolve:none", ("init", "fairseq"), ("resolve", "broken_dishonest", {})],
                                   checks=["bounded", "honest_counts", "weights_as_duplicates"])
    argnames, values = mark.args
    assert argnames == "heuristic, check"
    ids = [v.id for v in values]
    assert ids[:3] == ["resolve:none-bounded", "resolve:none-honest_counts", "resolve:none-weights_as_duplicates"]
    assert len(ids) == 9
    by_id = {v.id: v.values for v in values}
    heuristic, check = by_id["resolve:none-honest_counts"]
    check(heuristic)                                                        # passes
    heuristic, check = by_id["init:fairseq-weights_as_duplicates"]
    with pytest.raises(pytest.xfail.Exception, match="random by design"):
        check(heuristic)
    heuristic, check = by_id["resolve:broken_dishonest-honest_counts"]
    with pytest.raises(HeuristicCheckError, match="^check 'honest_counts' failed"):
        check(heuristic)


def test_parametrize_with_checks_skips_cuda_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the check runs (tests/test_conformance.py)")
    (param,) = parametrize_with_checks(["resolve:none"], checks=["same_on_cuda"]).args[1]
    heuristic, check = param.values
    with pytest.raises(pytest.skip.Exception, match="no CUDA device"):
        check(heuristic)


# ---------------------------------------------------------------- the command line

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pgbench", "check", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(TESTS)}, timeout=300)


def test_cli_checks_a_builtin_by_name_and_stage(capsys):
    from pgbench import cli

    assert cli.main(["check", "resolve:none", "--check", "bounded", "--check", "honest_counts"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["PASS", "resolve:none", "bounded"] and out[1].split()[:3] == [
        "PASS", "resolve:none", "honest_counts"]
    assert out[-1] == "2 checks: 2 passed"


def test_cli_name_in_several_stages_checks_each(capsys):
    from pgbench import cli

    assert cli.main(["check", "fairseq", "--check", "weights_as_duplicates"]) == 0
    out = capsys.readouterr().out
    assert "XFAIL  init:fairseq" in out and "PASS   resolve:fairseq" in out


@pytest.mark.parametrize("args, message", [
    (["nope"], "no heuristic named 'nope'"),
    (["init:nope"], "unknown init heuristic 'nope'"),
    (["no_such_module_xyz:pg"], "cannot import module 'no_such_module_xyz'"),
    (["pg", "--stage", "consolidate"], "unknown consolidate heuristic 'pg'"),
    (["resolve:pg", "--param", "max_passes"], "--param expects KEY=VALUE"),
    ([], "name at least one heuristic, or --all"),
])
def test_cli_bad_input_exits_2(capsys, args, message):
    from pgbench import cli

    assert cli.main(["check", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_module_name_imports_the_plugin_and_exits_1_on_failure():
    done = _cli("pgbench_broken:resolve:broken_dishonest", "--check", "honest_counts", "--check", "bounded")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["PASS", "resolve:broken_dishonest", "bounded"]
    assert lines[1].startswith("FAIL   resolve:broken_dishonest  honest_counts")
    assert "on data set 'blobs/before_update'" in lines[1]
    assert lines[-1] == "2 checks: 1 passed, 1 failed"


# ---------------------------------------------------------------- what the battery found in built-ins (pinned)

def _stolen_point_state():
    """21 points: 0, 1/19, ..., 1 and 1.1; centroids 0.5, 1.5 (holding only 1.1) and 50 (empty).

    PG's pass splits the 20-point cluster (S_scl = sqrt(20 * 10)): the 14 points nearest 0 keep
    centroid 0, the other 6 become the rest, whose mean 16.5/19 lands in the reserved slot 2, and
    1.1 is nearer to it (0.23) than to 1.5 (0.4): the split empties cluster 1.
    """
    from pgbench import backends
    from pgbench.state import KMeansState

    X = torch.cat([torch.linspace(0, 1, 20), torch.tensor([1.1])])[:, None]
    state = KMeansState(X, torch.ones(21), torch.tensor([[0.5], [1.5], [50.0]]), backends.torch_assign)
    state.reassign()
    return state


@pytest.mark.parametrize("name", ["fairseq", "pg"])
def test_split_resolvers_count_gross_resolutions(name):
    # a split can empty another cluster: n_resolved counts the empty clusters that now hold
    # points (ResolveOutcome's definition), not n_found - n_left, which can even go below zero
    if name == "fairseq":
        state, params = datasets.resolver_state(datasets.case("identical"), "before_update"), {}
    else:
        state, params = _stolen_point_state(), {"max_passes": 1}
    found = state.empty_ids()
    out = registry.get("resolve", name)(state, torch.Generator().manual_seed(0), **params)
    gross = int((state.counts[found] > 0).sum())
    assert out.n_resolved == gross and out.n_left == state.n_empty
    assert out.n_found - out.n_left != gross          # the case where the two readings differ


def test_faiss_split_of_a_donor_at_the_origin_is_not_counted_as_resolved():
    # few_distinct's first centroid is the point (0, 0): x (1 +- 1/1024) leaves it at 0, so the
    # "split" empty clusters get exactly the stale copy they had
    state = datasets.resolver_state(datasets.case("few_distinct"), "before_update")
    assert state.centroids[0].tolist() == [0.0, 0.0] and state.empty_ids().tolist() == [1, 3, 4]
    out = registry.get("resolve", "faiss")(state, torch.Generator().manual_seed(0))
    assert (out.n_found, out.n_resolved, out.n_left, out.gave_up) == (3, 0, 3, True)


# ---------------------------------------------------------------- the CUDA check and its CPU twin

@pytest.mark.parametrize("stage, name", [("init", "kmeans++"), ("resolve", "pg"), ("consolidate", "dwc")])
def test_device_comparison_cpu_twin_passes_for_builtins(stage, name):
    from pgbench.testing.checks import compare_devices
    from pgbench.testing.subject import Subject

    compare_devices(Subject(stage, name, registry.get(stage, name).bind({})), "cpu")


def test_device_comparison_cpu_twin_catches_a_difference(broken):
    from pgbench.testing.checks import compare_devices
    from pgbench.testing.subject import CheckFailure, Subject

    with pytest.raises(CheckFailure, match="cpu and cpu differ in centroids") as info:
        compare_devices(Subject("init", "broken_global_rng", {}), "cpu")
    assert info.value.dataset == "blobs"



def test_the_guide_example_passes_the_battery(tmp_path, monkeypatch):
    # docs/heuristics.md's first code block is a whole heuristic file: it must pass what the guide says
    import re

    guide = (TESTS.parent / "docs" / "heuristics.md").read_text()
    (tmp_path / "guide_halfway.py").write_text(re.search(r"```python\n(.*?)```", guide, re.S).group(1))
    monkeypatch.syspath_prepend(str(tmp_path))
    import guide_halfway  # noqa: F401  (registers resolve "halfway")

    try:
        check_heuristic("resolve", "halfway")
    finally:
        registry._REGISTRY["resolve"].pop("halfway", None)
        sys.modules.pop("guide_halfway", None)


def test_a_heuristic_editing_its_input_in_process_leaves_the_data_sets_intact(broken):
    far = datasets.case("far_outlier").X.clone()
    (result,) = run_target(prepare("consolidate", "broken_mutates", checks=["input_untouched"]), isolate=False)
    assert result.status == "fail" and torch.equal(datasets.case("far_outlier").X, far)
