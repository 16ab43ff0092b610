"""Parameter declarations (pgbench/params.py) and how the registry, ``list`` and suites use them."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest

from pgbench import registry
from pgbench.cli import main
from pgbench.params import Choice, Flag, Int, Real, Typed, declare, infer
from pgbench.state import InitOutcome

TESTS = Path(__file__).resolve().parent
NAN, INF = float("nan"), float("inf")


def problem(p, value) -> str:
    with pytest.raises(ValueError) as info:
        p.check(value)
    return str(info.value)


# ---------------------------------------------------------------- declarations

def test_int_bounds_types_and_64_bits():
    p = Int("n", 3, low=1, high=10)
    assert p.check(1) == 1 and p.check(10) == 10 and type(p.check(__import__("numpy").int64(4))) is int
    assert problem(p, 0) == "must be int in [1, 10], got 0"
    for bad in (11, 1.5, 2.0, True, "3", None):
        problem(p, bad)
    assert "fit in 64 bits" in problem(Int("s", 0, low=0), 2**63)
    assert Int("s", 0, low=0).check(2**63 - 1) == 2**63 - 1
    assert Int("m", None, low=1, none=True).check(None) is None


def test_real_is_finite_and_honours_open_and_closed_bounds():
    assert Real("x", 0.5).check(2) == 2.0 and type(Real("x", 0.5).check(2)) is float
    for bad in (NAN, INF, -INF, True, "1", None):
        assert problem(Real("x", 0.5), bad).startswith("must be finite float, got")
    half_open = Real("eps", 0.1, low=0, high=1, closed="left")
    assert half_open.check(0) == 0.0 and problem(half_open, 1) == "must be finite float in [0, 1), got 1"
    open_ = Real("c", 0.5, low=0, high=1, closed="neither")
    assert problem(open_, 0.0).endswith("got 0.0") and open_.allowed() == "finite float in (0, 1)"
    assert Real("f", 1.0, low=0, closed="neither").allowed() == "finite float > 0"
    assert Real("f", 1.0, high=2, closed="right").allowed() == "finite float <= 2"
    assert problem(Real("f", None, low=0, none=True), NAN) == "must be finite float >= 0 or None, got nan"


def test_choice_flag_typed():
    c = Choice("w", "sum", ("sum", "single"))
    assert c.check("single") == "single" and problem(c, "mean") == "must be one of 'sum', 'single', got 'mean'"
    assert Flag("t", True).check(False) is False and problem(Flag("t", True), 1) == "must be bool, got 1"
    assert Typed("names", "all", types=(str, list)).check(["a"]) == ["a"]
    assert problem(Typed("n", {}, types=(dict,)), True) == "must be dict, got True"


def test_a_default_must_pass_its_own_constraint():
    with pytest.raises(ValueError, match="default of parameter 'n' must be int >= 1, got 0"):
        Int("n", 0, low=1)
    with pytest.raises(ValueError, match="closed"):
        Real("x", 0.5, low=0, closed="open")
    with pytest.raises(ValueError, match="identifier"):
        Int("not a name", 1)


def test_the_dict_of_defaults_form_infers_a_type_only_declaration():
    got = declare({"seconds": 0.0, "n": 3, "on": True, "k": None, "path": "", "table": {}})
    assert [type(p).__name__ for p in got.values()] == ["Real", "Int", "Flag", "Typed", "Typed", "Typed"]
    assert got["k"].check(4) == 4 and got["k"].check(2.5) == 2.5 and got["k"].check(None) is None
    assert "finite" in problem(got["seconds"], NAN) and infer("x", "a").allowed() == "str"
    with pytest.raises(ValueError, match="declared twice"):
        declare([Int("n", 1), Int("n", 2)])


# -------------------------------------------------------------------- registry

def _hooks():
    registry.load_all()
    return [(s, n, registry.get(s, n)) for s in registry.STAGES for n in registry.names(s)]


@pytest.mark.parametrize("stage, name, h", _hooks(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_heuristic_signature_matches_its_declaration(stage, name, h):
    """Parameters keyword-only, no default in the signature, exactly the declared names, in order."""
    sig = inspect.signature(h.func).parameters.values()
    positional = [p for p in sig if p.kind == p.POSITIONAL_OR_KEYWORD]
    keyword = [p for p in sig if p.kind == p.KEYWORD_ONLY]
    assert len(positional) == registry.POSITIONAL[stage] and len(positional) + len(keyword) == len(sig)
    assert [p.name for p in keyword] == list(h.params)
    assert all(p.default is p.empty for p in keyword)
    for p in h.params.values():
        assert p.help and p.check(p.default) == p.default


def test_the_test_plugin_follows_the_same_rules(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    import pgbench_testplugin

    try:
        for stage in ("init", "resolve"):
            h = registry.get(stage, "test_sleep")
            registry.check_signature(stage, h.name, h.func, h.params)
            assert h.defaults == {"seconds": 0.0}
    finally:
        pgbench_testplugin.unregister()


@pytest.mark.parametrize("func, message", [
    (lambda X, weights, k, rng, *, n=3: None, "have a default in the signature"),
    (lambda X, weights, k, rng, *, m: None, "differ from the declared"),
    (lambda X, weights, k, rng, n: None, "4 positional arguments"),
    (lambda X, weights, k, rng, **params: None, "4 positional arguments"),
])
def test_register_refuses_a_signature_that_disagrees_with_the_declaration(func, message):
    with pytest.raises(ValueError, match=message):
        registry.register("init", "test_bad_signature", params=[Int("n", 3, help="x")])(func)
    assert "test_bad_signature" not in registry._REGISTRY["init"]


def test_register_refuses_engine_argument_names():
    with pytest.raises(ValueError, match="tol"):
        registry.register("resolve", "test_tol", params=[Real("tol", 1.0)])


def test_a_plugin_registers_with_declarations_or_a_plain_dict():
    def init_first(X, weights, k, rng, *, scale):
        return InitOutcome(X[:k] * scale)

    try:
        registry.register("init", "test_declared", params=[Real("scale", 1.0, low=0, help="x")])(init_first)
        registry.register("init", "test_plain", params={"scale": 1.0})(init_first)
        assert registry.get("init", "test_declared").bind({"scale": 2}) == {"scale": 2.0}
        with pytest.raises(ValueError, match="'scale' of init heuristic 'test_declared' must be finite float >= 0"):
            registry.get("init", "test_declared").bind({"scale": -1})
        with pytest.raises(ValueError, match="must be finite float, got nan"):
            registry.get("init", "test_plain").bind({"scale": NAN})
    finally:
        registry._REGISTRY["init"].pop("test_declared", None)
        registry._REGISTRY["init"].pop("test_plain", None)


def test_bind_fills_defaults_and_names_everything_on_one_line():
    pg = registry.get("resolve", "pg")
    assert pg.bind({"patience": 5}) == {"max_passes": 15, "patience": 5, "large_factor": 1.0}
    with pytest.raises(ValueError) as info:
        pg.bind({"large_factor": NAN})
    assert str(info.value) == "parameter 'large_factor' of resolve heuristic 'pg' must be finite float > 0, got nan."
    with pytest.raises(ValueError, match="takes no parameter 'passes'"):
        pg.bind({"passes": 3})


def test_calling_a_heuristic_binds_its_parameters():
    import torch

    X = torch.arange(6.0)[:, None]
    out = registry.get("init", "kmeans++")(X, torch.ones(6), 2, torch.Generator().manual_seed(0))
    assert out.info["n_local_trials"] == 2 + int(math.log(2))
    with pytest.raises(ValueError, match="n_local_trials.*got 1.5"):
        registry.get("init", "kmeans++")(X, torch.ones(6), 2, torch.Generator(), n_local_trials=1.5)


# ------------------------------------------------------------------------ list

def test_list_shows_each_parameter_with_default_and_range(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "max_passes=15" in out and "int >= 0" in out and "patience=3" in out
    assert "finite float in (0, 1)" in out and "dwc_weighting='single'" in out and "one of 'single', 'sum'" in out
    for stage, name, h in _hooks():
        for p in h.params.values():
            assert f"{p.name}={p.default!r}" in out and p.help in out


def test_list_json_keeps_its_shape_and_params_adds_the_declarations(capsys):
    assert main(["list", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain == registry.catalogue() and set(plain) == {"init", "resolve", "consolidate"}
    assert main(["list", "--json", "--params"]) == 0
    detail = json.loads(capsys.readouterr().out)
    assert {s: [h["name"] for h in hs] for s, hs in detail.items()} == plain
    faiss = next(h for h in detail["resolve"] if h["name"] == "faiss")
    assert faiss["when"] == "after_update"
    assert faiss["params"][0] == {"name": "eps", "default": 1 / 1024, "allowed": "finite float in [0, 1)",
                                  "help": registry.get("resolve", "faiss").params["eps"].help}


# ---------------------------------------------------------------------- suites

SUITE = """
[suite]
name = "bad-param"
seeds = [0]
n_iter = 2
imports = ["pgbench_testplugin"]

