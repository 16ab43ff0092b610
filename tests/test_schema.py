"""One row schema (pgbench/schema.py) and one method name (pgbench/naming.py).

Everything the store, the case id, the report's pairing and compare's matching
use is derived from the one declaration: these tests check that the derived
tuples agree, that every case-id field has a column holding its value, that case
ids did not change, and that an older store migrates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3

import pytest

from pgbench import case as case_mod
from pgbench import export, naming, schema, store
from pgbench.case import Case, canonical_json
from pgbench.report import compare, stats
from pgbench.worker import base_row, run_case

CASE = Case(suite="s", method="pg", source="gaussian_mixture", source_label="g",
            source_params={"n": 200, "d": 2, "n_centers": 4}, dataset="gaussian_mixture-n200-d2-c4", data_seed=0, seed=0,
            init="random", resolve="none", consolidate=None, params={"init": {}, "resolve": {}},
            engine_params={}, n_iter=3, device="cpu", backend=None, dtype="float32", tol=None, k=8,
            timeout=60, n=200, d=2)


# ------------------------------------------------------------------- derivation

def test_derived_tuples_agree_with_the_declaration():
    assert store.COLUMNS == schema.COLUMNS and store.COLUMN_NAMES == schema.COLUMN_NAMES
    assert store.JSON_COLUMNS == schema.JSON_COLUMNS
    assert case_mod.ID_FIELDS == schema.ID_FIELDS and stats.PAIR_FIELDS == schema.PAIR_FIELDS
    assert compare.MATCH_FIELDS == schema.MATCH_FIELDS == ("method", "dataset", "seed")
    assert len(set(schema.COLUMN_NAMES)) == len(schema.COLUMN_NAMES)
    assert set(schema.PAIR_FIELDS) <= set(schema.COLUMN_NAMES) and "method" not in schema.PAIR_FIELDS
    assert all(schema.COLUMNS[schema.COLUMN_NAMES.index(n)][1] == "TEXT" for n in schema.JSON_COLUMNS)
    # the export's types are the declared ones
    assert {c.type for c in schema.CASE_COLUMNS} == {"TEXT", "INTEGER", "REAL"}
    assert dict(export.trace_columns())["k"] == "INTEGER"


def test_every_case_id_field_has_a_column_holding_its_value():
    by_field = {c.case_field: c.name for c in schema.CASE_COLUMNS if c.case_field}
    fields = {f.name for f in dataclasses.fields(Case)}
    assert set(schema.ID_FIELDS) | set(schema.OPTIONAL_ID_FIELDS) <= fields
    assert set(schema.ID_FIELDS) | set(schema.OPTIONAL_ID_FIELDS) == set(by_field)
    assert set(CASE.definition()) == set(schema.ID_FIELDS)         # max_points_per_centroid unset: not hashed
    row = base_row(dataclasses.replace(CASE, tol=1e-4, max_points_per_centroid=64, case_id=""))
    for field, column in by_field.items():
        if field != "source_params":                               # hashed as sources.id_params gives them
            assert row[column] == getattr(dataclasses.replace(CASE, tol=1e-4, max_points_per_centroid=64), field)
    assert "tol" in schema.PAIR_FIELDS


def test_case_ids_did_not_change():
    """The id of a case is the hash of the same 16 fields as before the schema module (and the same for
    max_points_per_centroid when set), so stores written before still resume."""
    old_fields = ("suite", "source", "source_params", "dataset", "data_seed", "seed", "init", "resolve",
                  "consolidate", "params", "n_iter", "device", "backend", "dtype", "tol", "k")
    before = {f: getattr(CASE, f) for f in old_fields}
    assert CASE.case_id == hashlib.sha256(canonical_json(before).encode()).hexdigest()
    capped = dataclasses.replace(CASE, max_points_per_centroid=32, case_id="")
    assert capped.case_id == hashlib.sha256(canonical_json({**before, "max_points_per_centroid": 32}).encode()).hexdigest()
    assert dataclasses.replace(CASE, repeats=5, case_id="").case_id == CASE.case_id      # repeats: not in the id


def test_cases_differing_only_in_tol_differ_in_the_stored_row_and_the_pair_key(tmp_path):
    loose = dataclasses.replace(CASE, tol=1e-2, case_id="")
    assert loose.case_id != CASE.case_id
    with store.Store(tmp_path) as st:
        for c in (CASE, loose):
            st.add(*run_case(c))
        rows = st.rows()
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert sorted((r["tol"] is None, r["tol"]) for r in rows) == [(False, 1e-2), (True, None)]
    assert stats.pair_key(rows[0]) != stats.pair_key(rows[1])


# -------------------------------------------------------------------- migration

def _old_store(path):
    """A schema-1 store: the columns before tol / repeats / *_spread, one case."""
    path.mkdir()
    old = [(n, t) for n, t in schema.COLUMNS
           if n not in ("tol", "repeats", "seconds_spread", "seconds_assign_spread", "seconds_resolve_spread")]
    with sqlite3.connect(path / "results.sqlite") as conn:
        conn.execute(f"CREATE TABLE cases ({', '.join(f'{n} {t}' for n, t in old)})")
        conn.execute(f"CREATE TABLE trace ({', '.join(f'{n} {t}' for n, t in store.TRACE_COLUMNS)}, "
                     "PRIMARY KEY (case_id, iteration)) WITHOUT ROWID")
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO cases (suite, case_id, method, status, seconds_total) VALUES ('s', 'x', 'pg', 'ok', 1.5)")
    conn.close()


def test_an_older_store_reads_without_the_new_columns_and_migrates_when_written(tmp_path):
    _old_store(tmp_path / "old")
    with store.Store(tmp_path / "old", readonly=True) as st:            # read as it is
        (row,) = st.rows()
        assert row["seconds_total"] == 1.5 and row["tol"] is None and row["repeats"] is None
        assert st.trace_rows(keys=("tol",)) == []
    with store.Store(tmp_path / "old") as st:                           # migrated: ALTER TABLE ADD COLUMN
        st.add(base_row(CASE) | {"status": "ok", "seconds_total": 2.0, "seconds_spread": 0.0})
        assert [r["repeats"] for r in st.rows()] == [None, 1]
    with sqlite3.connect(tmp_path / "old" / "results.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == (str(store.SCHEMA_VERSION),)
        assert {"tol", "repeats", "seconds_spread"} <= {r[1] for r in conn.execute("PRAGMA table_info(cases)")}
    conn.close()


def test_a_newer_store_is_refused_in_one_line(tmp_path):
    _old_store(tmp_path / "new")
    with sqlite3.connect(tmp_path / "new" / "results.sqlite") as conn:
        conn.execute("UPDATE meta SET value = ?", (str(store.SCHEMA_VERSION + 1),))
    conn.close()
    with pytest.raises(ValueError, match="newer pgbench"):
        store.Store(tmp_path / "new", readonly=True)


def test_other_tables_are_read_through_the_store(tmp_path):
    with store.Store(tmp_path) as st:
        assert st.table_rows("downstream") is None
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        conn.execute("CREATE TABLE downstream (row_id TEXT PRIMARY KEY, accuracy REAL)")
        conn.execute("INSERT INTO downstream VALUES ('r', 0.5)")
    conn.close()
    with store.Store(tmp_path, readonly=True) as st:
        assert st.table_rows("downstream") == [{"row_id": "r", "accuracy": 0.5}]


# ------------------------------------------------------------------------ names

@pytest.mark.parametrize("parts, name", [
    (("pg", "pg"), "pg + pg"), (("kmeans++", "sklearn"), "kmeans++ + sklearn"),
    (("pg", "pg", "dwc"), "pg + pg + dwc"), ((None, None), "original"),
    (("random", "fairseq", None, {"max_tentatives": 7, "eps": 0.5}), "random + fairseq [eps=0.5,max_tentatives=7]"),
])
def test_method_name(parts, name):
    assert naming.method_name(*parts) == name


@pytest.mark.parametrize("spelling", ["fairseq+fairseq", "fairseq + fairseq", "fairseq/fairseq", "fairseq:fairseq",
                                      " fairseq +fairseq "])
def test_old_spellings_name_the_same_method(spelling):
    assert naming.same_name(spelling, naming.method_name("fairseq", "fairseq"))
    assert not naming.same_name(spelling, "fairseq + pg")


def test_split_name_reads_every_separator():
    assert naming.split_name("kmeans++ + sklearn") == ["kmeans++", "sklearn"]
    assert naming.split_name("pg:pg:dwc") == ["pg", "pg", "dwc"] == naming.split_name("pg/pg/dwc")
    assert naming.same_name("kmeans++/sklearn", "kmeans++ + sklearn")


def test_every_place_names_a_method_the_same_way():
    row = {"init": "pg", "resolve": "pg", "consolidate": "dwc"}
    assert stats.combination(row) == naming.method_name("pg", "pg", "dwc")
    assert stats.combination({**row, "ipq_stages": True}) == "pg + pg + dwc (iPQ stages)"
    pytest.importorskip("transformers")
    from pgbench.glue.quantize import parse_method

    assert parse_method("pg:pg:dwc").name == "pg + pg + dwc" == parse_method("pg + pg + dwc").name


def test_run_selects_a_method_by_an_old_spelling(tmp_path):
    from pgbench.selection import select
    from pgbench.suite import load_suite

    suite_file = tmp_path / "s.toml"
    suite_file.write_text('[[methods]]\ninit = "pg"\nresolve = "pg"\nresolve_params = { max_passes = 3 }\n'
                          '[[methods]]\ninit = "random"\nresolve = "faiss"\n'
                          '[[sources]]\nname = "gaussian_mixture"\n', encoding="utf-8")
    suite = load_suite(suite_file)
    assert [m.label for m in suite.methods] == ["pg + pg [max_passes=3]", "random + faiss"]
    for pattern in ("pg/pg[max_passes=3]", "pg+pg*", "pg:pg*", "pg + pg [max_passes=3]"):
        assert [m.label for m in select(suite, methods=[pattern]).methods] == ["pg + pg [max_passes=3]"], pattern
    assert [m.label for m in select(suite, methods=["random/faiss"]).methods] == ["random + faiss"]


def test_json_columns_round_trip_as_declared(tmp_path):
    with store.Store(tmp_path) as st:
        st.add(*run_case(CASE))
        (row,) = st.rows()
    assert row["status"] == "ok"
    for name, kind in schema.JSON_COLUMNS.items():
        value = json.loads(row[name]) if row[name] is not None else None
        assert value is None or isinstance(value, dict if kind == "object" else list), name


def test_the_report_finds_a_baseline_by_any_spelling():
    from report_rows import case

    from pgbench.report.tables import find_method

    rows = [case("fairseq"), case("faiss"), case("pg")]
    for spelling in ("fairseq+fairseq", "fairseq + fairseq", "fairseq/fairseq", "fairseq:fairseq", "fairseq"):
        assert find_method(rows, spelling) == "fairseq + fairseq", spelling
    assert find_method(rows, "random/faiss") == "random + faiss"
