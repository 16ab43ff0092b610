"""Packaging: the install layout (everything inside ``pgbench``), extras, data discovery, built-in suites.

The wheel itself is built, installed into a fresh venv and run from another folder
by ``.ci/check-wheel`` (``make check-wheel``); these tests pin the declarations it
relies on, so a new subpackage, extra or shipped folder cannot be forgotten.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

import pgbench
from pgbench import extras, paths
from pgbench.cli import main
from pgbench.suite import SuiteError, builtin_suites, load_suite, locate_suite

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def test_every_subpackage_on_disk_is_declared_and_mapped_inside_pgbench():
    on_disk = {"pgbench"} | {f"pgbench.{p.parent.name}" for p in (ROOT / "pgbench").glob("*/__init__.py")}
    mapped = {name: folder for name, folder in SETUPTOOLS["package-dir"].items()}
    assert mapped == {"pgbench.heuristics": "heuristics", "pgbench.suites": "suites",
                      "pgbench.templates": "reports/templates"}
    assert set(SETUPTOOLS["packages"]) == on_disk | set(mapped)
    assert all(name.startswith("pgbench") for name in SETUPTOOLS["packages"])   # no top-level 'heuristics'
    for role, (inside, in_checkout) in paths.SHIPPED.items():
        assert mapped[f"pgbench.{inside}"] == in_checkout, role


def test_shipped_folders_resolve_in_this_checkout():
    assert (paths.shipped("heuristics") / "init_pg.py").is_file()
    assert (paths.shipped("templates") / "report.html.j2").is_file()
    assert {"quick", "ci", "paper", "glue"} <= set(builtin_suites())
    import pgbench.heuristics

    assert Path(pgbench.heuristics.__file__).parent == paths.shipped("heuristics")


def test_package_data_globs_cover_every_shipped_file():
    data = SETUPTOOLS["package-data"]
    for package, folder in (("pgbench.suites", ROOT / "suites"), ("pgbench.templates", ROOT / "reports/templates")):
        files = [p for p in folder.iterdir() if p.is_file()]
        assert files
        for f in files:
            assert any(f.match(glob) for glob in data[package]), f


def test_extras_declared_in_code_match_pyproject():
    declared = PYPROJECT["project"]["optional-dependencies"]
    for extra, modules in extras.EXTRAS.items():
        dists = {re.split(r"[<>=!~\[;]", req)[0].strip() for req in declared[extra]}
        assert dists == set(modules), extra
    core = {re.split(r"[<>=!~\[;]", req)[0].strip() for req in PYPROJECT["project"]["dependencies"]}
    assert core == {"numpy", "torch", "faiss-cpu", "scikit-learn", "safetensors", "tqdm"}
    assert {"report", "parquet", "slurm", "glue", "gpu", "dev", "all"} <= set(declared)


def test_requires_python_excludes_every_version_without_tomllib():
    """The code imports tomllib (stdlib from 3.11); requires-python must not admit 3.10."""
    uses_tomllib = any("import tomllib" in p.read_text() for p in (ROOT / "pgbench").rglob("*.py"))
    spec = SpecifierSet(PYPROJECT["project"]["requires-python"].split("#")[0].strip())
    assert uses_tomllib
    assert "3.10.14" not in spec and "3.11.0" in spec
    assert sys.version_info[:2] >= (3, 11)


def test_version_is_declared_once_and_printed(capsys):
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert SETUPTOOLS["dynamic"]["version"] == {"attr": "pgbench.__version__"}
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pgbench {pgbench.__version__}"


def test_plugin_api_is_exported_from_the_top_level():
    from pgbench import InitOutcome, ResolveOutcome, register  # noqa: F401

    assert {"register", "InitOutcome", "ResolveOutcome"} <= set(pgbench.__all__)


# --------------------------------------------------------------------- built-in suites

def test_a_builtin_suite_is_found_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert locate_suite("quick") == builtin_suites()["quick"]
    assert locate_suite("quick.toml") == builtin_suites()["quick"]
    assert load_suite("ci").name == "ci"


def test_a_file_in_the_working_folder_wins_over_a_builtin_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").write_text('[suite]\nname = "mine"\n')
    assert locate_suite("quick") == Path("quick")


def test_an_unknown_suite_names_the_builtin_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SuiteError, match=r"^nope: no such suite file.*built-in: .*quick"):
        locate_suite("nope")
    with pytest.raises(SuiteError, match="no such suite file"):
        locate_suite("suites/nope.toml")


# ------------------------------------------------------------------------ data root

def test_data_root_comes_from_the_environment_first(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path))
    assert paths.data_root() == tmp_path.resolve()
    assert paths.data_dir("clustering") == tmp_path.resolve() / "clustering"


def test_without_a_data_root_the_error_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    monkeypatch.setattr(paths, "checkout_data", lambda: None)
    assert paths.data_root() is None
    with pytest.raises(ValueError, match=r"no data folder for 'clustering': pass --data DIR or set PGBENCH_DATA"):
        paths.data_dir("clustering")


def test_cli_data_option_reaches_the_clustering_source(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    (tmp_path / "clustering").mkdir()
    (tmp_path / "clustering" / "toy.txt").write_text("0 0\n0 1\n5 5\n5 6\n")
    (tmp_path / "clustering" / "toy_gt.txt").write_text("0 0.5\n5 5.5\n")
    suite = tmp_path / "s.toml"
    suite.write_text('[[methods]]\ninit = "random"\nresolve = "none"\n'
                     '[[sources]]\nname = "clustering_file"\n')
    assert main(["--data", str(tmp_path), "validate", str(suite), "--list"]) == 0
    assert "toy" in capsys.readouterr().out


def test_a_subcommand_option_named_data_is_not_the_data_root(monkeypatch):
    """`glue --data X` is the GLUE folder, not the global `--data` (argparse shares one namespace)."""
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    from pgbench.cli import build_parser

    args = build_parser().parse_args(["glue", "--model", "m", "--task", "SST-2", "--data", "/x/glue"])
    assert args.data == "/x/glue" and args.data_root is None
    args = build_parser().parse_args(["--data", "/x", "list"])
    assert args.data_root == "/x"


def test_data_substitution_in_a_suite(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path))
    (tmp_path / "glue").mkdir()
    suite = tmp_path / "s.toml"
    suite.write_text('[vars]\ng = { default = "${data:glue}" }\n[suite]\ndescription = "${g} and ${data:x}"\n'
                     '[[methods]]\ninit = "random"\nresolve = "none"\n'
                     '[[sources]]\nname = "gaussian_mixture"\nparams = { n = 50, d = 2, n_centers = 2 }\n')
    assert load_suite(suite).description == f"{tmp_path.resolve()}/glue and {tmp_path.resolve()}/x"


def test_an_optional_source_without_data_is_skipped_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    monkeypatch.setattr(paths, "checkout_data", lambda: None)
    from pgbench.cases import expand

    expansion = expand(load_suite("quick"))
    reasons = dict(expansion.skipped)
    assert "pass --data DIR or set PGBENCH_DATA" in reasons["clustering"]
    assert all(c.source != "clustering_file" for c in expansion.cases)


# --------------------------------------------------------------------------- extras

def test_a_command_whose_extra_is_missing_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "seaborn", None)      # find_spec() then reports it absent
    assert main(["report", str(tmp_path / "none"), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "'report' extra" in err and "pip install 'pgbench[report]'" in err and "seaborn" in err


def test_the_core_runs_a_suite_without_any_extra(tmp_path):
    """With every extra's modules made unimportable, `run` works and `export --parquet` names its extra."""
    blocked = [m for modules in extras.EXTRAS.values() for m in modules]
    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nn_iter = 2\n[[methods]]\ninit = "random"\nresolve = "sklearn"\n'
                     '[[sources]]\nname = "gaussian_mixture"\nparams = { n = 200, d = 2, n_centers = 4 }\n')
    code = ("import sys\n"
            f"for m in {blocked!r}: sys.modules[m] = None\n"
            "from pgbench.cli import main\n"
            "rc = main(['run', sys.argv[1], '--results', sys.argv[2], '--executor', 'inline', '--no-progress'])\n"
            "assert rc == 0, rc\n"
            "raise SystemExit(main(['export', sys.argv[2], '--parquet', sys.argv[2] + '/x.parquet']))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(suite), str(tmp_path / "r")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "'parquet' extra" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "r" / "results.sqlite").is_file()
