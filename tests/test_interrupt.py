"""Ctrl-C exits 130 wherever it lands: suite loading, a running case, the summary, the interpreter's shut-down.

Each test holds a real ``python -m pgbench run`` at one point (a gate of the test
plugin, or a full stdout pipe) and sends it SIGINT there, so "finished before the
signal" and "wrong exit status" are told apart; a sweep then interrupts short runs
at several delays.  The children get the default SIGINT disposition (tests/procs.py).
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from procs import rows_in, start, wait_until

SUITE = """
[suite]
name = "intr"
seeds = [0, 1]
n_iter = 2
timeout = 120
imports = ["pgbench_testplugin"]
[[methods]]
label = "slow"
init = "test_sleep"
resolve = "none"
init_params = { seconds = 0.2 }
[[sources]]
name = "tiny"
params = { n_sets = 4 }
"""
N_CASES = 8


@pytest.fixture
def run_args(plugin, tmp_path):
    suite = tmp_path / "intr.toml"
    suite.write_text(SUITE)
    return ["run", str(suite), "--results", str(tmp_path / "res"), "--no-progress"]


def alive(pid: int) -> bool:
    """Not exited yet (the child is not reaped, so it stays visible as a zombie once it has)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


def assert_interrupted(rc: int, err: str) -> None:
    assert rc == 130, f"exit status {rc} after Ctrl-C; stderr:\n{err}"
    assert "Traceback" not in err, err
    assert [line for line in err.splitlines() if "interrupted" in line], err


def interrupt_at_gate(args: list[str], tmp_path: Path, variable: str) -> tuple[int, str]:
    gate = tmp_path / f"{variable}.gate"
    gate.touch()
    proc = start(args, {variable: str(gate)})
    wait_until(lambda: Path(f"{gate}.reached").exists() or proc.poll() is not None, what=f"the {variable} gate")
    if proc.poll() is not None:
        pytest.fail(f"finished (status {proc.returncode}) before reaching the gate: {proc.communicate()[1]}")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    return proc.returncode, err


def test_ctrl_c_while_the_suite_loads(run_args, tmp_path):
    rc, err = interrupt_at_gate(run_args, tmp_path, "PGBENCH_TEST_LOAD_GATE")
    assert_interrupted(rc, err)
    assert not (tmp_path / "res").exists()               # nothing written


def test_ctrl_c_while_a_case_runs_then_resume(run_args, tmp_path):
    suite = run_args[1]
    text = Path(suite).read_text().replace('init = "test_sleep"', 'init = "test_count"')
    Path(suite).write_text(text.replace("init_params = { seconds = 0.2 }\n", ""))
    rc, err = interrupt_at_gate(run_args, tmp_path, "PGBENCH_TEST_GATE")
    assert_interrupted(rc, err)
    assert "run the same command again to resume" in err
    assert rows_in(tmp_path / "res" / "results.sqlite") == 0      # the case in flight is not kept
    again = start(run_args)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert f"intr: {N_CASES} cases: ok {N_CASES}" in out


def test_ctrl_c_while_the_summary_prints(run_args, tmp_path):
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, 1031, 4096)                    # F_SETPIPE_SZ: a one-page pipe ...
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"x" * 4096)              # ... filled up, so the summary's print blocks
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    proc = start(run_args, {"PYTHONUNBUFFERED": "1"}, stdout=write_end)
    os.close(write_end)
    wchan = Path(f"/proc/{proc.pid}/wchan")
    wait_until(lambda: rows_in(tmp_path / "res" / "results.sqlite") == N_CASES or proc.poll() is not None,
               what="the run's last case")
    wait_until(lambda: "pipe" in wchan.read_text() or proc.poll() is not None, timeout_s=30,
               what="the summary's print to block")
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    drained = threading.Thread(target=lambda: [None for _ in iter(lambda: os.read(read_end, 65536), b"")])
    drained.start()
    _, err = proc.communicate(timeout=60)
    drained.join(10)
    os.close(read_end)
    assert_interrupted(proc.returncode, err)


def test_ctrl_c_while_the_interpreter_shuts_down(run_args, tmp_path):
    rc, err = interrupt_at_gate(run_args, tmp_path, "PGBENCH_TEST_EXIT_GATE")
    assert rc == 130, err                                 # the run itself had finished
    assert "Traceback" not in err and rows_in(tmp_path / "res" / "results.sqlite") == N_CASES


def test_ctrl_c_at_several_delays(run_args, tmp_path):
    """From the first stored case on: every signal that reaches a live run ends it with 130."""
    statuses = []
    for i, delay in enumerate((0.1, 1.0, 2.0)):
        args = [*run_args[:3], str(tmp_path / f"res{i}"), *run_args[4:]]
        proc = start(args)
        wait_until(lambda: rows_in(tmp_path / f"res{i}" / "results.sqlite") >= 1 or proc.poll() is not None,
                   what="the first stored case")
        time.sleep(delay)
        if alive(proc.pid):
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=90)
            assert_interrupted(proc.returncode, err)
            statuses.append(proc.returncode)
        else:
            out, err = proc.communicate()
            assert proc.returncode == 0 and f"ok {N_CASES}" in out, err      # finished before the signal
    assert statuses, "no delay reached a live run"


def test_worker_exits_quietly_when_its_parent_left_during_start_up():
    from pgbench.worker import worker_main

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    parent.close()                                        # the parent is gone before "ready"
    proc = ctx.Process(target=worker_main, args=(child, 1))
    proc.start()
    child.close()
    proc.join(120)
    assert proc.exitcode == 0                             # was: BrokenPipeError, a traceback and exit 1
