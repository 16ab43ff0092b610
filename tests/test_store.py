"""The SQLite result store: atomic, idempotent inserts, concurrent writers, spool (export: test_export)."""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import sqlite3

import pytest

from pgbench import store as store_mod
from pgbench.store import COLUMN_NAMES, Store, read_spool, write_spool


def row(case_id: str, suite: str = "s", status: str = "ok", **extra) -> dict:
    return {"suite": suite, "case_id": case_id, "method": "pg", "status": status, "n": 10, "k": 2,
            "params": {"resolve": {"max_passes": 15}}, "n_empty_per_iter": [1, 0, 0], "inertia": 1.5, **extra}


def trace(n: int = 3) -> list[dict]:
    return [{"iteration": i, "n_empty_assigned": 1, "n_empty_resolved": 0, "n_resolved": 1, "rounds": 2,
             "gave_up": False, "seconds_assign": 0.1, "seconds_resolve": 0.2, "seconds_update": 0.3,
             "inertia": 4.0} for i in range(n)]


def test_add_is_idempotent_and_atomic(tmp_path):
    with Store(tmp_path) as st:
        assert st.path == tmp_path / "results.sqlite"
        assert st._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert st.add(row("a"), trace()) is True
        assert st.add(row("a", status="error"), trace(5)) is False          # first write wins, once
        assert st.done_ids() == {"a"} and st.done_ids("other") == set()
        got = st.rows()
        assert len(got) == 1 and list(got[0]) == list(COLUMN_NAMES)
        assert got[0]["status"] == "ok"
        assert json.loads(got[0]["n_empty_per_iter"]) == [1, 0, 0]
        assert json.loads(got[0]["params"]) == {"resolve": {"max_passes": 15}}
        assert len(st.trace("a")) == 3 and st.trace("a")[0]["gave_up"] == 0
        with pytest.raises(ValueError, match="unknown column"):
            st.add({**row("b"), "colour": 1})
        assert st.done_ids() == {"a"}
        assert st.status_counts(["a", "zzz"]) == {"ok": 1}


def test_forget_deletes_rows_and_traces(tmp_path):
    with Store(tmp_path) as st:
        st.add(row("a"), trace())
        st.add(row("b", status="timeout"), [])
        st.add(row("c", status="error"), trace(1))
        assert st.forget(["a", "b", "c"], ["error", "timeout"]) == 2
        assert st.done_ids() == {"a"} and st.trace("c") == []


def test_reopen_keeps_rows_and_adds_missing_columns(tmp_path):
    db = tmp_path / "results.sqlite"
    old = sqlite3.connect(db)          # a store from an older pgbench, lacking most columns
    old.execute("CREATE TABLE cases (suite TEXT NOT NULL, case_id TEXT PRIMARY KEY, status TEXT NOT NULL)")
    old.execute("INSERT INTO cases VALUES ('s', 'old', 'ok')")
    old.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")    # every pgbench store has it
    old.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    old.commit()
    old.close()
    with Store(db) as st:               # the .sqlite path works as well as the folder
        assert st.add(row("new"))
        assert {r["case_id"] for r in st.rows()} == {"old", "new"}


def test_an_older_trace_table_gains_the_work_columns(tmp_path):
    db = tmp_path / "results.sqlite"
    old = sqlite3.connect(db)          # a trace table from before resolve_distance_evals existed
    names = [n for n in store_mod.TRACE_NAMES if n not in ("resolve_distance_evals", "resolve_assign_passes")]
    old.execute(f"CREATE TABLE trace ({', '.join(names)}, PRIMARY KEY (case_id, iteration)) WITHOUT ROWID")
    old.execute(f"INSERT INTO trace ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                ["old", 0] + [0] * (len(names) - 2))
    old.commit()
    old.close()
    work = [{**t, "resolve_distance_evals": 600, "resolve_assign_passes": 2} for t in trace(2)]
    with Store(db) as st:
        assert st.add(row("new", resolve_distance_evals=1200, resolve_assign_passes=4, n_points=10,
                          n_consolidated_points=0, n_groups=0), work)
        assert [t["resolve_distance_evals"] for t in st.trace("new")] == [600, 600]
        assert st.trace("old")[0]["resolve_assign_passes"] is None
        new = next(r for r in st.rows() if r["case_id"] == "new")
        assert (new["resolve_distance_evals"], new["resolve_assign_passes"], new["eps_final"]) == (1200, 4, None)
        assert st.add(row("spooled-before"), trace(1))                  # trace dicts without the new keys
        assert st.trace("spooled-before")[0]["resolve_distance_evals"] is None


def _writer(results_dir: str, ids: list[str], barrier) -> None:
    with Store(results_dir, busy_timeout_s=60) as st:
        barrier.wait()
        for case_id in ids:
            st.add(row(case_id), trace())


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path):
    shared = [f"shared-{i}" for i in range(40)]
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = []
    for w in range(4):
        ids = shared + [f"own-{w}-{i}" for i in range(5)]
        random.Random(w).shuffle(ids)
        procs.append(ctx.Process(target=_writer, args=(str(tmp_path), ids, barrier)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with Store(tmp_path) as st:
        ids = [r["case_id"] for r in st.rows()]
        assert len(ids) == len(set(ids)) == 40 + 4 * 5
        n_trace = st._conn.execute("SELECT COUNT(*) FROM trace").fetchone()[0]
        assert n_trace == 3 * len(ids)                     # the losing writers added no trace rows


def test_spool_round_trip(tmp_path):
    write_spool(tmp_path, row("a"), trace())
    write_spool(tmp_path, row("b"), [])
    (tmp_path / "spool" / "broken.json").write_text("{not json")
    (tmp_path / "spool" / ".c.123.tmp").write_text("half written")         # a writer killed mid-file
    with Store(tmp_path) as st:
        st.add(row("a"), trace())                                          # already stored: ignored
        assert st.ingest_spool() == 1
        assert st.done_ids() == {"a", "b"} and len(st.trace("a")) == 3
    assert sorted(p.name for p in (tmp_path / "spool").iterdir()) == [".c.123.tmp", "broken.bad"]
    assert list(read_spool(tmp_path)) == []


def test_missing_store_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no result store here"):
        Store(tmp_path / "none", create=False)
    assert store_mod.db_path(tmp_path / "x.sqlite") == tmp_path / "x.sqlite"
