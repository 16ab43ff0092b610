"""``pgbench export``: the case table and the per-iteration trace as CSV and Parquet.

Hand-made rows with known JSON go in; CSV must give back the store's JSON text,
Parquet real types (structs for parameters, list<int64> for per-iteration counts),
and the trace one row per case and iteration.
"""

from __future__ import annotations

import csv
import json

import pytest

from pgbench import store as store_mod
from pgbench.cli import main
from pgbench.export import TRACE_KEYS, export, trace_columns
from pgbench.store import COLUMN_NAMES, TRACE_NAMES, Store

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def row(case_id: str, suite: str = "s", **extra) -> dict:
    return {"suite": suite, "case_id": case_id, "method": "pg", "status": "ok", "n": 10, "k": 2, "seed": 0,
            "dataset": "blobs", "init": "pg", "resolve": "pg",
            "params": {"init": {}, "resolve": {"max_passes": 15, "eps": None}},
            "source_params": {"n": 10, "names": "all"}, "versions": {"torch": "2.13.0"},
            "n_empty_per_iter": [1, 0, 0], "n_empty_assigned_per_iter": [2, 1, 0], "rounds_per_iter": [1, 1, 0],
            "inertia": 1.5, **extra}


def trace(n: int, inertia: float = 4.0) -> list[dict]:
    return [{"iteration": i, "n_empty_assigned": n - i, "n_empty_resolved": 0, "n_resolved": 1, "rounds": 2,
             "gave_up": i == 0, "seconds_assign": 0.1, "seconds_resolve": 0.2, "seconds_update": 0.3,
             "inertia": inertia - i} for i in range(n)]


@pytest.fixture
def results(tmp_path):
    with Store(tmp_path / "res") as st:
        st.add(row("a", rel_error=0.25), trace(3))
        st.add(row("b", status="error", error="ValueError: bad", params={"init": {}, "resolve": {"max_passes": 3,
               "eps": 0.5}}, source_params={"n": 12, "names": ["a1", "s2"]}, n_empty_per_iter=None), [])
        st.add(row("c", suite="t", method="fairseq"), trace(2, inertia=9.0))
    return tmp_path / "res"


def test_cases_csv_keeps_the_stores_json_text(results, tmp_path):
    assert export(results, csv_path=tmp_path / "c.csv") == (3, 0)
    with open(tmp_path / "c.csv", newline="") as fh:
        read = list(csv.DictReader(fh))
    assert list(read[0]) == list(COLUMN_NAMES) and [r["case_id"] for r in read] == ["a", "b", "c"]
    assert read[1]["error"] == "ValueError: bad" and read[1]["rel_error"] == "" and read[1]["n_empty_per_iter"] == ""
    assert json.loads(read[0]["params"]) == {"init": {}, "resolve": {"max_passes": 15, "eps": None}}
    assert json.loads(read[0]["n_empty_per_iter"]) == [1, 0, 0]


def test_cases_parquet_has_real_nested_types(results, tmp_path):
    export(results, parquet_path=tmp_path / "c.parquet")
    table = pq.read_table(tmp_path / "c.parquet")
    assert table.column_names == list(COLUMN_NAMES)
    schema = table.schema
    assert schema.field("n").type == pa.int64() and schema.field("inertia").type == pa.float64()
    assert schema.field("n_empty_per_iter").type == pa.list_(pa.int64())
    params = schema.field("params").type
    assert pa.types.is_struct(params) and params.field("resolve").type == pa.struct(
        [("max_passes", pa.int64()), ("eps", pa.float64())])
    assert params.field("init").type == pa.null()                     # an empty object: null
    assert schema.field("versions").type == pa.struct([("torch", pa.string())])
    names = schema.field("source_params").type.field("names")          # "all" here, a list there: JSON text
    assert names.type == pa.string() and names.metadata == {b"encoding": b"json"}
    rows = table.to_pylist()
    assert rows[0]["params"] == {"init": None, "resolve": {"max_passes": 15, "eps": None}}
    assert rows[1]["params"]["resolve"] == {"max_passes": 3, "eps": 0.5}
    assert [r["source_params"]["names"] for r in rows] == ['"all"', '["a1", "s2"]', '"all"']
    assert [r["n_empty_per_iter"] for r in rows] == [[1, 0, 0], None, [1, 0, 0]]
    assert [r["rel_error"] for r in rows] == [0.25, None, None]
    frame = table.to_pandas()                                           # loads as users load it
    assert frame["params"][0]["resolve"]["max_passes"] == 15 and list(frame["n_empty_assigned_per_iter"][2]) == [2, 1, 0]


