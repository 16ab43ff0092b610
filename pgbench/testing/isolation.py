"""Running one check, in its own process with a time limit per heuristic call, or in this one.

Why a process: a heuristic that never returns must fail its check, not hang the
caller.  A thread with a deadline cannot do that: Python cannot stop a thread,
so a pure-Python ``while True`` (which holds the GIL between switches) or a C
loop would go on burning a core, and a deadlocked one would keep the process
from exiting.  A child process can always be killed.  So :func:`run_isolated`
starts one process per check (forkserver where the platform has it, as the local
executor does: a fork of a server that has imported torch and pgbench, about
0.1 s, never touched by CUDA or OpenMP; spawn elsewhere).  The child imports the
heuristic's module (so plugins register there too), runs the check with one
torch thread and announces every heuristic call over a pipe.  The parent gives
each call ``time_limit`` seconds from its announcement (the child's start-up has
its own :data:`STARTUP_S`); past that it kills the child (SIGKILL) and the check
fails naming the data set of the call that was running.  A child that dies (a
segfault, ``os._exit``) fails its check the same way.

Each check gets a fresh process, so global random states and anything a
heuristic leaves behind never leak from one check into the next.

:func:`run_here` runs a check in the calling process instead: no time limit, but
a debugger and a profiler see it.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..validation import error_text
from .checks import CHECKS
from .subject import CheckFailure, CheckSkip, Subject

#: seconds a check's process may take to start and import the heuristic's module
STARTUP_S = 120.0


@dataclass(frozen=True)
class Task:
    """One check of one heuristic: what the child process needs (all plain, picklable data)."""

    stage: str
    name: str
    check: str
    params: dict[str, Any] = field(default_factory=dict)
    modules: tuple[str, ...] = ()          # imported first, so the heuristic is registered
    device: str = "cpu"


@dataclass
class Verdict:
    """How one check went: ``status`` pass / fail / skip, the data set and a one-line detail."""

    status: str
    dataset: str = ""
    detail: str = ""
    seconds: float = 0.0
    timed_out: bool = False


def _quiet(label: str) -> None:
    return None


def run_here(task: Task, progress: Callable[[str], None] = _quiet) -> Verdict:
    """Run ``task`` in this process (no time limit)."""
    started = time.perf_counter()
    for module in task.modules:
        importlib.import_module(module)
    subject = Subject(task.stage, task.name, dict(task.params), task.device, progress)
    try:
        CHECKS[task.check].func(subject)
        verdict = Verdict("pass")
    except CheckFailure as failure:
        verdict = Verdict("fail", failure.dataset, failure.detail)
    except CheckSkip as skip:
        verdict = Verdict("skip", "", str(skip))
    verdict.seconds = time.perf_counter() - started
    return verdict


def _child(conn, task: Task) -> None:
    """Body of the check's process: run the task, announcing each call; send the verdict."""
    torch.set_num_threads(1)
    current = [""]

    def progress(label: str) -> None:
        current[0] = label
        conn.send(("start", label))

    try:
        verdict = run_here(task, progress)
    except BaseException as exc:   # a bug in the check or an import error: report it, never hang
        verdict = Verdict("fail", current[0], f"the check could not run: {type(exc).__name__}: "
                                              f"{error_text(exc)}\n{traceback.format_exc()}")
    conn.send(("done", verdict))
    conn.close()


def _context():
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["pgbench.testing.isolation"])
    return ctx


def run_isolated(task: Task, time_limit: float) -> Verdict:
    """Run ``task`` in a child process; a heuristic call that outlives ``time_limit`` seconds fails it."""
    ctx = _context()
    reader, writer = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(writer, task), daemon=True,
                          name=f"pgbench-check-{task.check}")
    started = time.monotonic()
    process.start()
    writer.close()
    label, deadline = "", started + STARTUP_S
    try:
        while True:
            if not reader.poll(max(0.0, deadline - time.monotonic())):
                if not label:
                    return Verdict("fail", "(start-up)", f"the check's process did not start within {STARTUP_S:g} s",
                                   time.monotonic() - started)
                return Verdict("fail", label, f"did not return within the {time_limit:g} s time limit "
                                              "(its process was killed)", time.monotonic() - started, True)
            try:
                kind, payload = reader.recv()
            except EOFError:
                process.join(5)
                return Verdict("fail", label or "(start-up)",
                               f"the process running it died (exit code {process.exitcode})",
                               time.monotonic() - started)
            if kind == "start":
                label, deadline = payload, time.monotonic() + time_limit
            else:
                return payload
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        reader.close()
