"""Random malformed suites through ``validate`` and ``run`` (in-process, pgbench.cli.main).

Two properties:

* a suite made invalid on purpose (an unknown key in any table, a wrongly typed or
  out-of-range value for a checked key, a required key removed) exits 2 with one
  line from ``validate`` and from ``run``, and ``run`` creates no store;
* a suite with random keys, types and values put anywhere (valid or not) never
  lets an exception out of main, never shows a traceback, and ``validate`` exits
  0 or 2 (2 with one line).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_bad_inputs_cli import run_main

BASE = {
    "suite": {"name": "fz", "seeds": [0], "n_iter": 2, "timeout": 60},
    "methods": [{"label": "pg", "init": "pg", "resolve": "pg"}],
    "sources": [{"name": "gaussian_mixture", "params": {"n": 40, "n_centers": 3}}],
}
#: keys each table accepts (mirrors pgbench.suite; a key outside these is an error)
ALLOWED = {
    (): ("suite", "vars", "methods", "sources", "cases", "slurm", "downstream"),
    ("suite",): ("name", "description", "seeds", "n_iter", "device", "timeout", "k", "backend", "dtype", "tol",
                 "imports"),
    ("methods", 0): ("label", "init", "resolve", "consolidate", "init_params", "resolve_params",
                     "consolidate_params"),
    ("sources", 0): ("name", "label", "params", "grid", "k", "seeds", "data_seed", "timeout", "optional"),
    ("sources", 0, "params"): ("n", "d", "n_centers", "spread", "std", "k"),
    ("methods", 0, "resolve_params"): ("max_passes", "patience", "large_factor"),
}
#: never generated as random keys: importing arbitrary modules, or the slow downstream (GLUE) parser
UNSAFE_KEYS = {"imports", "downstream"}


# ------------------------------------------------------------------------ TOML writer

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict) -> str:
    return "".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}\n" for k, v in doc.items())


# ------------------------------------------------------------------------ strategies

names = st.sampled_from(["pg", "random", "fairseq", "faiss", "sklearn", "kmeans++", "none", "*", "dwc",
                         "gaussian_mixture", "cpu", "cuda", "float32", "${x}", "${package:nope}", ""])
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x7f"), max_size=8)
leaves = st.one_of(st.integers(-3, 300), st.integers(min_value=2**62, max_value=2**66), st.floats(), st.booleans(),
                   texts, names)
values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(texts, inner, max_size=3)), max_leaves=6)
keys = st.one_of(texts, st.sampled_from(sorted({k for ks in ALLOWED.values() for k in ks}))).filter(
    lambda k: k not in UNSAFE_KEYS)


def table_at(doc: dict, where: tuple) -> dict | None:
    """The table at ``where`` (made when missing), or None where an earlier change replaced a step."""
    node = doc
    for step in where:
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and len(node) > step else None
        else:
            node = node.setdefault(step, {}) if isinstance(node, dict) else None
        if node is None:
            return None
    return node if isinstance(node, dict) else None


def fresh() -> dict:
    return json.loads(json.dumps(BASE))


def not_int_from(low: int):
    return st.one_of(texts, st.floats(), st.booleans(), st.integers(max_value=low - 1),
                     st.integers(min_value=2**63, max_value=2**70), st.lists(st.integers(), max_size=2))


#: (table, key, values that are wrong there)
WRONG = [
    (("suite",), "seeds", st.one_of(texts, st.floats(), st.booleans(), st.just([]), st.lists(not_int_from(0),
                                                                                             min_size=1, max_size=2))),
    (("suite",), "n_iter", not_int_from(1)),
    (("suite",), "k", not_int_from(1)),
    (("suite",), "timeout", st.one_of(texts, st.booleans(), st.floats(max_value=0.0), st.floats(min_value=3e6),
                                      st.just(float("nan")), st.integers(max_value=0))),
    (("suite",), "tol", st.one_of(texts, st.booleans(), st.floats(max_value=-1e-9), st.just(float("nan")))),
    (("suite",), "device", st.one_of(texts.filter(lambda t: t not in ("cpu", "cuda") and not t.startswith("cuda:")),
                                     st.integers(), st.booleans())),
    (("suite",), "dtype", st.one_of(texts.filter(lambda t: t not in ("float32", "float64")), st.integers())),
    (("suite",), "backend", st.one_of(texts.filter(lambda t: t not in ("torch", "faiss")), st.integers())),
    (("suite",), "name", st.one_of(st.just(""), st.integers(), st.booleans(), st.lists(texts, max_size=2))),
    (("methods", 0), "init", st.one_of(st.integers(), st.booleans(), st.just([]), st.floats(),
                                       texts.map(lambda t: "zz_" + t))),
    (("methods", 0), "resolve", st.one_of(st.integers(), st.just([]), texts.map(lambda t: "zz_" + t))),
    (("sources", 0), "name", st.one_of(st.integers(), st.booleans(), texts.map(lambda t: "zz_" + t))),
    (("sources", 0), "seeds", st.one_of(texts, st.just([]), st.lists(not_int_from(0), min_size=1, max_size=2))),
    (("sources", 0), "timeout", st.one_of(texts, st.floats(max_value=0.0), st.just(float("inf")))),
]
REQUIRED = [((), "methods"), ((), "sources"), (("methods", 0), "init"), (("methods", 0), "resolve"),
            (("sources", 0), "name")]


@st.composite
def invalid_suites(draw) -> dict:
    doc = fresh()
    kind = draw(st.sampled_from(["unknown-key", "wrong-value", "missing"]))
    if kind == "unknown-key":
        where = draw(st.sampled_from(sorted(ALLOWED, key=str)))
        key = draw(keys.filter(lambda k: k not in ALLOWED[where]))
        table_at(doc, where)[key] = draw(values)
    elif kind == "wrong-value":
        where, key, wrong = draw(st.sampled_from(WRONG))
        table_at(doc, where)[key] = draw(wrong)
    else:
        where, key = draw(st.sampled_from(REQUIRED))
        del table_at(doc, where)[key]
    return doc


@st.composite
def random_suites(draw) -> dict:
    doc = fresh()
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(sorted(ALLOWED, key=str)))
        table = table_at(doc, where)
        if table is None:
            continue
        if table and draw(st.booleans()):
            del table[draw(st.sampled_from(sorted(table)))]
        else:
            table[draw(keys)] = draw(values)
    return doc


def write(tmp: Path, doc: dict) -> Path:
    path = tmp / "fuzz.toml"
    path.write_text(to_toml(doc), encoding="utf-8")
    return path


def one_line(err: str) -> bool:
    lines = [line for line in err.splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("pgbench ")


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@FUZZ
@given(doc=invalid_suites())
def test_invalid_suites_exit_2_in_one_line_and_run_stores_nothing(doc, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fz")
    suite = write(tmp, doc)
    for argv in (["validate", str(suite)],
                 ["run", str(suite), "--results", str(tmp / "res"), "--executor", "inline", "--no-progress"]):
        out = run_main(argv)
        assert out.escaped is None and "Traceback" not in out.stderr, (argv[0], out.escaped or out.stderr)
        assert out.status == 2 and one_line(out.stderr), (argv[0], to_toml(doc), out.status, out.stderr)
    assert not (tmp / "res").exists()


@FUZZ
@given(doc=random_suites())
def test_random_suites_never_escape_main(doc, tmp_path_factory):
    out = run_main(["validate", str(write(tmp_path_factory.mktemp("fz"), doc))])
    assert out.escaped is None and "Traceback" not in out.stderr, out.escaped or out.stderr
    assert out.status in (0, 2), (to_toml(doc), out.status, out.stderr)
    assert out.status == 0 or one_line(out.stderr), (to_toml(doc), out.stderr)


def test_the_writer_round_trips():
    import tomllib

    doc = {**fresh(), "x": {"a b": [1.5, float("inf"), "q\"\\\n", True]}}
    back = tomllib.loads(to_toml(doc))
    assert back["suite"] == doc["suite"] and back["x"]["a b"][1] == float("inf") and back["x"]["a b"][2] == "q\"\\\n"
