"""The built-in ``field`` suite: its methods, and the report showing them after a run."""

from __future__ import annotations

import tomllib

from pgbench.cli import main
from pgbench.cases import expand
from pgbench.suite import builtin_suites, load_suite

NEW = {"kmeans-parallel": ("kmeans-parallel", "sklearn"), "afkmc2": ("afkmc2", "sklearn"),
       "kmeans++-plain": ("kmeans++", "sklearn"), "restart": ("fairseq", "restart")}
REFERENCES = {"sklearn": ("kmeans++", "sklearn"), "fairseq": ("fairseq", "fairseq")}


def test_field_is_built_in_and_pairs_each_new_heuristic_with_its_reference():
    path = builtin_suites()["field"]
    expansion = expand(load_suite(path))
    methods = {m["label"]: (m["init"], m["resolve"]) for m in tomllib.loads(path.read_text())["methods"]}
    assert {"pg", "pg-full", "fairseq", "sklearn", "faiss"} <= set(methods)          # quick.toml's methods
    assert {label: methods[label] for label in NEW} == NEW                             # one stage changed ...
    assert {label: methods[label] for label in REFERENCES} == REFERENCES               # ... from these
    assert len(expansion.cases) >= 9 * 6 * 5             # 9 methods x 6 synthetic families x 5 seeds at least


def test_a_run_of_fields_methods_shows_them_in_the_report(tmp_path, capsys):
    field = tomllib.loads(builtin_suites()["field"].read_text())
    lines = ['[suite]\nname = "field-mini"\nseeds = [0]\nn_iter = 5\n']
    for m in field["methods"]:
        keys = "".join(f'{key} = "{value}"\n' for key, value in m.items() if isinstance(value, str))
        params = "".join(f"{key} = {{ {', '.join(f'{k} = {v}' for k, v in value.items())} }}\n"
                         for key, value in m.items() if isinstance(value, dict))
        lines.append(f"[[methods]]\n{keys}{params}")
    lines.append('[[sources]]\nname = "duplicates"\nparams = { n = 600, d = 4, k = 32 }\n')
    suite = tmp_path / "mini.toml"
    suite.write_text("\n".join(lines))
    results, html = tmp_path / "res", tmp_path / "r.html"
    assert main(["run", str(suite), "--results", str(results), "--executor", "inline", "--no-progress"]) == 0
    assert "9 cases" in capsys.readouterr().out
    assert main(["report", str(results), "-o", str(html)]) == 0
    page = html.read_text(encoding="utf-8")
    for shown in ("kmeans-parallel + sklearn", "afkmc2 + sklearn", "fairseq + restart", "[kmeans++-plain]"):
        assert shown in page, shown