[[methods]]
label = "m"
init = "{init}"
resolve = "{resolve}"
consolidate = "{consolidate}"
{stage}_params = {{ {param} = {value} }}

[[sources]]
name = "tiny"
"""


@pytest.mark.parametrize("stage, name, param, value, shown", [
    ("resolve", "pg", "max_passes", "-1", "-1"),
    ("resolve", "pg", "patience", "0", "0"),
    ("resolve", "pg", "large_factor", "nan", "nan"),
    ("resolve", "fairseq", "eps", "inf", "inf"),
    ("resolve", "fairseq", "max_tentatives", "-1", "-1"),
    ("resolve", "faiss", "eps", "-0.5", "-0.5"),
    ("resolve", "faiss", "max_visits", "-1", "-1"),
    ("init", "kmeans++", "n_local_trials", "1.5", "1.5"),
    ("init", "bisecting", "largest_by", "'inertia'", "'inertia'"),
    ("consolidate", "dwc", "dwc_eps", "-1.0", "-1.0"),
    ("consolidate", "dwc", "c_sd", "1.0", "1.0"),
])
def test_validate_and_run_refuse_an_out_of_range_parameter_before_any_work(plugin, tmp_path, capsys, stage, name,
                                                                            param, value, shown):
    picked = {"init": "random", "resolve": "none", "consolidate": "none", stage: name}
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE.format(**picked, stage=stage, param=param, value=value))
    expected = f"parameter '{param}' of {stage} heuristic '{name}' must be "
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err and f"got {shown}" in err and str(suite) in err
    res = tmp_path / "res"
    assert main(["run", str(suite), "--results", str(res), "--executor", "inline", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err and "Traceback" not in err
    assert not res.exists()
