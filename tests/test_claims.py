"""Concurrent runs share the work: SQLite leases on one machine, claim files in the spool for batch tasks.

The tests count computations (the test plugin's ``test_count`` heuristic notes each
one in a file), not stored rows: rows are deduplicated by the store anyway.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pgbench.cases import expand
from pgbench.claims import BUSY, CLAIMED, DONE, CaseQueue, LeaseTable, SpoolClaims, StoreQueue, reopen_spool_claims
from pgbench.runner import run_suite
from pgbench.store import Store, write_spool
from pgbench.suite import load_suite
from procs import start, wait_until

COUNTED = """
[suite]
name = "counted"
seeds = [0, 1]
n_iter = 2
timeout = 120
imports = ["pgbench_testplugin"]
[[methods]]
label = "count"
init = "test_count"
resolve = "none"
[[sources]]
name = "tiny"
params = { n_sets = 6 }
"""


def computations(log: Path) -> dict[str, list[str]]:
    from pgbench_testplugin import computations as read

    return read(str(log))


def counted_suite(tmp_path: Path, n_sets: int = 6, seeds: str = "[0, 1]") -> Path:
    path = tmp_path / "counted.toml"
    path.write_text(COUNTED.replace("n_sets = 6", f"n_sets = {n_sets}").replace("seeds = [0, 1]", f"seeds = {seeds}"))
    return path


def stored_ids(results: Path) -> list[str]:
    with Store(results) as st:
        return [r["case_id"] for r in st.rows()]


def run_env(log: Path, run: str, **extra: str) -> dict[str, str]:
    return {"PGBENCH_TEST_COUNT": str(log), "PGBENCH_TEST_RUN": run, **extra}


# ------------------------------------------------------------------ two processes

def test_two_concurrent_runs_compute_each_case_once(plugin, tmp_path):
    suite, results, log = counted_suite(tmp_path), tmp_path / "res", tmp_path / "computed.log"
    expected = {c.case_id for c in expand(load_suite(suite)).cases}
    assert len(expected) == 12
    args = ["run", str(suite), "--results", str(results), "--no-progress"]
    # each run's first computation waits until both runs compute: they overlap whatever their start-up
    procs = {name: start(args, run_env(log, name, PGBENCH_TEST_PEERS="2")) for name in ("A", "B")}
    outs = {name: p.communicate(timeout=300) for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, outs[name][1]
        assert "counted: 12 cases: ok 12" in outs[name][0]          # each run ends with the whole suite
    done = computations(log)
    assert set(done) == {"A", "B"} and all(done.values())              # both took a share
    markers = done["A"] + done["B"]
    assert len(markers) == len(set(markers)) == 12                      # each case computed exactly once
    ids = stored_ids(results)
    assert len(ids) == len(set(ids)) == 12 and set(ids) == expected


def test_a_killed_runs_claimed_case_is_redone_by_the_other(plugin, tmp_path):
    suite, results, log, gate = counted_suite(tmp_path), tmp_path / "res", tmp_path / "computed.log", tmp_path / "gate"
    gate.touch()
    args = ["run", str(suite), "--results", str(results), "--no-progress"]
    a = start(args, run_env(log, "A", PGBENCH_TEST_GATE=str(gate)), new_session=True)   # blocks in its first case
    wait_until(lambda: computations(log).get("A") or a.poll() is not None, what="run A's first case")
    assert a.poll() is None, a.communicate()[1]
    b = start(args, run_env(log, "B"))
    wait_until(lambda: len(computations(log).get("B", [])) == 11 or b.poll() is not None, what="run B's share")
    assert b.poll() is None, "run B finished although run A still held a case"
    os.killpg(a.pid, signal.SIGKILL)          # the run, its forkserver and its worker
    a.wait(timeout=30)                        # reaped: its pid is dead, so B takes over at once
    out, err = b.communicate(timeout=120)
    assert b.returncode == 0, err
    assert "counted: 12 cases: ok 12" in out
    done = computations(log)
    assert len(done["A"]) == 1 and done["A"][0] in done["B"]            # A's claimed case, redone by B
    assert len(done["B"]) == len(set(done["B"])) == 12
    ids = stored_ids(results)
    assert len(ids) == len(set(ids)) == 12
    with Store(results) as st:
        assert st._conn.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0   # nothing left claimed


# ------------------------------------------------------------------ SQLite leases

class FakeCase:
    def __init__(self, case_id: str, key: str = "data"):
        self.case_id, self.data_key, self.timeout = case_id, key, 60.0


def store_row(results: Path, case_id: str) -> None:
    with Store(results) as st:
        st.add({"suite": "s", "case_id": case_id, "status": "ok"})


def test_lease_is_busy_while_fresh_and_taken_over_after_the_lease(tmp_path):
    Store(tmp_path).close()
    with LeaseTable(tmp_path) as leases:
        leases._conn.execute("INSERT INTO leases VALUES ('x', 'elsewhere:1:t', ?)", (time.time(),))
        assert leases.claim("x", "me:2:t", lease_s=60) == BUSY
        leases._conn.execute("UPDATE leases SET heartbeat = ?", (time.time() - 61,))
        assert leases.claim("x", "me:2:t", lease_s=60) == CLAIMED
        assert leases.claim("x", "other:3:t", lease_s=60) == BUSY        # fresh again, now ours
        store_row(tmp_path, "x")
        assert leases.claim("x", "other:3:t", lease_s=60) == DONE


def test_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    import socket

    dead = subprocess.Popen(["true"])
    dead.wait()
    Store(tmp_path).close()
    with LeaseTable(tmp_path) as leases:
        leases._conn.execute("INSERT INTO leases VALUES ('x', ?, ?)", (f"{socket.gethostname()}:{dead.pid}:t",
                                                                        time.time()))
        assert leases.claim("x", "me:2:t", lease_s=3600) == CLAIMED


def test_store_queues_split_cases_and_wait_for_each_other(tmp_path):
    Store(tmp_path).close()
    cases = [FakeCase(f"c{i}") for i in range(3)]
    with StoreQueue(cases, tmp_path) as a, StoreQueue(cases, tmp_path) as b:
        a.poll_s = b.poll_s = 0.0
        assert a.take().case_id == "c0" and b.take().case_id == "c1" and a.take().case_id == "c2"
        assert b.take() is None and len(b) == 2                    # c0 and c2 are a's: b waits for them
        store_row(tmp_path, "c0")
        a.finish("c0")
        assert b.take() is None and len(b) == 1                    # c0 is done; c2 still a's
        a.close()                                                  # a stops without storing c2: b takes it
        assert b.take().case_id == "c2" and len(b) == 0


def test_a_plain_list_is_a_queue_that_claims_nothing():
    q = CaseQueue([FakeCase("a", "k1"), FakeCase("b", "k2"), FakeCase("c", "k1")])
    assert [q.take("k1").case_id, q.take("k1").case_id, q.take("k1").case_id] == ["a", "c", "b"]
    assert q.take() is None and len(q) == 0


# -------------------------------------------------------------------- spool claims

def _claim_all(results: str, ids: list[str], seed: int) -> list[str]:
    claims = SpoolClaims(results)
    order = list(ids)
    random.Random(seed).shuffle(order)
    return [i for i in order if claims.claim(i) == CLAIMED]


def test_spool_claims_are_exclusive_under_races(tmp_path):
    ids = [f"case{i:02d}" for i in range(40)]
    with multiprocessing.get_context("fork").Pool(6) as pool:
        won = pool.starmap(_claim_all, [(str(tmp_path), ids, seed) for seed in range(6)])
    flat = [i for w in won for i in w]
    assert sorted(flat) == ids                                  # every case claimed, each by one process


def test_spool_claim_lifecycle(tmp_path):
    a, b = SpoolClaims(tmp_path), SpoolClaims(tmp_path)
    assert a.claim("x") == CLAIMED and b.claim("x") == BUSY
    stale = time.time() - 400
    os.utime(a.held["x"], (stale, stale))                       # a stopped beating (another node)
    assert b.claim("x") == CLAIMED and b.held["x"].name == "x.1"  # taken over: the next generation
    assert a.claim("x") == BUSY
    b.finish("x")
    assert a.claim("x") == DONE and b.claim("x") == DONE and not b.held
    assert sorted(p.name for p in a.dir.iterdir()) == ["x.done"]
    a.claim("y")
    a.release_all()
    assert b.claim("y") == CLAIMED                               # given back: no need to wait for the lease


def test_reopen_removes_done_markers_of_lost_results_only(tmp_path):
    claims = SpoolClaims(tmp_path)
    for cid in ("stored", "spooled", "lost"):
        claims.claim(cid)
        claims.finish(cid)
    write_spool(tmp_path, {"case_id": "spooled"}, [])
    assert reopen_spool_claims(tmp_path, ["stored", "spooled", "lost"], stored=lambda cid: cid == "stored") == 1
    assert [claims.claim(c) for c in ("stored", "spooled", "lost")] == [DONE, DONE, CLAIMED]


def test_slurm_tasks_leave_live_claims_and_take_over_stale_ones(plugin, tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    log = tmp_path / "computed.log"
    monkeypatch.setenv("PGBENCH_TEST_COUNT", str(log))
    suite = load_suite(counted_suite(tmp_path, n_sets=3, seeds="[0]"))
    expansion, results = expand(suite), tmp_path / "res"
    held = SpoolClaims(results, owner="elsewhere:1:t")             # a live task on another node
    assert held.claim(expansion.cases[1].case_id) == CLAIMED
    first = run_suite(expansion, results, executor="slurm", slurm={"cases_per_task": 3}, cluster="local")
    assert first.ran == 2 and first.missing == 1 and len(computations(log)["-"]) == 2
    stale = time.time() - 400                                      # that node died long ago
    os.utime(held.held[expansion.cases[1].case_id], (stale, stale))
    second = run_suite(expansion, results, executor="slurm", slurm={"cases_per_task": 3}, cluster="local")
    assert second.ran == 1 and second.missing == 0 and second.counts == {"ok": 3}
    markers = computations(log)["-"]
    assert len(markers) == len(set(markers)) == 3