def test_trace_long_format_csv_and_parquet(results, tmp_path):
    assert export(results, trace_csv=tmp_path / "t.csv", trace_parquet=tmp_path / "t.parquet") == (0, 5)
    names = [n for n, _ in trace_columns()]
    assert names == list(TRACE_KEYS) + list(TRACE_NAMES)
    with open(tmp_path / "t.csv", newline="") as fh:
        read = list(csv.DictReader(fh))
    assert list(read[0]) == names
    assert [(r["case_id"], r["iteration"]) for r in read] == [("a", "0"), ("a", "1"), ("a", "2"), ("c", "0"), ("c", "1")]
    assert [r["method"] for r in read] == ["pg"] * 3 + ["fairseq"] * 2
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.column_names == names
    types = {f.name: f.type for f in table.schema}
    assert types["iteration"] == types["n_empty_assigned"] == types["k"] == pa.int64()
    assert types["inertia"] == types["seconds_assign"] == pa.float64() and types["suite"] == pa.string()
    assert table.column("inertia").to_pylist() == [4.0, 3.0, 2.0, 9.0, 8.0]
    assert table.column("gave_up").to_pylist() == [1, 0, 0, 1, 0]
    assert export(results, suite="t", trace_parquet=tmp_path / "t2.parquet") == (0, 2)
    assert pq.read_table(tmp_path / "t2.parquet").column("case_id").to_pylist() == ["c", "c"]


def test_a_column_declared_in_the_store_is_exported(tmp_path, monkeypatch):
    """The export has no column list of its own: a new store column shows up, typed from its declaration."""
    monkeypatch.setattr(store_mod, "COLUMNS", store_mod.COLUMNS + (("energy_joules", "REAL"),))
    monkeypatch.setattr(store_mod, "COLUMN_NAMES", store_mod.COLUMN_NAMES + ("energy_joules",))
    with Store(tmp_path / "res") as st:
        st.add(row("a", energy_joules=2.5), trace(1))
    export(tmp_path / "res", csv_path=tmp_path / "c.csv", parquet_path=tmp_path / "c.parquet")
    table = pq.read_table(tmp_path / "c.parquet")
    assert table.schema.field("energy_joules").type == pa.float64() and table.column("energy_joules")[0].as_py() == 2.5
    assert (tmp_path / "c.csv").read_text().splitlines()[0].endswith(",energy_joules")


def test_cli_export_trace(results, tmp_path, capsys):
    assert main(["export", str(results), "--trace-csv", str(tmp_path / "t.csv"), "--csv", str(tmp_path / "c.csv")]) == 0
    assert capsys.readouterr().out.startswith("3 cases and 5 trace rows -> ")
    assert main(["export", str(results)]) == 2
    assert "--trace-csv" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "none"), "--trace-parquet", str(tmp_path / "x.parquet")]) == 2
    assert not (tmp_path / "x.parquet").exists()


def test_spooled_cases_are_exported_with_their_trace_and_left_in_the_spool(results, tmp_path):
    """A batch job's spooled case is exported beside the stored ones; export only reads (the spool stays)."""
    spooled = store_mod.write_spool(results, row("d", method="faiss"), trace(2, inertia=7.0))
    n_cases, n_trace = export(results, csv_path=tmp_path / "c.csv", trace_csv=tmp_path / "t.csv")
    assert (n_cases, n_trace) == (4, 3 + 2 + 2)
    with open(tmp_path / "t.csv", newline="") as fh:
        read = list(csv.DictReader(fh))
    assert [(r["case_id"], r["iteration"]) for r in read][-2:] == [("d", "0"), ("d", "1")]
    assert [float(r["inertia"]) for r in read if r["case_id"] == "d"] == [7.0, 6.0]
    assert spooled.is_file()
    import sqlite3

    with sqlite3.connect(store_mod.db_path(results)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM cases WHERE case_id = 'd'").fetchone() == (0,)
